"""Stripe's contract on every request and response of the emulator, read from the pinned SDK.

stripe-python is generated from the API spec of the version it pins (``stripe._api_version``):
``stripe.params.*`` are that version's request parameters (TypedDicts, nested, with their
``Literal`` values and required keys), and the resource classes (``stripe.PaymentIntent``...) name
every field of its objects. So this module checks, for each route the emulator serves:

- every parameter, nested, against the route's params TypedDict: an unknown one is Stripe's 400
  ``parameter_unknown`` ("Received unknown parameter: mandate_data[foo]"), a missing required one
  ``parameter_missing``, a value outside a ``Literal`` ``parameter_invalid``; error shape
  ``{"error": {"type": "invalid_request_error", "code", "param", "message", "doc_url"}}`` as Stripe
  answers (Stripe docs, "Error codes": parameter_unknown; the raw body is quoted in
  github.com/vizhub-studio/vizhub/issues/333 and flutter-stripe/flutter_stripe#1450);
- ``payment_method_types`` on PaymentIntent and SetupIntent create/update/confirm: 400
  ``payment_method_types_no_longer_supported`` (Stripe changelog 2026-09-30.endive, "Removes the
  payment method types parameter from Payment Intents and Setup Intents",
  docs.stripe.com/changelog/endive/2026-09-30/removes-the-payment-method-types-parameter-from-payment-intents-and-setup-intents);
- every object it answers with carries every field of the SDK's class for that object
  (``complete_object``), missing ones filled as Stripe leaves them when unused (null, false, [],
  {}).

The validation runs before idempotency (Stripe saves no idempotent result for a request that
failed validation: docs "Idempotent requests").
"""

from __future__ import annotations

import functools
import json
import types
import typing
from typing import Any, NotRequired, Required

import stripe
import stripe.params as stripe_params
from aiohttp import web
from typing_extensions import is_typeddict

PINNED_API_VERSION = stripe.api_version

# (method, route) -> the SDK's params class of that endpoint (the StripeClient service's argument).
ROUTE_PARAMS: dict[tuple[str, str], str] = {
    ("POST", "/v1/payment_intents"): "PaymentIntentCreateParams",
    ("GET", "/v1/payment_intents"): "PaymentIntentListParams",
    ("GET", "/v1/payment_intents/{id}"): "PaymentIntentRetrieveParams",
    ("POST", "/v1/payment_intents/{id}"): "PaymentIntentUpdateParams",
    ("POST", "/v1/payment_intents/{id}/confirm"): "PaymentIntentConfirmParams",
    ("POST", "/v1/payment_intents/{id}/cancel"): "PaymentIntentCancelParams",
    ("POST", "/v1/payment_intents/{id}/capture"): "PaymentIntentCaptureParams",
    ("POST", "/v1/setup_intents"): "SetupIntentCreateParams",
    ("GET", "/v1/setup_intents"): "SetupIntentListParams",
    ("GET", "/v1/setup_intents/{id}"): "SetupIntentRetrieveParams",
    ("POST", "/v1/setup_intents/{id}"): "SetupIntentUpdateParams",
    ("POST", "/v1/setup_intents/{id}/confirm"): "SetupIntentConfirmParams",
    ("POST", "/v1/setup_intents/{id}/cancel"): "SetupIntentCancelParams",
    ("POST", "/v1/payment_methods"): "PaymentMethodCreateParams",
    ("GET", "/v1/payment_methods"): "PaymentMethodListParams",
    ("GET", "/v1/payment_methods/{id}"): "PaymentMethodRetrieveParams",
    ("POST", "/v1/payment_methods/{id}/attach"): "PaymentMethodAttachParams",
    ("POST", "/v1/payment_methods/{id}/detach"): "PaymentMethodDetachParams",
    ("POST", "/v1/customers"): "CustomerCreateParams",
    ("GET", "/v1/customers"): "CustomerListParams",
    ("GET", "/v1/customers/{id}"): "CustomerRetrieveParams",
    ("POST", "/v1/customers/{id}"): "CustomerUpdateParams",
    ("DELETE", "/v1/customers/{id}"): "CustomerDeleteParams",
    ("POST", "/v1/customers/{id}/sources"): "CustomerPaymentSourceCreateParams",
    ("GET", "/v1/customers/{id}/sources"): "CustomerPaymentSourceListParams",
    ("GET", "/v1/customers/{id}/sources/{source_id}"): "CustomerPaymentSourceRetrieveParams",
    ("DELETE", "/v1/customers/{id}/sources/{source_id}"): "CustomerPaymentSourceDeleteParams",
    ("POST", "/v1/refunds"): "RefundCreateParams",
    ("GET", "/v1/refunds"): "RefundListParams",
    ("GET", "/v1/refunds/{id}"): "RefundRetrieveParams",
    ("POST", "/v1/refunds/{id}"): "RefundUpdateParams",
    ("POST", "/v1/tokens"): "TokenCreateParams",
    ("GET", "/v1/tokens/{id}"): "TokenRetrieveParams",
    ("GET", "/v1/mandates/{id}"): "MandateRetrieveParams",
    ("GET", "/v1/charges"): "ChargeListParams",
    ("GET", "/v1/charges/{id}"): "ChargeRetrieveParams",
    ("GET", "/v1/balance_transactions/{id}"): "BalanceTransactionRetrieveParams",
    ("GET", "/v1/events"): "EventListParams",
    ("GET", "/v1/events/{id}"): "EventRetrieveParams",
}
# Stripe.js sends these with a publishable key besides the endpoint's own parameters.
STRIPE_JS_KEYS = frozenset(
    {"key", "payment_user_agent", "referrer", "time_on_page", "guid", "muid", "sid", "client_secret"}
)
NO_PAYMENT_METHOD_TYPES = frozenset(
    {
        ("POST", "/v1/payment_intents"),
        ("POST", "/v1/payment_intents/{id}"),
        ("POST", "/v1/payment_intents/{id}/confirm"),
        ("POST", "/v1/setup_intents"),
        ("POST", "/v1/setup_intents/{id}"),
    }
)
# Keys of RequestOptions: client-side options of the SDK, never parameters on the wire (Stripe
# answers "Received unknown parameter: idempotency_key", stripe-python issue #853).
_REQUEST_OPTIONS = frozenset(stripe.RequestOptions.__annotations__)


class ContractError(Exception):
    """A request Stripe would refuse: its 400 body."""

    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(message)
        self.body = {
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "param": param,
                "message": message,
                "doc_url": "https://stripe.com/docs/error-codes/" + code.replace("_", "-"),
            }
        }


@functools.cache
def params_hints(params_class: type) -> dict[str, Any]:
    """The fields of a params TypedDict with their types (forward references resolved in its module).

    Only the endpoint's own fields: the inherited RequestOptions are the SDK's client-side options.
    """
    import sys

    namespace = dict(vars(sys.modules[params_class.__module__]))
    hints: dict[str, Any] = {}
    for name, hint in params_class.__annotations__.items():
        if name in _REQUEST_OPTIONS:
            continue
        if isinstance(hint, str):
            hint = typing.ForwardRef(hint)
        resolved = typing._eval_type(hint, namespace, namespace)  # type: ignore[attr-defined]
        while typing.get_origin(resolved) in (typing.NotRequired, typing.Required, NotRequired, Required):
            (resolved,) = typing.get_args(resolved)
        hints[name] = resolved
    return hints


def _required(params_class: type) -> frozenset[str]:
    return frozenset(getattr(params_class, "__required_keys__", frozenset())) - _REQUEST_OPTIONS


def _path(parent: str, key: str | int) -> str:
    return f"{parent}[{key}]" if parent else str(key)


def check_value(value: Any, hint: Any, param: str) -> None:
    """Raise ``ContractError`` when ``value`` (form-decoded: strings, dicts, lists) does not fit ``hint``."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return
    if is_typeddict(hint):
        check_params(value, hint, param)
        return
    if origin in (typing.Union, types.UnionType):
        _check_union(value, typing.get_args(hint), param)
        return
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed and str(value).lower() not in {str(a).lower() for a in allowed}:
            shown = ", ".join(f"`{a}`" for a in allowed if a != "")
            raise ContractError("parameter_invalid", param, f"Invalid {param}: must be one of {shown}")
        return
    if origin in (list, typing.List):  # noqa: UP006 (the SDK's annotations use typing.List)
        if isinstance(value, dict) and all(k.isdigit() for k in value):
            value = list(value.values())
        if not isinstance(value, list):
            raise ContractError("parameter_invalid", param, f"Invalid array for {param}")
        (item,) = typing.get_args(hint) or (Any,)
        for index, element in enumerate(value):
            check_value(element, item, _path(param, index))
        return
    if origin in (dict, typing.Dict) or _is_stripe_object(hint):  # noqa: UP006
        if not isinstance(value, dict) and value != "":
            raise ContractError("parameter_invalid", param, f"Invalid object for {param}")
        return
    if hint is bool:
        if not (isinstance(value, bool) or str(value).lower() in ("true", "false")):
            raise ContractError("parameter_invalid", param, f"Invalid boolean: {value}")
        return
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or str(value).lstrip("-").isdigit()):
            raise ContractError("parameter_invalid_integer", param, f"Invalid integer: {value}")
        return
    if hint in (str, float) and isinstance(value, (dict, list)):
        raise ContractError("parameter_invalid", param, f"Invalid {hint.__name__} for {param}")


def _is_stripe_object(hint: Any) -> bool:
    base = typing.get_origin(hint) or hint
    return isinstance(base, type) and issubclass(base, dict)


def _check_union(value: Any, arms: tuple[Any, ...], param: str) -> None:
    errors: list[ContractError] = []
    for arm in arms:
        try:
            check_value(value, arm, param)
            return
        except ContractError as error:
            errors.append(error)
    # Report the arm that describes an object when the value is one (the nested unknown key).
    if isinstance(value, dict):
        for arm, error in zip(arms, errors, strict=True):
            if is_typeddict(arm):
                raise error
    raise errors[0]


def check_params(data: Any, params_class: type, parent: str = "") -> None:
    """Check one request's parameters (or one nested object) against a params TypedDict."""
    if not isinstance(data, dict):
        raise ContractError("parameter_invalid", parent, f"Invalid object for {parent}")
    hints = params_hints(params_class)
    for key in data:
        if key not in hints:
            name = _path(parent, key)
            raise ContractError("parameter_unknown", name, f"Received unknown parameter: {name}")
    for key in sorted(_required(params_class)):
        if key not in data:
            name = _path(parent, key)
            raise ContractError("parameter_missing", name, f"Missing required param: {name}.")
    for key, value in data.items():
        check_value(value, hints[key], _path(parent, key))


def check_request(method: str, route: str, data: dict[str, Any], publishable: bool) -> None:
    """Raise ``ContractError`` when Stripe would refuse this request's parameters."""
    name = ROUTE_PARAMS.get((method, route))
    if name is None:
        return
    if (method, route) in NO_PAYMENT_METHOD_TYPES and "payment_method_types" in data:
        raise ContractError(
            "payment_method_types_no_longer_supported",
            "payment_method_types",
            "The `payment_method_types` parameter is no longer supported on API version "
            f"{PINNED_API_VERSION}. Use `allowed_payment_method_types`, `excluded_payment_method_types` "
            "or dynamic payment methods instead.",
        )
    if publishable:
        data = {k: v for k, v in data.items() if k not in STRIPE_JS_KEYS}
    check_params(data, getattr(stripe_params, name))


async def _request_data(request: web.Request) -> dict[str, Any]:
    from localstripe.server import get_post_data, unflatten_data

    query = dict(unflatten_data(request.query) or {})
    if request.method != "POST":
        return query
    try:
        body = await get_post_data(request, remove_auth=False) or {}
    except json.JSONDecodeError:
        body = {}
    return {**query, **dict(body)}


def contract_middleware() -> Any:
    """Refuse, as Stripe does, any request whose parameters the pinned SDK's params do not allow."""

    @web.middleware
    async def contract(request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.resource
        canonical = route.canonical if route is not None else ""
        if not canonical.startswith("/v1/"):
            return await handler(request)
        data = await _request_data(request)
        key = data.get("key")
        publishable = (isinstance(key, str) and key.startswith("pk_")) or "Bearer pk_" in request.headers.get(
            "Authorization", ""
        )
        if not publishable and "Authorization" not in request.headers:
            return await handler(request)  # Stripe authenticates first: localstripe answers the 401
        try:
            check_request(request.method, canonical, data, publishable)
        except ContractError as error:
            return web.Response(status=400, text=json.dumps(error.body), content_type="application/json")
        return await handler(request)

    return contract


# -- response objects ---------------------------------------------------------------------------------

# Stripe's ``object`` value -> the SDK class that describes it.
OBJECT_CLASSES: dict[str, type] = {
    "payment_intent": stripe.PaymentIntent,
    "setup_intent": stripe.SetupIntent,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "customer": stripe.Customer,
    "payment_method": stripe.PaymentMethod,
    "bank_account": stripe.BankAccount,
    "card": stripe.Card,
    "mandate": stripe.Mandate,
    "token": stripe.Token,
    "balance_transaction": stripe.BalanceTransaction,
    "event": stripe.Event,
}


@functools.cache
def sdk_fields(cls: type) -> dict[str, Any]:
    """The public fields of an SDK resource class, with their annotations."""
    fields: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("stripe."):
            fields.update(getattr(klass, "__annotations__", {}))
    return {
        name: hint
        for name, hint in fields.items()
        if not name.startswith("_") and name != "OBJECT_NAME" and typing.get_origin(hint) is not typing.ClassVar
    }


def unused_value(hint: Any) -> Any:
    """What Stripe answers for a field the object does not use: null when nullable, else empty."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        return None
    if hint is bool:
        return False
    if origin in (list, typing.List):  # noqa: UP006
        return []
    if hint is int:
        return 0
    if _is_stripe_object(hint) or origin in (dict, typing.Dict):  # noqa: UP006
        return {}
    return None


def complete_object(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with every field the SDK's class names (recursively for nested Stripe objects)."""
    cls = OBJECT_CLASSES.get(str(obj.get("object")))
    if obj.get("object") == "payment_intent" and "amount_received" not in obj:
        obj["amount_received"] = obj.get("amount") if obj.get("status") == "succeeded" else 0
    if cls is not None and obj.get("deleted") is not True:  # a deleted object is only id, object, deleted
        for name, hint in sdk_fields(cls).items():
            if name not in obj:
                obj[name] = unused_value(hint)
    for value in obj.values():
        if isinstance(value, dict) and "object" in value:
            complete_object(value)
        elif isinstance(value, dict) and isinstance(value.get("data"), list):
            for item in value["data"]:
                if isinstance(item, dict):
                    complete_object(item)
    if obj.get("object") == "list":
        for item in obj.get("data") or []:
            if isinstance(item, dict):
                complete_object(item)
    return obj


def install(app: Any) -> None:
    """Validate every request (outermost middleware) and complete every exported object."""
    from localstripe import resources

    if not getattr(resources.StripeObject, "_firmpay_contract", False):
        original_export = resources.StripeObject._export

        def export(self: Any, expand: Any = None) -> Any:
            exported = original_export(self, expand=expand)
            return complete_object(exported) if isinstance(exported, dict) else exported

        resources.StripeObject._export = export
        resources.StripeObject._firmpay_contract = True
    if not getattr(app, "_firmpay_contract", False):
        app.middlewares.insert(0, contract_middleware())
        app._firmpay_contract = True
