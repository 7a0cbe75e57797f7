"""Money: integer minor units, one currency, formatting per locale."""

import pytest
from pydantic import ValidationError

from firmpay.money import CurrencyMismatch, Money, format_minor, parse_major


def usd(amount: int) -> Money:
    return Money(amount_minor=amount, currency="USD")


def test_adding_and_subtracting_keeps_exact_cents() -> None:
    assert (usd(10) + usd(20)).amount_minor == 30
    assert (usd(150_050) - usd(50)).amount_minor == 150_000


def test_amounts_in_different_currencies_never_combine() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = usd(1) + Money(amount_minor=1, currency="CAD")
    with pytest.raises(CurrencyMismatch):
        _ = usd(1) < Money(amount_minor=1, currency="CAD")


@pytest.mark.parametrize("bad", [10.5, "100", True, -1, None])
def test_money_refuses_floats_strings_booleans_and_negatives(bad: object) -> None:
    with pytest.raises(ValidationError):
        Money(amount_minor=bad, currency="USD")  # type: ignore[arg-type]


def test_money_refuses_unknown_currencies() -> None:
    with pytest.raises(ValidationError):
        Money(amount_minor=1, currency="EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (150_050, "USD", "en-US", "$1,500.50\u00a0USD"),
        (5, "USD", "en-US", "$0.05\u00a0USD"),
        (123_456_789, "CAD", "en-CA", "$1,234,567.89\u00a0CAD"),
        (150_050, "CAD", "fr-CA", "1\u00a0500,50\u00a0$\u00a0CAD"),
        (-2_500, "USD", "en-US", "-$25.00\u00a0USD"),
    ],
)
def test_amounts_are_formatted_for_the_firms_locale(amount: int, currency: str, locale: str, expected: str) -> None:
    assert format_minor(amount, currency, locale) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "minor"), [("123.45", 12345), ("1,500", 150000), ("0.5", 50), ("7", 700)])
def test_decimal_text_parses_exactly(text: str, minor: int) -> None:
    assert parse_major(text, "USD").amount_minor == minor


@pytest.mark.parametrize("text", ["1.234", "abc", "-5", "", "1e3"])
def test_decimal_text_with_more_than_cents_or_garbage_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_major(text, "USD")
