"""Off-session confirmations of cards that need authentication, as Stripe documents them.

localstripe ignores ``off_session`` and puts such a card in ``requires_action`` (a 3-D Secure
challenge nobody is there to answer). Stripe instead declines: HTTP 402, error code and decline
code ``authentication_required``, and the intent goes back to ``requires_payment_method`` with
that ``last_payment_error`` (``payment_intent.payment_failed`` is sent).

Which test cards: those that "always authenticate" (4000002760003184, 4000008260003178, ...).
4000002500003155 authenticates on-session but succeeds off-session once it is set up for future
use (attached to the intent's customer), as in Stripe's test-card table; not attached, it fails
like the others.

Test control (not Stripe's API): ``POST /_test/payment_methods/{pm}/decline_next`` with
``decline_code=insufficient_funds`` (default) makes the next confirmation of an intent on that
payment method decline with that code, on-session or off; later ones behave as usual (a plan's
installment that fails once, then succeeds on retry).
"""

from __future__ import annotations

from typing import Any

SET_UP_CARD_SUCCEEDS_OFF_SESSION = "4000002500003155"
_ERROR_MESSAGE = "Your card was declined. This transaction requires authentication."
_DECLINE_MESSAGE = "Your card was declined."
# payment method id -> decline code of its next confirmation (test control)
DECLINE_NEXT: dict[str, str] = {}


def _needs_authentication_off_session(method: Any, customer: str | None) -> bool:
    if getattr(method, "type", None) != "card" or not method._requires_authentication():
        return False
    if getattr(method, "_card_number", None) == SET_UP_CARD_SUCCEEDS_OFF_SESSION:
        return not (customer and getattr(method, "customer", None) == customer)
    return True


def install(app: Any) -> None:
    """Wrap ``PaymentIntent._api_confirm`` (call after the other confirm patches, before rebinding
    routes) and add the ``decline_next`` test control to ``app``."""
    from aiohttp import web

    async def decline_next(request: web.Request) -> web.Response:
        form = await request.post()
        method_id = request.match_info["id"]
        DECLINE_NEXT[method_id] = str(form.get("decline_code") or "insufficient_funds")
        return web.json_response({"payment_method": method_id, "decline_next": DECLINE_NEXT[method_id]})

    if not getattr(app, "_firmpay_decline_next", False):
        app.router.add_post("/_test/payment_methods/{id}/decline_next", decline_next)
        app._firmpay_decline_next = True
    from localstripe import resources as r
    from localstripe.resources import Event, UserError, schedule_webhook

    pi = r.PaymentIntent
    if getattr(pi, "_firmpay_off_session", False):
        return
    inner_confirm = pi._api_confirm.__func__
    original_error = pi.last_payment_error

    def decline(obj: Any, code: str, decline_code: str, message: str) -> Exception:
        obj._firmpay_payment_error = {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "payment_method": {"id": obj.payment_method, "type": "card"},
        }
        obj.payment_method = None  # -> requires_payment_method, as Stripe leaves it
        schedule_webhook(Event("payment_intent.payment_failed", obj))
        error = UserError(
            402,
            message,
            {"code": code, "decline_code": decline_code, "payment_intent": {"id": obj.id, "status": obj.status}},
        )
        error.body["error"]["type"] = "card_error"
        return error

    def api_confirm(cls: Any, id: str, **kwargs: Any) -> Any:
        off_session = str(kwargs.get("off_session", "")).lower() in ("true", "1")
        obj = cls._api_retrieve(id) if isinstance(id, str) and id.startswith("pi_") else None
        if obj is not None and obj.status == "requires_confirmation" and obj.payment_method:
            if obj.payment_method in DECLINE_NEXT:
                code = DECLINE_NEXT.pop(obj.payment_method)
                raise decline(obj, "card_declined", code, _DECLINE_MESSAGE)
            method = r.PaymentMethod._api_retrieve(obj.payment_method)
            if off_session and _needs_authentication_off_session(method, obj.customer):
                raise decline(obj, "authentication_required", "authentication_required", _ERROR_MESSAGE)
        return inner_confirm(cls, id, **kwargs)

    def last_payment_error(self: Any) -> Any:
        if getattr(self, "_firmpay_payment_error", None) and self.payment_method is None:
            return self._firmpay_payment_error
        return original_error.fget(self)

    pi._api_confirm = classmethod(api_confirm)
    pi.last_payment_error = property(last_payment_error)
    pi._firmpay_off_session = True
