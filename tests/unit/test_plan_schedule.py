"""Payment-plan schedules and installment amounts (pure functions; no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from firmpay.errors import AmountBelowMinimum, AmountOverBalance
from firmpay.models.ledger import PaymentPlan
from firmpay.payments.plans import add_months, due_at, due_on, installment_amount, split_balance


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 15), 1, date(2026, 2, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),
        (date(2026, 1, 31), 3, date(2026, 4, 30)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 5), 1, date(2027, 1, 5)),
        (date(2026, 3, 10), 0, date(2026, 3, 10)),
    ],
)
def test_monthly_dates_keep_the_day_clamped_to_the_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_a_monthly_plan_started_on_the_31st_does_not_drift() -> None:
    dates = [due_on(date(2026, 1, 31), "monthly", n) for n in range(1, 5)]

    assert dates == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_weekly_and_biweekly_dates() -> None:
    assert [due_on(date(2026, 12, 28), "weekly", n) for n in (1, 2, 3)] == [
        date(2026, 12, 28),
        date(2027, 1, 4),
        date(2027, 1, 11),
    ]
    assert due_on(date(2026, 12, 28), "biweekly", 3) == date(2027, 1, 25)


def test_an_installment_is_charged_at_noon_utc_of_its_due_date() -> None:
    assert due_at(date(2026, 2, 1), "monthly", 2) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def plan(installment: int, installments: int, next_installment: int) -> PaymentPlan:
    return PaymentPlan(
        plan_id="plan_1",
        payable_id="pbl_1",
        firm_id="firm_1",
        client_id="cli_1",
        method_id="mth_1",
        currency="USD",
        installment_minor=installment,
        installments=installments,
        frequency="monthly",
        start_on=date(2026, 1, 1),
        next_installment=next_installment,
        next_due_at=datetime(2026, 1, 1, 12, tzinfo=UTC),
    )


def test_the_last_installment_charges_the_exact_remainder() -> None:
    assert installment_amount(plan(33_333, 3, 1), 100_000) == 33_333
    assert installment_amount(plan(33_333, 3, 2), 66_667) == 33_333
    assert installment_amount(plan(33_333, 3, 3), 33_334) == 33_334


def test_an_installment_never_charges_more_than_the_balance() -> None:
    # the client paid part of the bill on the pay page meanwhile
    assert installment_amount(plan(50_000, 3, 2), 20_000) == 20_000


def test_a_balance_split_by_count_rounds_down_and_leaves_the_rest_to_the_last() -> None:
    assert split_balance(100_000, None, 3) == (33_333, 3)


def test_a_balance_split_by_amount_counts_the_installments() -> None:
    assert split_balance(100_000, 30_000, None) == (30_000, 4)
    assert split_balance(90_000, 30_000, None) == (30_000, 3)


def test_a_split_that_is_too_fine_or_too_large_is_refused() -> None:
    with pytest.raises(AmountBelowMinimum):
        split_balance(100, None, 3)
    with pytest.raises(AmountBelowMinimum):
        split_balance(100_000, 20, None)
    with pytest.raises(AmountOverBalance):
        split_balance(100_000, 100_001, None)
