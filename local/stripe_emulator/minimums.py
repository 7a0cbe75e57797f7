"""Stripe's minimum charge amount, which localstripe does not enforce.

"Minimum and maximum charge amounts" (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts):
0.50 for USD and for CAD; a PaymentIntent for less is refused with the error code
``amount_too_small`` (https://docs.stripe.com/error-codes#amount-too-small), so a charge of a
leftover cent never reaches the card networks.
"""

from __future__ import annotations

from typing import Any

MINIMUM_MINOR = {"usd": 50, "cad": 50}


def install() -> None:
    """Wrap PaymentIntent creation once (after the other PaymentIntent patches)."""
    from localstripe import resources as r
    from localstripe.errors import UserError

    intent = r.PaymentIntent
    if getattr(intent, "_firmpay_minimum", False):
        return
    create = intent.__init__

    def init(self: Any, **kwargs: Any) -> None:
        amount, currency = r.try_convert_to_int(kwargs.get("amount")), kwargs.get("currency")
        minimum = MINIMUM_MINOR.get(currency) if isinstance(currency, str) else None
        if isinstance(amount, int) and minimum is not None and 0 < amount < minimum:
            raise UserError(
                400,
                f"Amount must be at least {minimum / 100:.2f} {currency}",
                {"code": "amount_too_small", "param": "amount"},
            )
        create(self, **kwargs)

    intent.__init__ = init
    intent._firmpay_minimum = True
