"""Properties (hypothesis) of the money type, its formatting per locale, the ledger's
reserve/settle/release/refund state machine against a model, and installment schedules.

Each property is what the code promises in its docstrings: ``firmpay/money.py`` (integer minor
units, ``$1,234.56 USD`` / ``1 234,56 $ CAD``), ``Ledger`` (``total = paid + pending + balance``,
conditional writes, retries change nothing) and ``firmpay/payments/plans.py`` (the schedule).
Seeded (``derandomize``) so a failure reproduces in CI; sized to run in well under a minute.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule, run_state_machine_as_test
from pydantic import ValidationError

from firmpay.errors import AmountOverBalance, Conflict, PayableClosed
from firmpay.ledger import Ledger
from firmpay.models.ledger import Payment, PaymentPlan, PaymentStatus, Refund, RefundReason, RefundStatus, new_id
from firmpay.money import MAXIMUM_AMOUNT_MINOR, CurrencyMismatch, Money, format_minor, parse_major
from firmpay.payments.plans import CHARGE_TIME, add_months, due_at, due_on, installment_amount, split_balance
from tests.conftest import ledger_table_definition
from tests.support.factories import card_payment, create_billed

PURE = settings(max_examples=200, derandomize=True, database=None, deadline=None)

amounts = st.integers(min_value=0, max_value=MAXIMUM_AMOUNT_MINOR)
signed_amounts = st.integers(min_value=-MAXIMUM_AMOUNT_MINOR, max_value=MAXIMUM_AMOUNT_MINOR)
currencies = st.sampled_from(["USD", "CAD"])

NBSP = "\u00a0"
ENGLISH = re.compile(r"^(-?)\$(\d{1,3}(?:,\d{3})*)\.(\d{2})\u00a0(USD|CAD)$")
FRENCH = re.compile(r"^(-?)(\d{1,3}(?:\u00a0\d{3})*),(\d{2})\u00a0\$\u00a0(USD|CAD)$")


def _digits_back(match: re.Match[str], separator: str) -> int:
    sign, major, minor = match.group(1), match.group(2).replace(separator, ""), match.group(3)
    value = int(major) * 100 + int(minor)
    return -value if sign else value


# -- money formatting per locale ---------------------------------------------------------------


@PURE
@given(amount=signed_amounts, currency=currencies, locale=st.sampled_from(["en-US", "en-CA"]))
def test_english_formatting_groups_by_comma_keeps_two_decimals_and_reads_back_exactly(
    amount: int, currency: Any, locale: Any
) -> None:
    text = format_minor(amount, currency, locale)
    match = ENGLISH.match(text)
    assert match is not None, text
    assert match.group(4) == currency
    assert _digits_back(match, ",") == amount


@PURE
@given(amount=signed_amounts, currency=currencies)
def test_french_canadian_formatting_uses_no_break_spaces_a_decimal_comma_and_the_dollar_after(
    amount: int, currency: Any
) -> None:
    text = format_minor(amount, currency, "fr-CA")
    match = FRENCH.match(text)
    assert match is not None, text
    assert "," not in match.group(2)
    assert "." not in text
    assert " " not in text
    assert match.group(4) == currency
    assert _digits_back(match, NBSP) == amount


@PURE
@given(amount=st.integers(min_value=1, max_value=MAXIMUM_AMOUNT_MINOR), currency=currencies)
def test_english_canadian_and_us_formatting_are_the_same_dollars_with_the_currency_code(
    amount: int, currency: Any
) -> None:
    assert format_minor(amount, currency, "en-CA") == format_minor(amount, currency, "en-US")
    assert format_minor(amount, currency, "en-CA").endswith(f"{NBSP}{currency}")


@PURE
@given(amount=st.integers(min_value=1, max_value=MAXIMUM_AMOUNT_MINOR), currency=currencies)
def test_a_negative_amount_is_the_positive_one_with_a_leading_minus(amount: int, currency: Any) -> None:
    for locale in ("en-US", "en-CA", "fr-CA"):
        assert format_minor(-amount, currency, locale) == "-" + format_minor(amount, currency, locale)  # type: ignore[arg-type]


def test_zero_has_no_sign_and_two_zero_decimals() -> None:
    assert format_minor(0, "USD", "en-US") == f"$0.00{NBSP}USD"
    assert format_minor(0, "CAD", "en-CA") == f"$0.00{NBSP}CAD"
    assert format_minor(0, "CAD", "fr-CA") == f"0,00{NBSP}${NBSP}CAD"


@PURE
@given(amount=amounts, currency=currencies, locale=st.sampled_from(["en-US", "en-CA", "fr-CA"]))
def test_money_formats_as_its_minor_units_do(amount: int, currency: Any, locale: Any) -> None:
    assert Money(amount_minor=amount, currency=currency).format(locale) == format_minor(amount, currency, locale)


# -- parsing and arithmetic --------------------------------------------------------------------


@PURE
@given(amount=amounts, currency=currencies)
def test_an_english_amount_parses_back_to_the_same_money(amount: int, currency: Any) -> None:
    shown = format_minor(amount, currency, "en-US").removeprefix("$").split(NBSP)[0]  # "1,234.56"
    assert parse_major(shown, currency) == Money(amount_minor=amount, currency=currency)


@PURE
@given(whole=st.integers(0, 10**6), fraction=st.from_regex(r"\A[0-9]{3,6}\Z"), currency=currencies)
def test_more_than_two_decimals_are_refused_never_rounded(whole: int, fraction: str, currency: Any) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_major(f"{whole}.{fraction}", currency)


@PURE
@given(a=amounts, b=amounts, currency=currencies)
def test_sums_and_differences_are_exact_in_minor_units_and_stay_in_range(a: int, b: int, currency: Any) -> None:
    x, y = Money(amount_minor=a, currency=currency), Money(amount_minor=b, currency=currency)
    if a + b <= MAXIMUM_AMOUNT_MINOR:
        assert (x + y) == (y + x) == Money(amount_minor=a + b, currency=currency)
        assert (x + y) - y == x
    else:
        with pytest.raises(ValidationError):
            x + y
    if a >= b:
        assert (x - y).amount_minor == a - b
    else:  # money is never negative
        with pytest.raises(ValidationError):
            x - y
    assert (x < y, x <= y, x > y, x >= y) == (a < b, a <= b, a > b, a >= b)


@PURE
@given(a=amounts, b=amounts)
def test_dollars_of_two_countries_never_combine(a: int, b: int) -> None:
    usd, cad = Money(amount_minor=a, currency="USD"), Money(amount_minor=b, currency="CAD")
    for combine in (lambda: usd + cad, lambda: usd - cad, lambda: usd < cad, lambda: cad >= usd):
        with pytest.raises(CurrencyMismatch):
            combine()


@PURE
@given(value=st.one_of(st.floats(allow_nan=False), st.decimals(allow_nan=False), st.text(max_size=5)))
def test_money_is_never_built_from_a_float_or_a_string(value: Any) -> None:
    with pytest.raises(ValidationError):
        Money(amount_minor=value, currency="USD")


# -- installment schedules ---------------------------------------------------------------------

starts = st.dates(min_value=date(2026, 1, 1), max_value=date(2040, 12, 31))
frequencies = st.sampled_from(["weekly", "biweekly", "monthly"])


def _plan(installment: int, installments: int, next_installment: int) -> PaymentPlan:
    return PaymentPlan(
        plan_id="plan_p",
        payable_id="pbl_p",
        firm_id="firm_p",
        client_id="cli_p",
        method_id="mth_p",
        currency="USD",
        installment_minor=installment,
        installments=installments,
        frequency="monthly",
        start_on=date(2026, 1, 1),
        next_installment=next_installment,
        next_due_at=datetime(2026, 1, 1, 12, tzinfo=UTC),
    )


def _charges(installment: int, installments: int, balance: int) -> list[int]:
    """What each installment charges when every one succeeds and nobody pays another way."""
    charged: list[int] = []
    for number in range(1, installments + 1):
        if balance == 0:
            break
        amount = installment_amount(_plan(installment, installments, number), balance)
        charged.append(amount)
        balance -= amount
    return charged


@PURE
@given(data=st.data(), balance=st.integers(min_value=50, max_value=MAXIMUM_AMOUNT_MINOR))
def test_installments_by_count_add_up_to_the_balance_and_the_last_takes_the_remainder(
    data: st.DataObject, balance: int
) -> None:
    count = data.draw(st.integers(min_value=1, max_value=min(120, balance // 50)))
    installment, installments = split_balance(balance, None, count)
    charged = _charges(installment, installments, balance)
    assert installments == count
    assert len(charged) == count
    assert sum(charged) == balance
    assert charged[:-1] == [installment] * (count - 1)
    assert charged[-1] == balance - installment * (count - 1) >= installment


@PURE
@given(data=st.data(), balance=st.integers(min_value=50, max_value=MAXIMUM_AMOUNT_MINOR))
def test_installments_by_amount_add_up_to_the_balance_and_the_last_is_the_rest(
    data: st.DataObject, balance: int
) -> None:
    installment = data.draw(st.integers(min_value=max(50, -(-balance // 120)), max_value=balance))
    _, installments = split_balance(balance, installment, None)
    charged = _charges(installment, installments, balance)
    rest = balance - installment * (-(-balance // installment) - 1)
    # A rest under the processor's minimum is folded into the installment before it.
    assert len(charged) == installments == -(-balance // installment) - (1 if 0 < rest < 50 < balance else 0)
    assert sum(charged) == balance
    assert all(c == installment for c in charged[:-1])
    assert all(c >= 50 for c in charged)
    assert 0 < charged[-1] < installment + 50


@PURE
@given(start=starts, frequency=frequencies, count=st.integers(min_value=2, max_value=120))
def test_due_dates_strictly_increase_and_are_charged_at_the_charge_time(
    start: date, frequency: Any, count: int
) -> None:
    dates = [due_on(start, frequency, n) for n in range(1, count + 1)]
    assert dates[0] == start
    assert all(a < b for a, b in itertools.pairwise(dates))
    if frequency != "monthly":
        step = timedelta(weeks=1 if frequency == "weekly" else 2)
        assert all(b - a == step for a, b in itertools.pairwise(dates))
    assert due_at(start, frequency, count) == datetime.combine(dates[-1], CHARGE_TIME)
    assert due_at(start, frequency, count).timetz() == time(12, 0, tzinfo=UTC)


@PURE
@given(start=starts, months=st.integers(min_value=0, max_value=119))
def test_monthly_dates_keep_the_day_clamped_to_the_month_end_without_drifting(start: date, months: int) -> None:
    moved = add_months(start, months)
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == months
    month_end = (date(moved.year + moved.month // 12, moved.month % 12 + 1, 1) - timedelta(days=1)).day
    assert moved.day == min(start.day, month_end)
    assert due_on(start, "monthly", months + 1) == moved


# -- the ledger against a model ----------------------------------------------------------------


@dataclass
class Model:
    """What the counters of one bill must be, by the ledger's documented rules."""

    total: int
    balance: int
    pending: int = 0
    paid: int = 0
    refunded: int = 0
    voided: bool = False
    status: dict[str, PaymentStatus] = field(default_factory=dict)
    payment_refunded: dict[str, int] = field(default_factory=dict)
    payment_refunding: dict[str, int] = field(default_factory=dict)
    refund_status: dict[str, RefundStatus] = field(default_factory=dict)


class LedgerMachine(RuleBasedStateMachine):
    """Reserve, settle, release, retry, void and refund one bill in any order; after every step
    the stored payable equals the model and ``check_invariant`` passes."""

    dynamodb: Any  # a DynamoDB client on DynamoDB Local, set on the class by the test
    payments = Bundle("payments")
    refunds = Bundle("refunds")

    def __init__(self) -> None:
        super().__init__()
        # A table of its own per run: nothing a previous sequence wrote can meet this one.
        self.table = f"ledger-machine-{new_id('t')}"
        self.dynamodb.create_table(TableName=self.table, **ledger_table_definition())
        self.ledger = Ledger(self.dynamodb, self.table)
        self.billed = create_billed(self.ledger, amounts=(10_000,))
        self.model = Model(total=10_000, balance=10_000)

    def teardown(self) -> None:
        self.dynamodb.delete_table(TableName=self.table)

    @property
    def payable_id(self) -> str:
        return self.billed.payable.payable_id

    @rule(target=payments, amount=st.integers(min_value=1, max_value=10_050))
    def reserve(self, amount: int) -> Any:
        payment = card_payment(self.billed, amount)
        model = self.model
        if model.voided or model.balance < amount:
            expected: Any = PayableClosed if model.voided or model.balance == 0 else AmountOverBalance
            with pytest.raises(expected):
                self.ledger.reserve(payment)
            return multiple()
        assert self.ledger.reserve(payment)
        model.balance -= amount
        model.pending += amount
        model.status[payment.payment_id] = PaymentStatus.PENDING
        model.payment_refunded[payment.payment_id] = model.payment_refunding[payment.payment_id] = 0
        return payment

    @rule(payment=payments)
    def reserve_the_same_payment_again(self, payment: Payment) -> None:
        # A retried submit: the row exists, so nothing moves, whatever the payment's or bill's state.
        assert not self.ledger.reserve(payment)

    @rule(payment=payments)
    def settle(self, payment: Payment) -> None:
        reserved = self.model.status[payment.payment_id] is PaymentStatus.PENDING
        assert self.ledger.settle(payment) is reserved
        if reserved:
            self.model.pending -= payment.amount_minor
            self.model.paid += payment.amount_minor
            self.model.status[payment.payment_id] = PaymentStatus.SUCCEEDED

    @rule(payment=payments, outcome=st.sampled_from([PaymentStatus.FAILED, PaymentStatus.CANCELED]))
    def release(self, payment: Payment, outcome: PaymentStatus) -> None:
        reserved = self.model.status[payment.payment_id] is PaymentStatus.PENDING
        assert self.ledger.release(payment, outcome, failure_code="card_declined") is reserved
        if reserved:
            self.model.pending -= payment.amount_minor
            self.model.balance += payment.amount_minor
            self.model.status[payment.payment_id] = outcome

    @rule()
    def void(self) -> None:
        if self.model.pending:
            with pytest.raises(Conflict):
                self.ledger.void_payable(self.payable_id, datetime.now(UTC))
            return
        assert self.ledger.void_payable(self.payable_id, datetime.now(UTC)).voided_at is not None
        self.model.voided = True

    @rule(target=refunds, payment=payments, share=st.integers(min_value=1, max_value=100))
    def open_refund(self, payment: Payment, share: int) -> Any:
        seen = self.ledger.get_payment(self.payable_id, payment.payment_id)
        assert seen is not None
        if seen.refundable_minor == 0:
            return multiple()
        amount = max(1, seen.refundable_minor * share // 100)
        refund = Refund(
            refund_id=new_id("ref"),
            payable_id=self.payable_id,
            payment_id=payment.payment_id,
            firm_id=self.billed.firm.firm_id,
            client_id=self.billed.client.client_id,
            amount_minor=amount,
            currency=payment.currency,
            reason=RefundReason.REQUESTED_BY_CUSTOMER,
            booking="balance_restored",
            idempotency_key=new_id("key"),
            request_sha256="0" * 64,
        )
        assert self.ledger.open_refund(refund, seen) == "opened"
        self.model.payment_refunding[payment.payment_id] += amount
        self.model.refund_status[refund.refund_id] = RefundStatus.PENDING
        return refund

    @rule(refund=refunds)
    def settle_refund(self, refund: Refund) -> None:
        pending = self.model.refund_status[refund.refund_id] is RefundStatus.PENDING
        assert self.ledger.settle_refund(refund, f"re_{refund.refund_id}", datetime.now(UTC)) is pending
        if pending:
            self.model.payment_refunding[refund.payment_id] -= refund.amount_minor
            self.model.payment_refunded[refund.payment_id] += refund.amount_minor
            self.model.paid -= refund.amount_minor
            self.model.refunded += refund.amount_minor
            self.model.balance += refund.amount_minor  # a refunded bill is owed again
            self.model.refund_status[refund.refund_id] = RefundStatus.SUCCEEDED

    @rule(refund=refunds)
    def release_refund(self, refund: Refund) -> None:
        pending = self.model.refund_status[refund.refund_id] is RefundStatus.PENDING
        assert self.ledger.release_refund(refund, RefundStatus.FAILED, "declined", datetime.now(UTC)) is pending
        if pending:
            self.model.payment_refunding[refund.payment_id] -= refund.amount_minor
            self.model.refund_status[refund.refund_id] = RefundStatus.FAILED

    @invariant()
    def the_stored_bill_is_the_model_and_keeps_the_invariant(self) -> None:
        stored = self.ledger.check_invariant(self.payable_id)
        model = self.model
        assert (stored.total_minor, stored.balance_minor, stored.pending_minor, stored.paid_minor) == (
            model.total,
            model.balance,
            model.pending,
            model.paid,
        )
        assert stored.refunded_minor == model.refunded
        assert (stored.voided_at is not None) == model.voided
        assert stored.open_for_payment == (not model.voided and model.balance > 0)


def test_the_ledger_follows_the_model_through_any_sequence_of_payments_and_refunds(dynamodb_endpoint: str) -> None:
    import botocore.session

    dynamodb = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1"
    )
    machine = type("BoundLedgerMachine", (LedgerMachine,), {"dynamodb": dynamodb})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,  # x 20 steps: ~25 s; derandomized, so CI runs the same 25 sequences
            stateful_step_count=20,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
