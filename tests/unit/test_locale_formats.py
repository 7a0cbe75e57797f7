"""Our money and date formats are CLDR's, as Babel formats them.

Babel itself stays out of the Lambda layer: importing it and loading its locale data costs about
35 ms at cold start (docs/decisions.md), more than the 30 ms the pay page may spend on formatting.
So firmpay.money and firmpay.web.pages keep small formatters, and this test holds them to Babel's
output: every amount the tests and the demo use, a sweep of amounts, every day of two years.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from babel.dates import format_date as babel_date
from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st

from firmpay.money import MAXIMUM_AMOUNT_MINOR, MINIMUM_CHARGE_MINOR, Currency, Locale, format_minor
from firmpay.web.pages import format_date
from local.seed import DEMO_FIRMS

TESTS = Path(__file__).resolve().parents[1]
# The currency each language's firms bill in: a US firm's page is en-US in USD, a Canadian firm's
# en-CA or fr-CA in CAD.
PAIRS: list[tuple[Locale, Currency]] = [("en-US", "USD"), ("en-CA", "CAD"), ("fr-CA", "CAD")]


def babel_money(amount_minor: int, currency: Currency, locale: Locale) -> str:
    """Babel's amount in ``locale``, then the ISO code (ours names the currency: $ is ambiguous)."""
    formatted = format_currency(Decimal(amount_minor) / 100, currency, locale=locale.replace("-", "_"))
    return f"{formatted}\u00a0{currency}"


def amounts_in_the_tests() -> set[int]:
    """Every amount the tests write in minor units (``150_050``) or show formatted (``$3,500.50``,
    ``1 605,75 $``), and the demo firms' line items and deposits."""
    found = {0, MINIMUM_CHARGE_MINOR, MAXIMUM_AMOUNT_MINOR}
    for path in TESTS.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        found |= {int(m.replace("_", "")) for m in re.findall(r"\b\d{1,3}(?:_\d{3})+\b", source)}
        for major, minor in re.findall(r"\$(\d{1,3}(?:,\d{3})*)\.(\d{2})", source):
            found.add(int(major.replace(",", "")) * 100 + int(minor))
        for major, minor in re.findall(
            r"(\d{1,3}(?:(?:\\u00a0|\u00a0| )\d{3})*),(\d{2})(?:\\u00a0|\u00a0| )\$", source
        ):
            found.add(int(re.sub(r"\\u00a0|\u00a0| ", "", major)) * 100 + int(minor))
    for demo in DEMO_FIRMS:
        found |= {amount for _, amount in demo["bill"][1]} | {demo["trust"][1]}
        found.add(sum(amount for _, amount in demo["bill"][1]))
    return {amount for amount in found if amount <= MAXIMUM_AMOUNT_MINOR}


def test_the_amounts_found_include_those_the_pay_pages_show() -> None:
    found = amounts_in_the_tests()
    assert {350_050, 160_575, 250_000, 100_000, 50} <= found
    assert len(found) > 40


@pytest.mark.parametrize(("locale", "currency"), PAIRS)
def test_every_amount_in_the_tests_formats_as_babel_does(locale: Locale, currency: Currency) -> None:
    for amount in sorted(amounts_in_the_tests()):
        assert format_minor(amount, currency, locale) == babel_money(amount, currency, locale), amount
        assert format_minor(-amount, currency, locale) == babel_money(-amount, currency, locale), -amount


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(amount=st.integers(min_value=0, max_value=MAXIMUM_AMOUNT_MINOR), pair=st.sampled_from(PAIRS))
def test_any_amount_formats_as_babel_does(amount: int, pair: tuple[Locale, Currency]) -> None:
    locale, currency = pair
    assert format_minor(amount, currency, locale) == babel_money(amount, currency, locale)


@pytest.mark.parametrize("locale", ["en-US", "en-CA", "fr-CA"])
def test_every_day_of_two_years_formats_as_babel_does(locale: Locale) -> None:
    day = date(2027, 1, 1)
    while day < date(2029, 1, 1):  # 2028 is a leap year
        assert format_date(day, locale) == babel_date(day, "long", locale=locale.replace("-", "_")), day
        day += timedelta(days=1)
