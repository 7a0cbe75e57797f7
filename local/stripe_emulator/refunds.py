"""Refunds as Stripe does them, where localstripe falls short:

- ``reason`` (``duplicate``, ``fraudulent``, ``requested_by_customer``) is accepted;
- a refund larger than what is left on the charge is a 400 ``invalid_request_error``
  (``charge_already_refunded`` once nothing is left), never a silent over-refund;
- a refund made for a PaymentIntent names it (``payment_intent``), also when made for its charge;
- every refund emits ``refund.created`` and ``charge.refunded`` (with the charge's
  ``amount_refunded``), signed and delivered like localstripe's own events (about 1 s later).
"""

from __future__ import annotations

from typing import Any

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


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
        original_init(self, **kwargs)
        self.reason = reason
        if self.payment_intent is None and charge is not None:
            self.payment_intent = charge.payment_intent
        schedule_webhook(r.Event("refund.created", self))
        schedule_webhook(r.Event("charge.refunded", r.Charge._api_retrieve(self.charge)))

    refund_class.__init__ = init
    refund_class._firmpay_patched = True


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
