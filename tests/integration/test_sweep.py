"""The payment sweep on the local stack: it alone repairs a crash after Stripe's confirm, and it
cancels (at Stripe) and releases payments whose client walked away from 3-D Secure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import keys
from firmpay.models.ledger import Payment
from firmpay.payments.sweep import sweep_pending
from local.iam import acting_as
from local.stack import LocalStack
from tests.integration.test_stripe_webhook import crash_after_confirm
from tests.support.bulk import forget, processing_debits
from tests.support.card_stack import CARD_3DS, StackLink, forget_failed_attempts, open_link, set_webhook_delivery
from tests.support.echeck_stack import open_echeck_link

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _only_the_sweep(stack: LocalStack) -> Iterator[None]:
    set_webhook_delivery(stack, enabled=False)
    yield
    set_webhook_delivery(stack, enabled=True)
    forget_failed_attempts(stack)


def sweep(stack: LocalStack, minutes_later: int) -> dict[str, int]:
    now = datetime.now(UTC) + timedelta(minutes=minutes_later)
    with acting_as("PaymentSweepFunction"):  # the scheduled sweep's code, under its role (local/iam.py)
        return sweep_pending(stack.ledger, StripeGateway(), now, abandon_after=timedelta(minutes=15)).as_dict()


def test_the_sweep_alone_repairs_a_crash_after_the_charge(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    link = open_link(stack)
    payment_id = crash_after_confirm(stack, link, monkeypatch)

    assert sweep(stack, minutes_later=1).get("succeeded", 0) == 0  # too young: the submit may still finish it
    report = sweep(stack, minutes_later=4)

    assert report["succeeded"] >= 1
    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "succeeded"
    assert link.invariant().paid_minor == 150_050
    assert len(link.charges()) == 1


def test_the_sweep_cancels_an_abandoned_challenge_and_frees_the_balance(stack: LocalStack) -> None:
    link = open_link(stack)
    asked = link.submit(link.review(CARD_3DS).json()["review_id"]).json()
    assert asked["status"] == "requires_action"

    sweep(stack, minutes_later=4)  # a challenge may take a few minutes: still waiting
    assert link.ledger.get_payment(link.payable_id, asked["payment_id"]).status.value == "requires_action"
    sweep(stack, minutes_later=16)

    assert link.ledger.get_payment(link.payable_id, asked["payment_id"]).status.value == "canceled"
    assert link.intents()[0].status == "canceled"
    assert link.invariant().balance_minor == 150_050
    assert link.charges() == []


def age_payment(stack: LocalStack, payable_id: str, payment_id: str, minutes: int) -> None:
    """Make a reserved payment look ``minutes`` old to the sweep (its created time and the pending
    index sort key built from it), as the scheduled handler reads the clock itself."""
    created = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="microseconds")
    stack.client("dynamodb").update_item(
        TableName=stack.env["LEDGER_TABLE"],
        Key=keys.payment(payable_id, payment_id),
        UpdateExpression="SET created_at = :created, gsi1sk = :sort",
        ExpressionAttributeValues={
            ":created": {"S": created},
            ":sort": {"S": f"{created}#{payable_id}#{payment_id}"},
        },
    )


def test_the_scheduled_handler_repairs_a_crash_after_the_charge(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = open_link(stack)
    payment_id = crash_after_confirm(stack, link, monkeypatch)
    age_payment(stack, link.payable_id, payment_id, minutes=4)

    answer = stack.invoke("payment_sweep", {"action": "sweep_pending_payments"})

    assert answer["examined"] >= 1, answer
    assert answer.get("succeeded", 0) >= 1, answer
    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "succeeded"
    assert link.invariant().paid_minor == 150_050
    assert len(link.charges()) == 1


def abandoned_challenge(stack: LocalStack) -> tuple[StackLink, str]:
    link = open_link(stack)
    asked = link.submit(link.review(CARD_3DS).json()["review_id"]).json()
    assert asked["status"] == "requires_action"
    return link, asked["payment_id"]


@pytest.fixture
def echeck_debits_processing(stack: LocalStack) -> Iterator[Callable[[int], StackLink]]:
    """``count`` eCheck debits of 1.00 processing for two days, older than anything else in the
    sweep's way, on one debit processing at Stripe (the same amount, so each reads as processing)."""
    made: list[Payment] = []

    def make(count: int) -> StackLink:
        first = open_echeck_link(stack)
        paid = first.pay_echeck(amount=100)
        assert paid["status"] == "processing", paid
        debits = open_link(stack, amounts=(count * 100,))
        since = datetime.now(UTC) - timedelta(days=2)
        made.extend(processing_debits(stack, debits.billed, first.intent_of(paid["payment_id"]), count, 100, since))
        debits.invariant()
        return debits

    yield make
    forget(stack, made)


@pytest.mark.unreconciled(
    "its 200 debits are rows written straight to the ledger on one real intent, removed by the fixture"
)
def test_one_sweep_releases_an_abandoned_challenge_behind_200_processing_debits(
    stack: LocalStack, echeck_debits_processing: Callable[[int], StackLink]
) -> None:
    # Given 200 eCheck debits processing (days old) and, newer, a 3-D Secure payment nobody finished
    debits = echeck_debits_processing(200)
    link, payment_id = abandoned_challenge(stack)

    # When one sweep runs once the challenge has expired
    report = sweep(stack, minutes_later=16)

    # Then it read past the debits (all still processing) and released the abandoned payment
    assert report["examined"] >= 202, report
    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "canceled"
    assert link.invariant().balance_minor == 150_050
    assert link.intents()[0].status == "canceled"
    assert debits.invariant().pending_minor == 200 * 100


@pytest.mark.unreconciled(
    "its 200 debits are rows written straight to the ledger on one real intent, removed by the fixture"
)
def test_a_sweep_out_of_time_stops_and_the_next_run_resumes_where_it_stopped(
    stack: LocalStack, echeck_debits_processing: Callable[[int], StackLink]
) -> None:
    # Given 5 old processing debits and, newer, an abandoned challenge
    echeck_debits_processing(5)
    link, payment_id = abandoned_challenge(stack)
    now = datetime.now(UTC) + timedelta(minutes=16)
    budget = iter([60.0] * 3 + [0.0] * 1000)  # seconds left: room for three payments, then none

    # When a sweep runs out of time after three payments
    first = sweep_pending(stack.ledger, StripeGateway(), now, timedelta(minutes=15), time_left=lambda: next(budget))

    # Then it says so, and the challenge waits for the next run
    assert (first.examined, first.outcomes["resume_next_run"]) == (3, 1)
    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "requires_action"
    assert stack.ledger.get_cursor("sweep") is not None

    # When the next run has time, it starts where the first stopped and goes round to it again
    second = sweep_pending(stack.ledger, StripeGateway(), now, timedelta(minutes=15))

    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "canceled"
    assert link.invariant().balance_minor == 150_050
    assert stack.ledger.get_cursor("sweep") is None
    assert second.outcomes["resume_next_run"] == 0
