"""The payment sweep on the local stack: it alone repairs a crash after Stripe's confirm, and it
cancels (at Stripe) and releases payments whose client walked away from 3-D Secure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import keys
from firmpay.payments.sweep import sweep_pending
from local.iam import acting_as
from local.stack import LocalStack
from tests.integration.test_stripe_webhook import crash_after_confirm
from tests.support.card_stack import CARD_3DS, forget_failed_attempts, open_link, set_webhook_delivery

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
