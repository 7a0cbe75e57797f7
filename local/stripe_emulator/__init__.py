"""The Stripe emulator: localstripe on 127.0.0.1 with in-memory, per-run state, extended where it
lacks what FirmPay uses and real Stripe documents:

- Stripe's contract (module ``contract``): every request checked against the pinned SDK's params
  for its route (400 ``parameter_unknown``, ``payment_method_types_no_longer_supported``...), every
  object completed with the SDK class's fields.

- PaymentIntent parameters localstripe refuses (``description``, ``setup_future_usage``,
  ``statement_descriptor_suffix``, ``receipt_email``, ``mandate_data``, ``return_url``, ...);
  with ``setup_future_usage`` and a customer, a succeeded intent attaches its payment method to
  the customer, as Stripe does.
- ``Idempotency-Key`` on every POST: the same key with the same request replays the first answer
  (header ``Idempotent-Replayed: true``), the same key with another request is a 400
  ``idempotency_error``; concurrent requests with one key run one at a time. A key is forgotten
  24 hours (on the emulator's clock, ``POST /_test/clock``) after its first use, as Stripe may
  prune keys "at least 24 hours old": the same request then runs again (module ``clock``).
- Stripe's decline test cards decline at confirmation with their documented codes.
- Test faults: ``POST /_test/faults`` makes the next matching requests fail or hang
  (``local/http_faults.py``).
- ACH debits (``us_bank_account``, module ``ach``): ``POST /v1/tokens`` with ``bank_account[...]``
  makes a ``btok_`` (bank name per routing number from the test hook ``POST /_test/bank_names``);
  ``POST /v1/customers/{cus}/sources`` attaches it as a verified ``ba_`` (``GET``/``DELETE`` too);
  intents with ``allowed_payment_method_types[]=us_bank_account`` and ``payment_method=ba_...`` confirm
  with ``mandate_data`` (or ``mandate``) into ``processing`` with a pending charge and a mandate
  (``GET /v1/mandates/{id}``), emitting ``payment_intent.processing``. Test controls
  ``POST /_test/payment_intents/{id}/settle`` (``succeeded``, fee 0.8% capped at 500) and
  ``POST /_test/payment_intents/{id}/return`` ``code=R01|R02|...`` (back to
  ``requires_payment_method`` with the R-code in ``network_decline_code`` and Stripe's decline
  code; the account ``errored`` unless the funds were short)
  emit ``payment_intent.succeeded``/``charge.succeeded`` or ``payment_intent.payment_failed``/
  ``charge.failed`` through localstripe's signed webhooks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

# Stripe's test cards: number -> (error code, decline code, message).
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": ("processing_error", "processing_error", "An error occurred while processing your card."),
    "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
}
_EXTRA_CREATE = (
    "description",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "setup_future_usage",
    "automatic_payment_methods",
    "mandate_data",
    "return_url",
    "mandate",
    "confirmation_method",
    "capture_method",
)
_EXTRA_CONFIRM = ("setup_future_usage", "off_session", "mandate_data", "mandate", "return_url", "receipt_email")


def _patch_payment_intents() -> None:
    from localstripe import resources as r

    pi = r.PaymentIntent
    if getattr(pi, "_firmpay_patched", False):
        return
    original_init = pi.__init__

    def init(self: Any, **kwargs: Any) -> None:
        extra = {k: kwargs.pop(k) for k in _EXTRA_CREATE if k in kwargs}
        original_init(self, **kwargs)
        self.description = extra.get("description")
        self.setup_future_usage = extra.get("setup_future_usage")
        self.statement_descriptor_suffix = extra.get("statement_descriptor_suffix")
        # Stripe's default is automatic confirmation; manual makes the client's handleCardAction
        # hand the intent back in requires_confirmation for the server to confirm again.
        self.confirmation_method = extra.get("confirmation_method") or "automatic"
        if extra.get("capture_method"):
            self.capture_method = extra["capture_method"]

    pi.__init__ = init
    original_confirm = pi._api_confirm.__func__

    def api_confirm(cls: Any, id: str, **kwargs: Any) -> Any:
        extra = {k: kwargs.pop(k) for k in _EXTRA_CONFIRM if k in kwargs}
        if extra.get("setup_future_usage"):
            cls._api_retrieve(id).setup_future_usage = extra["setup_future_usage"]
        return original_confirm(cls, id, **kwargs)

    pi._api_confirm = classmethod(api_confirm)
    original_on_success = pi._on_success

    def on_success(self: Any) -> None:
        if getattr(self, "setup_future_usage", None) and self.customer and self.payment_method:
            method = r.PaymentMethod._api_retrieve(self.payment_method)
            if getattr(method, "customer", None) is None:
                method.customer = self.customer
        original_on_success(self)

    pi._on_success = on_success
    original_error = pi.last_payment_error

    def last_payment_error(self: Any) -> Any:
        error = original_error.fget(self)
        charge = self.latest_charge
        if error and charge is not None and getattr(charge, "_firmpay_decline", None):
            code, decline, message = charge._firmpay_decline
            error = {**error, "code": code, "decline_code": decline, "message": message, "type": "card_error"}
        return error

    pi.last_payment_error = property(last_payment_error)
    _patch_manual_confirmation(pi)

    card_declined = r.PaymentMethod._charging_is_declined

    def charging_is_declined(self: Any) -> bool:
        return bool(card_declined(self) or (self.type == "card" and getattr(self, "_card_number", None) in DECLINES))

    r.PaymentMethod._charging_is_declined = charging_is_declined
    original_failure = r.Charge._set_auth_failure

    def set_auth_failure(self: Any) -> None:
        original_failure(self)
        try:
            method = r.PaymentMethod._api_retrieve(self.payment_method)
        except Exception:
            return
        decline = DECLINES.get(getattr(method, "_card_number", ""))
        if decline:
            self._firmpay_decline = decline
            self.failure_code, _, self.failure_message = decline

    r.Charge._set_auth_failure = set_auth_failure
    pi._firmpay_patched = True


def _patch_manual_confirmation(pi: Any) -> None:
    """Manual confirmation as Stripe documents it (https://docs.stripe.com/js/payment_intents/handle_card_action,
    https://docs.stripe.com/payments/finalize-payments-on-the-server, "manual confirmation"):
    after the client's challenge the intent is ``requires_confirmation`` and the server's next
    confirm charges it without asking again. Automatic intents charge right after the challenge."""
    original_authenticate = pi._api_authenticate.__func__

    def api_authenticate(cls: Any, id: str, client_secret: Any = None, success: Any = False, **kwargs: Any) -> Any:
        from localstripe.resources import try_convert_to_bool

        obj = cls._api_retrieve(id) if isinstance(id, str) and id.startswith("pi_") else None
        manual = obj is not None and getattr(obj, "confirmation_method", "automatic") == "manual"
        if not manual or try_convert_to_bool(success) is not True:
            return original_authenticate(cls, id, client_secret=client_secret, success=success, **kwargs)
        if kwargs or client_secret != obj.client_secret:
            from localstripe.errors import UserError

            raise UserError(401, "Unauthorized")
        if obj.status == "requires_action":
            obj.next_action = None
            obj._firmpay_authenticated = True
        return obj

    pi._api_authenticate = classmethod(api_authenticate)
    original_confirm = pi._confirm

    def confirm(self: Any, on_failure_now: Any) -> None:
        if getattr(self, "_firmpay_authenticated", False):
            self._firmpay_authenticated = False
            self._authentication_failed = False
            self._create_charge(on_failure_now=on_failure_now)
            return
        original_confirm(self, on_failure_now)

    pi._confirm = confirm


def _idempotency_middleware() -> Any:
    from aiohttp import web

    from local.stripe_emulator import clock

    cache: dict[tuple[str, str], tuple[str, int, bytes, str, float]] = {}
    locks: dict[tuple[str, str], asyncio.Lock] = {}

    @web.middleware
    async def idempotency(request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        scope = (request.headers.get("Authorization", ""), key)
        body = await request.read()
        fingerprint = hashlib.sha256(request.path.encode() + b"\n" + body).hexdigest()
        lock = locks.setdefault(scope, asyncio.Lock())
        async with lock:
            if scope in cache and clock.now() - cache[scope][4] >= clock.IDEMPOTENCY_KEY_TTL_SECONDS:
                del cache[scope]  # pruned: the same key now makes a new request
            if scope in cache:
                seen, status, payload, content_type, _ = cache[scope]
                if seen != fingerprint:
                    error = {
                        "error": {
                            "type": "idempotency_error",
                            "message": (
                                "Keys for idempotent requests can only be used with the same parameters they were first used with."
                            ),
                        }
                    }
                    return web.Response(status=400, text=json.dumps(error), content_type="application/json")
                replay = web.Response(status=status, body=payload, content_type=content_type)
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
            response = await handler(request)
            if isinstance(response, web.Response) and response.status < 500:
                cache[scope] = (fingerprint, response.status, response.body or b"", response.content_type, clock.now())
            return response

    return idempotency


def _rebind_patched_routes(app: Any) -> None:
    """localstripe registered its extra routes with the methods of import time: point the ones we
    extended at the extended methods."""
    from localstripe import resources, server

    rebind = {
        "/v1/payment_intents/{id}/confirm": resources.PaymentIntent._api_confirm,
        "/v1/payment_intents/{id}/_authenticate": resources.PaymentIntent._api_authenticate,
    }
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method == "POST" and canonical in rebind:
            route._handler = server.api_extra(rebind[canonical], canonical)


def _stripe_error(status: int) -> dict[str, Any]:
    kind = "rate_limit_error" if status == 429 else "api_error"
    return {"error": {"type": kind, "message": f"injected by the local Stripe emulator (HTTP {status})"}}


def build_app() -> Any:
    """localstripe's aiohttp app, extended, with the on-disk pickle turned off."""
    from localstripe import resources
    from localstripe.server import app

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    _patch_payment_intents()
    from local.stripe_emulator import offsession  # off-session cards that need authentication (autopay)

    offsession.install(app)
    _rebind_patched_routes(app)
    if not getattr(app, "_firmpay_idempotency", False):
        app.middlewares.insert(0, _idempotency_middleware())
        app._firmpay_idempotency = True
        from local import http_faults  # 5xx and slow answers on demand (POST /_test/faults)

        http_faults.install(app, _stripe_error)
    from local.stripe_emulator import ach, stripejs  # eCheck debits; the card page's Stripe.js calls

    ach.install(app)
    stripejs.install(app)
    from local.stripe_emulator import refunds  # refunds: reason, over-refund checks, charge.refunded events

    refunds.install(app)
    from local.stripe_emulator import minimums  # amount_too_small under 0.50

    minimums.install()
    from local.stripe_emulator import contract  # the pinned SDK's params and fields, on every request

    contract.install(app)  # last: its middleware is the outermost
    return app
