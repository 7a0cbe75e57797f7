"""Money as an integer count of minor units plus an ISO currency. Never a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

Currency = Literal["USD", "CAD"]
Locale = Literal["en-US", "en-CA", "fr-CA"]

# Stripe's minimum charge for USD and CAD (0.50); below it the processor refuses the charge.
MINIMUM_CHARGE_MINOR = 50
# Stripe's maximum for one charge: "the amount value supports up to eight digits", 99999999 for a
# USD charge of 999,999.99 (docs.stripe.com/currencies, "Minimum and maximum charge amounts");
# CAD is two-decimal too. Above it Stripe refuses the PaymentIntent (amount_too_large).
MAXIMUM_CHARGE_MINOR = 99_999_999
# Upper bound for one amount: 10 million in major units. Keeps arithmetic far from any overflow
# in DynamoDB numbers and JavaScript clients, and far above any real legal bill.
MAXIMUM_AMOUNT_MINOR = 1_000_000_000


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


class Money(BaseModel):
    """An amount of money: ``Money(amount_minor=12345, currency="USD")`` is USD 123.45."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount_minor: StrictInt = Field(ge=0, le=MAXIMUM_AMOUNT_MINOR)
    currency: Currency

    @classmethod
    def zero(cls, currency: Currency) -> Money:
        return cls(amount_minor=0, currency=currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount_minor=self.amount_minor + other.amount_minor, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount_minor=self.amount_minor - other.amount_minor, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount_minor >= other.amount_minor

    def format(self, locale: Locale = "en-US") -> str:
        """The amount as a person reads it in ``locale``, with the currency code.

        ``en-US``/``en-CA``: ``$1,234.56 USD``; ``fr-CA``: ``1 234,56 $ CAD`` (no-break spaces, as CLDR groups fr-CA).
        """
        return format_minor(self.amount_minor, self.currency, locale)


# The dollars a reader of each language writes; the ISO code after the amount says which dollars
# they are, so a USD amount on a Canadian page reads "$25.00 USD", not "US$25.00 USD".
_LOCAL_DOLLAR: dict[Locale, str] = {"en-US": "USD", "en-CA": "CAD", "fr-CA": "CAD"}


def format_minor(amount_minor: int, currency: Currency, locale: Locale = "en-US") -> str:
    """Format a (possibly negative) count of minor units for ``locale``; see ``Money.format``.

    CLDR's currency format as Babel applies it (``$1,234.56``, ``1 234,56 $`` with U+00A0 in fr-CA),
    then the ISO code. Babel loads on the first amount formatted: about 14 ms on top of pay_link's
    initialisation for one language (docs/decisions.md), inside the 30 ms the pages may spend.
    """
    from babel.numbers import format_currency

    amount = Decimal(amount_minor).scaleb(-2)
    local = format_currency(amount, _LOCAL_DOLLAR[locale], locale=locale.replace("-", "_"))
    return f"{local}\u00a0{currency}"


def parse_major(text: str, currency: Currency) -> Money:
    """Parse a decimal string in major units ("123.45") exactly, refusing more than 2 decimals."""
    cleaned = text.strip().replace(",", "")
    whole, _, fraction = cleaned.partition(".")
    if not whole.isdigit() or (fraction and (not fraction.isdigit() or len(fraction) > 2)):
        raise ValueError(f"not an amount in {currency}: {text!r}")
    return Money(amount_minor=int(whole) * 100 + int(fraction.ljust(2, "0") or 0), currency=currency)
