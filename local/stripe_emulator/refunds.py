"""Refunds as Stripe does them, where localstripe falls short:

- ``reason`` (``duplicate``, ``fraudulent``, ``requested_by_customer``) is accepted;
- a refund larger than what is left on the charge is a 400 ``invalid_request_error``
  (``charge_already_refunded`` once nothing is left), never a silent over-refund;
- a refund made for a PaymentIntent names it (``payment_intent``), also when made for its charge;
- every refund emits ``refund.created`` and ``charge.refunded`` (with the charge's
  ``amount_refunded``), signed and delivered like localstripe's own events (about 1 s later).
- refunds need not succeed at once. A refund's ``status`` is ``pending``, ``requires_action``,
  ``succeeded``, ``failed`` or ``canceled`` (Stripe API reference, "The Refund object"); a pending
  refund later succeeds or fails, and a failed one gives its amount back to the charge (the
  charge's ``amount_refunded`` counts pending and succeeded refunds only) with a ``refund_failure``
  balance transaction and a ``failure_reason``. Events, per the API reference's Refunds page for
  the pinned version (2026-10-28): ``refund.updated`` "occurs whenever a refund is updated",
  ``refund.failed`` "occurs whenever a refund has failed" (both sent for every refund type since
  2024-10-28.acacia, changelog "Adds created, updated, and failed events for all refund types");
  ``charge.refund.updated`` is only sent "on selected payment methods" and is not emulated.
- a refund created through the API without metadata is what the Dashboard makes (a refund made
  outside FirmPay): nothing tells it apart but its missing metadata, exactly as at Stripe.

Test controls (not Stripe's API; no key needed, like localstripe's ``/_config/``):

    POST /_test/refunds/start_pending  {"payment_intent": "pi_...", "pending": true}
         refunds of this intent's charge start ``pending`` (``pending: false`` undoes it)
    POST /_test/refunds/{re_id}/succeed
    POST /_test/refunds/{re_id}/fail   {"failure_reason": "lost_or_stolen_card"}
    POST /_test/clock                  {"advance_seconds": 90000}   (module ``clock``)
"""

from __future__ import annotations

import json
import re
from typing import Any

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = (
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
)
# Charges whose refunds start pending (set by the test control).
_START_PENDING: set[str] = set()
_FINISH = re.compile(r"^/_test/refunds/(re_\w+)/(succeed|fail)$")


def install(app: Any) -> None:
    """Patch localstripe's Refund once (the routes look the class up on every request)."""
    from localstripe import resources as r
    from localstripe.errors import UserError
    from localstripe.webhooks import schedule_webhook

    refund_class = r.Refund
    if getattr(refund_class, "_firmpay_patched", False):
        return
    original_init = refund_class.__init__

    def init(self: Any, reason: str | None = None, **kwargs: Any) -> None:
        if reason is not None and reason not in REASONS:
            raise UserError(400, "Invalid reason: must be one of " + ", ".join(REASONS))
        charge = _charge_of(r, kwargs)
        amount = r.try_convert_to_int(kwargs.get("amount"))
        if charge is not None:
            left = charge.amount - charge.amount_refunded
            if left <= 0:
                raise UserError(
                    400, f"Charge {charge.id} has already been refunded.", {"code": "charge_already_refunded"}
                )
            if isinstance(amount, int) and amount > left:
                raise UserError(
                    400,
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                    {"code": "amount_too_large", "param": "amount"},
                )
            if amount is None:
                kwargs["amount"] = left  # "the rest", not the whole charge again
        original_init(self, **kwargs)
        self.reason = reason
        self.failure_reason = None
        if self.payment_intent is None and charge is not None:
            self.payment_intent = charge.payment_intent
        if self.charge in _START_PENDING:
            self.status = "pending"
        schedule_webhook(r.Event("refund.created", self))
        schedule_webhook(r.Event("charge.refunded", r.Charge._api_retrieve(self.charge)))

    refund_class.__init__ = init
    refund_class._firmpay_patched = True

    def amount_refunded(charge: Any) -> int:
        refunds = r.Refund._api_list_all("/v1/charges/" + charge.id + "/refunds", charge=charge.id)._list
        return sum(x.amount for x in refunds if getattr(x, "status", "succeeded") in ("pending", "succeeded"))

    r.Charge.amount_refunded = property(amount_refunded)
    app.middlewares.insert(0, _test_controls())


def finish(refund_id: str, outcome: str, failure_reason: str | None = None) -> Any:
    """A pending refund succeeds or fails, with the events Stripe sends for it."""
    from localstripe import resources as r
    from localstripe.errors import UserError
    from localstripe.webhooks import schedule_webhook

    refund = r.Refund._api_retrieve(refund_id)
    if refund.status != "pending":
        raise UserError(400, f"Refund {refund_id} is {refund.status}, not pending.")
    if outcome == "succeed":
        refund.status = "succeeded"
    else:
        reason = failure_reason or "unknown"
        if reason not in FAILURE_REASONS:
            raise UserError(400, "Invalid failure_reason: must be one of " + ", ".join(FAILURE_REASONS))
        refund.status, refund.failure_reason = "failed", reason
        returned = r.BalanceTransaction(
            amount=refund.amount,
            currency=refund.currency,
            description="REFUND FAILURE",
            exchange_rate=1.0,
            reporting_category="refund",
            source=refund.id,
            type="refund",
        )
        # localstripe knows only charge and refund transactions; Stripe names this one refund_failure.
        returned.type = returned.reporting_category = "refund_failure"
        refund.failure_balance_transaction = returned.id
        schedule_webhook(r.Event("refund.failed", refund))
    schedule_webhook(r.Event("refund.updated", refund))
    return refund


def _test_controls() -> Any:
    from aiohttp import web
    from localstripe import server
    from localstripe.errors import UserError

    from local.stripe_emulator import clock

    def answer(body: dict[str, Any]) -> web.Response:
        return web.Response(text=json.dumps(body), content_type="application/json")

    @web.middleware
    async def refund_controls(request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if not (path.startswith("/_test/refunds/") or path == "/_test/clock"):
            return await handler(request)
        try:
            data = (await server.get_post_data(request) or {}) if request.method == "POST" else {}
            if path == "/_test/clock":
                if "advance_seconds" in data:
                    clock.advance(float(data["advance_seconds"]))
                return answer({"now": clock.now()})
            if path == "/_test/refunds/start_pending":
                from localstripe import resources as r

                charge = r.PaymentIntent._api_retrieve(str(data.get("payment_intent"))).latest_charge
                if charge is None:
                    raise UserError(400, "This PaymentIntent has no charge to refund.")
                pending = data.get("pending", True) not in (False, "false")
                (_START_PENDING.add if pending else _START_PENDING.discard)(charge.id)
                return answer({"charge": charge.id, "pending": pending})
            found = _FINISH.match(path)
            if found and request.method == "POST":
                refund = finish(found.group(1), found.group(2), data.get("failure_reason"))
                return answer(refund._export())
        except UserError as error:
            return error.to_response()
        except (ValueError, json.JSONDecodeError) as error:
            return UserError(400, str(error)).to_response()
        return web.Response(status=404, text=json.dumps({"error": {"message": "no such test control"}}))

    return refund_controls


def _charge_of(r: Any, kwargs: dict[str, Any]) -> Any:
    """The charge a refund request is for, or None when the request is malformed (localstripe says why)."""
    try:
        if isinstance(kwargs.get("charge"), str):
            return r.Charge._api_retrieve(kwargs["charge"])
        if isinstance(kwargs.get("payment_intent"), str):
            return r.PaymentIntent._api_retrieve(kwargs["payment_intent"]).latest_charge
    except Exception:
        return None
    return None
