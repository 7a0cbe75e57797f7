"""The ledger's money rules, against DynamoDB (DynamoDB Local) through the real client: reserve, settle,
release, idempotent retries, races, void, links — and the invariant after every step."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from firmpay.errors import AmountOverBalance, Conflict, PayableClosed, PayLinkExpired, PayLinkNotFound
from firmpay.ledger import Ledger
from firmpay.models.ledger import PayableStatus, Payment, PaymentStatus
from firmpay.payments.links import issue_pay_link, resolve_link
from tests.support.factories import Billed, card_payment, create_billed

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def payment(billed: Billed, payment_id: str, amount: int) -> Payment:
    return card_payment(billed, amount, payment_id)


def test_a_reserved_then_settled_payment_moves_balance_to_paid(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    first = payment(billed, "pay_a", 6_000)
    assert ledger.reserve(first)
    reserved = ledger.check_invariant(billed.payable.payable_id)
    assert (reserved.balance_minor, reserved.pending_minor, reserved.paid_minor) == (4_000, 6_000, 0)
    assert ledger.settle(first)
    settled = ledger.check_invariant(billed.payable.payable_id)
    assert (settled.balance_minor, settled.pending_minor, settled.paid_minor) == (4_000, 0, 6_000)
    assert settled.status is PayableStatus.PARTIALLY_PAID


def test_a_failed_payment_gives_the_balance_back(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    declined = payment(billed, "pay_b", 10_000)
    ledger.reserve(declined)
    assert ledger.release(declined, PaymentStatus.FAILED, failure_code="card_declined")
    after = ledger.check_invariant(billed.payable.payable_id)
    assert (after.balance_minor, after.pending_minor, after.paid_minor) == (10_000, 0, 0)
    assert after.status is PayableStatus.OPEN


def test_settling_or_releasing_twice_changes_nothing_the_second_time(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    p = payment(billed, "pay_c", 10_000)
    ledger.reserve(p)
    assert ledger.settle(p)
    assert not ledger.settle(p)
    assert not ledger.release(p, PaymentStatus.FAILED)
    after = ledger.check_invariant(billed.payable.payable_id)
    assert after.paid_minor == 10_000
    assert after.status is PayableStatus.PAID


def test_the_same_payment_row_is_reserved_once(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    p = payment(billed, "pay_d", 3_000)
    assert ledger.reserve(p)
    assert not ledger.reserve(p)
    assert ledger.check_invariant(billed.payable.payable_id).pending_minor == 3_000


def test_more_than_the_balance_is_refused_and_nothing_changes(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    with pytest.raises(AmountOverBalance):
        ledger.reserve(payment(billed, "pay_e", 10_001))
    assert ledger.check_invariant(billed.payable.payable_id).balance_minor == 10_000


def test_racing_reservations_for_the_last_dollar_let_exactly_one_through(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(100,))
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            ledger.reserve(payment(billed, f"pay_race_{i}", 100))
            outcomes.append("reserved")
        except (AmountOverBalance, PayableClosed):
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("reserved") == 1
    assert outcomes.count("refused") == 7
    assert ledger.check_invariant(billed.payable.payable_id).pending_minor == 100


def test_a_voided_payable_takes_no_payment(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    voided = ledger.void_payable(billed.payable.payable_id, NOW)
    assert voided.status is PayableStatus.VOID
    with pytest.raises(PayableClosed):
        ledger.reserve(payment(billed, "pay_f", 1_000))


def test_a_payable_with_a_payment_in_flight_cannot_be_voided(ledger: Ledger) -> None:
    billed = create_billed(ledger, amounts=(10_000,))
    ledger.reserve(payment(billed, "pay_g", 1_000))
    with pytest.raises(Conflict):
        ledger.void_payable(billed.payable.payable_id, NOW)


def test_payable_numbers_are_unique_per_firm(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    with pytest.raises(Conflict):
        ledger.create_payable(billed.payable.model_copy(update={"payable_id": "pbl_other", "memo": "another"}))


def test_a_reissued_link_revokes_the_previous_one(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    first_url, _ = issue_pay_link(ledger, billed.payable, "https://pay.example", NOW)
    payable = ledger.get_payable(billed.payable.payable_id)
    assert payable is not None
    second_url, _ = issue_pay_link(ledger, payable, "https://pay.example", NOW)
    with pytest.raises(PayLinkExpired):
        resolve_link(ledger, first_url.rsplit("/", 1)[1], NOW)
    assert resolve_link(ledger, second_url.rsplit("/", 1)[1], NOW).payable.number == billed.payable.number


def test_expired_unknown_and_malformed_links_are_refused(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    url, _ = issue_pay_link(ledger, billed.payable, "https://pay.example", NOW, days=1)
    token = url.rsplit("/", 1)[1]
    with pytest.raises(PayLinkExpired):
        resolve_link(ledger, token, NOW + timedelta(days=1, seconds=1))
    for bad in ("x" * 43, "short", token + "x", "../../etc/passwd"):
        with pytest.raises(PayLinkNotFound):
            resolve_link(ledger, bad, NOW)


def test_the_stored_token_is_only_its_hash(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    url, link = issue_pay_link(ledger, billed.payable, "https://pay.example", NOW)
    token = url.rsplit("/", 1)[1]
    assert token not in link.model_dump_json()
    assert len(token) == 43
