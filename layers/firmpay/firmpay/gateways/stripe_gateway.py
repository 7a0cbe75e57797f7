"""Stripe behind ``PaymentProcessor``: the only module that imports stripe.

One ``StripeClient`` per container, created on first use (the import costs ~120 ms, paid only by
functions that charge). Every mutating call carries an Idempotency-Key derived from our own ids,
so a retry after a crash replays Stripe's first answer instead of charging again.

The API version is pinned (``STRIPE_API_VERSION``, the pinned SDK's own; a unit test fails when they
differ) and every request is built as the SDK's typed params (``stripe.params.*``, generated from
that version's API spec), so mypy strict refuses a parameter Stripe removed or we misspelled.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from firmpay.config import get_settings
from firmpay.observability import trace_requests
from firmpay.payments.processor import (
    BankAccountSource,
    CardDetails,
    ConfirmRequest,
    Intent,
    IntentRequest,
    ProcessorRefund,
    ProcessorUnavailable,
    RefundRefused,
)
from firmpay.secrets import get_secret

if TYPE_CHECKING:
    import stripe
    from stripe.params import (
        CustomerCreateParams,
        PaymentIntentConfirmParams,
        PaymentIntentCreateParams,
        PaymentIntentCreateParamsPaymentMethodOptions,
        RefundCreateParams,
    )

# The API version every request names (Stripe-Version). It must be the pinned SDK's own: its typed
# params and resource classes describe exactly this version (tests/unit/test_stripe_contract.py).
STRIPE_API_VERSION = "2026-10-28.endive"

_P = ParamSpec("_P")
_T = TypeVar("_T")


# Each Stripe request: up to 1 + STRIPE_NETWORK_RETRIES attempts (same Idempotency-Key) of a
# 2 s connect and OUTBOUND_TIMEOUT_SECONDS read; the functions' timeouts are sized on it.
STRIPE_NETWORK_RETRIES = 2
STRIPE_CONNECT_TIMEOUT = 2.0


def stripe_client() -> stripe.StripeClient:
    """The client for the current secret key: a rotated key is used within the secrets' max age."""
    return _stripe_client_for(get_secret(get_settings().stripe_secret_key_param))


@lru_cache(maxsize=2)
def _stripe_client_for(secret_key: str) -> stripe.StripeClient:
    import stripe

    trace_requests()  # X-Ray subsegments for Stripe's calls, from the first client on (observability)
    settings = get_settings()
    return stripe.StripeClient(
        secret_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=STRIPE_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=(STRIPE_CONNECT_TIMEOUT, settings.outbound_timeout_seconds)),
    )


def _field(obj: Any, name: str) -> Any:
    """Attribute of a StripeObject (or key of a dict), None when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return obj[name]
    except (KeyError, TypeError):
        return getattr(obj, name, None)


def intent_from_stripe(pi: Any) -> Intent:
    """Our ``Intent`` from a PaymentIntent object or its JSON (as in webhook events)."""
    error = _field(pi, "last_payment_error")
    charge = _field(pi, "latest_charge")
    fee = None
    refunded = 0
    mandate = _field(pi, "mandate")
    if charge is not None and not isinstance(charge, str):
        balance_tx = _field(charge, "balance_transaction")
        if balance_tx is not None and not isinstance(balance_tx, str):
            fee = _field(balance_tx, "fee")
        refunded = int(_field(charge, "amount_refunded") or 0)
        # A debit's mandate is named under the charge's method details, whatever the method type
        # (payment_method_details.us_bank_account.mandate, .acss_debit.mandate...).
        details = _field(charge, "payment_method_details")
        mandate = mandate or _field(_field(details, _field(details, "type") or ""), "mandate")
    method = _field(pi, "payment_method")
    customer = _field(pi, "customer")
    metadata = _field(pi, "metadata") or {}
    return Intent(
        intent_id=str(_field(pi, "id")),
        status=_field(pi, "status"),
        amount_minor=int(_field(pi, "amount")),
        currency=str(_field(pi, "currency")).upper(),
        client_secret=_field(pi, "client_secret"),
        payment_method_id=method if isinstance(method, str) or method is None else _field(method, "id"),
        customer_id=customer if isinstance(customer, str) or customer is None else _field(customer, "id"),
        failure_code=(_field(error, "decline_code") or _field(error, "code")) if error else None,
        failure_message=_field(error, "message") if error else None,
        network_decline_code=_field(error, "network_decline_code") if error else None,
        fee_minor=int(fee) if fee is not None else None,
        mandate_id=mandate if isinstance(mandate, str) or mandate is None else _field(mandate, "id"),
        amount_refunded_minor=refunded,
        # stripe-python 16 objects are not mappings: to_dict() (webhook events carry plain dicts).
        metadata={
            str(k): str(v) for k, v in (metadata.to_dict() if hasattr(metadata, "to_dict") else metadata).items()
        },
    )


def refund_from_stripe(refund: Any) -> ProcessorRefund:
    """Our ``ProcessorRefund`` from a Refund object or its JSON."""
    metadata = _field(refund, "metadata") or {}
    intent = _field(refund, "payment_intent")
    return ProcessorRefund(
        refund_id=str(_field(refund, "id")),
        status=_field(refund, "status"),
        amount_minor=int(_field(refund, "amount")),
        intent_id=intent if isinstance(intent, str) or intent is None else str(_field(intent, "id")),
        failure_reason=_field(refund, "failure_reason"),
        reason=_field(refund, "reason"),
        metadata={
            str(k): str(v) for k, v in (metadata.to_dict() if hasattr(metadata, "to_dict") else metadata).items()
        },
    )


class StripeGateway:
    """``PaymentProcessor`` on the real Stripe API (or the local emulator: same SDK, other base URL)."""

    def __init__(self, client: stripe.StripeClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> stripe.StripeClient:
        return self._client or stripe_client()

    def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)`` (typed: mypy checks the params against the SDK), with Stripe's
        unavailability (network, 5xx, rate limit, key in use) as ``ProcessorUnavailable``."""
        import stripe

        try:
            return fn(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise ProcessorUnavailable(type(error).__name__) from error
        except stripe.StripeError as error:
            if (error.http_status or 0) >= 500 or error.code == "idempotency_key_in_use":
                raise ProcessorUnavailable(type(error).__name__) from error
            raise

    def card_details(self, payment_method_id: str) -> CardDetails:
        import stripe

        try:
            pm = self._call(self.client.v1.payment_methods.retrieve, payment_method_id)
        except stripe.InvalidRequestError as error:
            raise ValueError("no such payment method") from error
        card = _field(pm, "card")
        if _field(pm, "type") != "card" or card is None:
            raise ValueError("not a card payment method")
        return CardDetails(
            payment_method_id=pm.id,
            brand=str(_field(card, "brand")),
            last4=str(_field(card, "last4")),
            exp_month=int(_field(card, "exp_month")),
            exp_year=int(_field(card, "exp_year")),
            customer_id=_field(pm, "customer"),
        )

    def create_intent(self, request: IntentRequest) -> Intent:
        # payment_method_types is refused since 2026-09-30.endive (400
        # payment_method_types_no_longer_supported); allowed_payment_method_types keeps the intent to
        # the one type we reviewed (Stripe changelog, "Removes the payment method types parameter
        # from Payment Intents and Setup Intents").
        params: PaymentIntentCreateParams = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "payment_method": request.payment_method_id,
            "allowed_payment_method_types": [request.method_type],
            "metadata": request.metadata,
            "description": request.description,
        }
        if request.customer_id:
            params["customer"] = request.customer_id
        if request.statement_descriptor_suffix:
            params["statement_descriptor_suffix"] = request.statement_descriptor_suffix
        if request.method_options:
            # Typed per method type by the SDK; the method policy's options are checked by its tests.
            params["payment_method_options"] = cast(
                "PaymentIntentCreateParamsPaymentMethodOptions", {request.method_type: dict(request.method_options)}
            )
        pi = self._call(
            self.client.v1.payment_intents.create, params=params, options={"idempotency_key": request.idempotency_key}
        )
        return intent_from_stripe(pi)

    def confirm_intent(self, request: ConfirmRequest) -> Intent:
        import stripe

        # A PaymentIntent has no mandate field: Stripe names a debit's mandate on its charge
        # (payment_method_details.<type>.mandate), and returns latest_charge as an id unless expanded.
        params: PaymentIntentConfirmParams = {"expand": ["latest_charge"]}
        if request.setup_future_usage:
            params["setup_future_usage"] = request.setup_future_usage
        if request.off_session:
            params["off_session"] = True
        if request.mandate_id:
            params["mandate"] = request.mandate_id
        elif request.mandate_ip:
            params["mandate_data"] = {
                "customer_acceptance": {
                    "type": "online",
                    "online": {"ip_address": request.mandate_ip, "user_agent": request.mandate_user_agent or ""},
                }
            }
        if request.return_url:
            params["return_url"] = request.return_url
        try:
            pi = self._call(
                self.client.v1.payment_intents.confirm,
                request.intent_id,
                params=params,
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError:
            # A decline: the intent now carries last_payment_error; read it as Stripe keeps it.
            return self.retrieve_intent(request.intent_id)
        except stripe.InvalidRequestError as error:
            if error.code != "payment_intent_unexpected_state":
                raise
            # Already confirmed, canceled by the sweep, or past its idempotency window: the intent's
            # own state is the answer (never a second attempt).
            return self.retrieve_intent(request.intent_id)
        return intent_from_stripe(pi)

    def retrieve_intent(self, intent_id: str) -> Intent:
        pi = self._call(
            self.client.v1.payment_intents.retrieve, intent_id, params={"expand": ["latest_charge.balance_transaction"]}
        )
        return intent_from_stripe(pi)

    def cancel_intent(self, intent_id: str, idempotency_key: str) -> Intent:
        import stripe

        try:
            pi = self._call(
                self.client.v1.payment_intents.cancel, intent_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as error:
            if error.code != "payment_intent_unexpected_state":
                raise
            return self.retrieve_intent(intent_id)  # it succeeded or failed meanwhile: that is the answer
        return intent_from_stripe(pi)

    def find_intent(self, intent_id: str) -> Intent | None:
        """The intent, or None when Stripe does not know it (an event about someone else's charge)."""
        import stripe

        try:
            return self.retrieve_intent(intent_id)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise

    def create_refund(
        self, intent_id: str, amount_minor: int, reason: str | None, idempotency_key: str, metadata: dict[str, str]
    ) -> ProcessorRefund:
        """Refund ``amount_minor`` of the intent's charge; ``RefundRefused`` when Stripe will not."""
        import stripe

        params: RefundCreateParams = {"payment_intent": intent_id, "amount": amount_minor, "metadata": metadata}
        if reason:
            params["reason"] = reason
        try:
            refund = self._call(
                self.client.v1.refunds.create, params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as error:
            raise RefundRefused(error.code or "invalid_request") from error
        return refund_from_stripe(refund)

    def retrieve_refund(self, refund_id: str) -> ProcessorRefund:
        return refund_from_stripe(self._call(self.client.v1.refunds.retrieve, refund_id))

    def find_refund(self, intent_id: str, our_refund_id: str) -> ProcessorRefund | None:
        """The intent's refund whose metadata names ``our_refund_id`` (None when Stripe has none)."""
        return next((r for r in self.list_refunds(intent_id) if r.metadata.get("refund_id") == our_refund_id), None)

    def list_refunds(self, intent_id: str) -> list[ProcessorRefund]:
        """Every refund Stripe holds for the intent's charge, ours and those made outside FirmPay."""
        found = self._call(self.client.v1.refunds.list, params={"payment_intent": intent_id, "limit": 100})
        return [refund_from_stripe(refund) for refund in found.auto_paging_iter()]

    def ensure_customer(self, firm_id: str, client_id: str, name: str, email: str, existing: str | None) -> str:
        """The Stripe customer of this client at this firm, created once (idempotently)."""
        if existing:
            return existing
        params: CustomerCreateParams = {
            "name": name,
            "email": email,
            "metadata": {"firm_id": firm_id, "client_id": client_id},
        }
        customer = self._call(
            self.client.v1.customers.create,
            params=params,
            options={"idempotency_key": f"fp-customer-{firm_id}-{client_id}"},
        )
        return str(customer.id)

    def attach_bank_account(self, customer_id: str, bank_account_token: str) -> BankAccountSource:
        """Attach a Plaid-made ``btok_`` to the customer; Stripe answers with the ``ba_`` account.

        Stripe refuses a second copy of an account the customer already has (400
        ``bank_account_exists``, "The bank account provided already exists on the specified Customer
        object", Stripe's error codes): a returning client's account is then the customer's existing
        source with the token's fingerprint.
        """
        import stripe

        try:
            source = self._call(
                self.client.v1.customers.payment_sources.create,
                customer_id,
                params={"source": bank_account_token},
                options={"idempotency_key": f"fp-source-{customer_id}-{bank_account_token}"},
            )
        except stripe.InvalidRequestError as error:
            if error.code != "bank_account_exists":
                raise
            source = self._existing_bank_account(customer_id, bank_account_token)
        if not isinstance(source, stripe.BankAccount):
            raise ValueError(f"Stripe attached a {source.object}, not a bank account")
        return BankAccountSource(
            source_id=str(source.id), bank_name=str(source.bank_name or "Bank"), last4=str(source.last4)
        )

    def _existing_bank_account(self, customer_id: str, bank_account_token: str) -> stripe.BankAccount:
        """The customer's bank account source with the same fingerprint as the token's account."""
        import stripe

        token = self._call(self.client.v1.tokens.retrieve, bank_account_token)
        fingerprint = token.bank_account.fingerprint if token.bank_account else None
        sources = self._call(
            self.client.v1.customers.payment_sources.list, customer_id, params={"object": "bank_account", "limit": 100}
        )
        for source in sources.auto_paging_iter():
            if isinstance(source, stripe.BankAccount) and fingerprint and source.fingerprint == fingerprint:
                return source
        raise ValueError("Stripe reported the bank account as attached, but the customer has no such source")

    def detach_method(self, customer_id: str, method_id: str) -> None:
        """Detach a stored card (``pm_``) or delete a bank account source (``ba_``) from the customer.

        Idempotent: a method Stripe no longer has, or no longer has attached, is already detached.
        """
        import stripe

        try:
            if method_id.startswith("ba_"):
                self._call(self.client.v1.customers.payment_sources.delete, customer_id, method_id)
            else:
                self._call(self.client.v1.payment_methods.detach, method_id)
        except stripe.InvalidRequestError as error:
            if error.code not in ("resource_missing", "payment_method_unexpected_state"):
                raise


def webhook_signature_valid(payload: str, signature_header: str | None, secret: str, tolerance: int = 300) -> bool:
    """Whether ``Stripe-Signature`` signs this exact raw body with ``secret``, within ``tolerance`` seconds."""
    import stripe

    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
    except stripe.SignatureVerificationError:
        return False
    return True
