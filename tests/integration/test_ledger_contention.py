"""Money transactions that DynamoDB cancels for a reason other than a failed condition.

Real DynamoDB cancels a ``TransactWriteItems`` with ``TransactionConflict`` when another
transaction holds one of its items, and with ``ThrottlingError`` when the table is over its
capacity; DynamoDB Local does neither on its own, so the AWS proxy answers with DynamoDB's
``TransactionCanceledException`` (``stack.proxy.cancel_transaction``). Nothing was written, so the
ledger sends the transaction again; when it never goes through the client gets 503 with
Retry-After, the ledger is exactly as before that transaction, and the client's retry finishes
the job without a second charge or refund. Each money operation is covered: the reserve (card
submit), the settle that follows Stripe's success, and the refund (opening it and booking it).

The emulator's webhooks are off and the stream poller is paused while a fault is armed, so the
cancellations reach the transaction under test and nothing else repairs what it left.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from firmpay.ledger import keys
from local.stack import LocalStack
from tests.integration.conftest import FirmClient
from tests.support.card_stack import StackLink, forget_failed_attempts, open_link, set_webhook_delivery

pytestmark = pytest.mark.integration

REASONS = ("TransactionConflict", "ThrottlingError")
ATTEMPTS = 6  # the ledger's tries per transaction (ledger.base._TRANSACT_ATTEMPTS)
AMOUNT = 42_000


@pytest.fixture(autouse=True)
def _only_the_test_writes(stack: LocalStack) -> Iterator[None]:
    """No emulator webhook and no stream delivery while a test's faults are armed."""
    set_webhook_delivery(stack, enabled=False)
    stack.poller.pause()
    try:
        yield
    finally:
        stack.proxy.clear_faults()
        stack.poller.resume()
        set_webhook_delivery(stack, enabled=True)
        forget_failed_attempts(stack)


def payable_items(link: StackLink) -> list[dict[str, Any]]:
    """Every ledger item of the payable (the payable, its payments and refunds), as stored."""
    answer = link.stack.client("dynamodb").query(
        TableName=link.stack.env["LEDGER_TABLE"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": keys.payable(link.payable_id)["pk"]},
        ConsistentRead=True,
    )
    return sorted(answer["Items"], key=lambda item: item["sk"]["S"])


def transactions(stack: LocalStack) -> int:
    return stack.proxy.counts("dynamodb").get("TransactWriteItems", 0)


def reviewed(link: StackLink) -> str:
    answer = link.review(amount=AMOUNT)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["review_id"])


def assert_busy(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "service_unavailable"
    assert int(answer.headers["Retry-After"]) > 0


def only_payment(link: StackLink) -> Any:
    payments = [i for i in payable_items(link) if i["sk"]["S"].startswith("PAYMENT#")]
    assert len(payments) == 1, payments
    return link.ledger.get_payment(link.payable_id, payments[0]["sk"]["S"].removeprefix("PAYMENT#"))


# -- the reserve (a card submit) ------------------------------------------------------------------


@pytest.mark.parametrize("reason", REASONS)
def test_a_cancelled_reserve_is_retried_into_exactly_one_reservation(stack: LocalStack, reason: str) -> None:
    link = open_link(stack, amounts=(AMOUNT,))
    review_id = reviewed(link)
    stack.proxy.reset_counts()
    stack.proxy.cancel_transaction(reason, times=2)  # the reserve collides twice, then goes through

    answer = link.submit(review_id)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded"
    assert stack.proxy.pending_faults == []
    assert transactions(stack) == 2 + 1 + 1  # two cancelled reserves, the reserve, the settle
    payment = only_payment(link)
    assert (payment.status.value, payment.amount_minor) == ("succeeded", AMOUNT)
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (AMOUNT, 0, 0)
    assert len(link.charges()) == 1


@pytest.mark.parametrize("reason", REASONS)
def test_a_reserve_that_never_goes_through_answers_503_and_writes_nothing(stack: LocalStack, reason: str) -> None:
    link = open_link(stack, amounts=(AMOUNT,))
    review_id = reviewed(link)
    before = payable_items(link)
    stack.proxy.cancel_transaction(reason, times=ATTEMPTS)

    answer = link.submit(review_id)

    assert_busy(answer)
    assert stack.proxy.pending_faults == []
    assert payable_items(link) == before
    assert link.charges() == []
    # Given the table is free again, when the client submits again, then it pays once.
    again = link.submit(review_id)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "succeeded"
    assert only_payment(link).status.value == "succeeded"
    assert link.invariant().paid_minor == AMOUNT
    assert len(link.charges()) == 1


# -- the settle after Stripe's success ------------------------------------------------------------


@pytest.mark.parametrize("reason", REASONS)
def test_a_cancelled_settle_is_retried_into_one_paid_payment(stack: LocalStack, reason: str) -> None:
    link = open_link(stack, amounts=(AMOUNT,))
    review_id = reviewed(link)
    stack.proxy.cancel_transaction(reason, times=2, after=1)  # the reserve goes through, the settle collides

    answer = link.submit(review_id)

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded"
    assert stack.proxy.pending_faults == []
    assert only_payment(link).status.value == "succeeded"
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (AMOUNT, 0, 0)
    assert len(link.charges()) == 1


@pytest.mark.parametrize("reason", REASONS)
def test_a_settle_that_never_goes_through_leaves_the_reservation_and_the_retry_settles_it(
    stack: LocalStack, reason: str
) -> None:
    link = open_link(stack, amounts=(AMOUNT,))
    review_id = reviewed(link)
    stack.proxy.cancel_transaction(reason, times=ATTEMPTS, after=1)

    answer = link.submit(review_id)

    assert_busy(answer)
    assert stack.proxy.pending_faults == []
    # Stripe charged; the ledger holds the write-ahead reservation, not half a settle.
    assert len(link.charges()) == 1
    payment = only_payment(link)
    assert payment.status.value == "pending"
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (0, AMOUNT, 0)
    again = link.submit(review_id)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "succeeded"
    assert only_payment(link).status.value == "succeeded"
    assert link.invariant().paid_minor == AMOUNT
    assert len(link.charges()) == 1


# -- refunds ---------------------------------------------------------------------------------------


def paid_link(stack: LocalStack) -> tuple[StackLink, str]:
    link = open_link(stack, amounts=(AMOUNT,))
    answer = link.submit(reviewed(link))
    assert answer.status_code == 200, answer.text
    return link, str(answer.json()["payment_id"])


def refund(link: StackLink, payment_id: str, key: str) -> requests.Response:
    path = f"/firm/firms/{link.billed.firm.firm_id}/payables/{link.payable_id}/payments/{payment_id}/refunds"
    body = {"reason": "requested_by_customer", "idempotency_key": key, "amount_minor": AMOUNT}
    return FirmClient(link.stack.urls["gateway"]).call("POST", path, body)


def stripe_refunded(link: StackLink) -> int:
    return sum(int(charge.amount_refunded) for charge in link.charges())


def assert_refunded_once(link: StackLink, payment_id: str) -> None:
    payable = link.invariant()
    assert (payable.paid_minor, payable.refunded_minor, payable.balance_minor) == (0, AMOUNT, AMOUNT)
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert (payment.refunded_minor, payment.refunding_minor) == (AMOUNT, 0)
    assert stripe_refunded(link) == AMOUNT


@pytest.mark.parametrize("reason", REASONS)
def test_a_cancelled_refund_is_retried_into_one_refund(stack: LocalStack, reason: str) -> None:
    link, payment_id = paid_link(stack)
    stack.proxy.cancel_transaction(reason, times=2)  # opening the refund collides twice

    answer = refund(link, payment_id, uuid.uuid4().hex)

    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "succeeded"
    assert stack.proxy.pending_faults == []
    assert_refunded_once(link, payment_id)


@pytest.mark.parametrize("reason", REASONS)
def test_a_refund_that_never_opens_answers_503_and_writes_nothing(stack: LocalStack, reason: str) -> None:
    link, payment_id = paid_link(stack)
    before = payable_items(link)
    key = uuid.uuid4().hex
    stack.proxy.cancel_transaction(reason, times=ATTEMPTS)

    answer = refund(link, payment_id, key)

    assert_busy(answer)
    assert payable_items(link) == before
    assert stripe_refunded(link) == 0
    again = refund(link, payment_id, key)
    assert again.status_code == 201, again.text
    assert_refunded_once(link, payment_id)


@pytest.mark.parametrize("reason", REASONS)
def test_a_refund_that_cannot_be_booked_stays_held_and_the_retry_books_it_once(stack: LocalStack, reason: str) -> None:
    link, payment_id = paid_link(stack)
    key = uuid.uuid4().hex
    stack.proxy.cancel_transaction(reason, times=ATTEMPTS, after=1)  # opened; booking Stripe's refund fails

    answer = refund(link, payment_id, key)

    assert_busy(answer)
    assert stripe_refunded(link) == AMOUNT
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert (payment.refunded_minor, payment.refunding_minor) == (0, AMOUNT)  # held, not booked
    payable = link.invariant()
    assert (payable.paid_minor, payable.refunded_minor) == (AMOUNT, 0)
    again = refund(link, payment_id, key)
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "succeeded"
    assert_refunded_once(link, payment_id)


def test_a_transaction_dynamodb_finds_invalid_is_not_retried_and_not_a_503(stack: LocalStack) -> None:
    link = open_link(stack, amounts=(AMOUNT,))
    review_id = reviewed(link)
    before = payable_items(link)
    stack.proxy.reset_counts()
    stack.proxy.cancel_transaction("ValidationError", times=ATTEMPTS)

    answer = link.submit(review_id)

    # A retry would fail the same way: a 500 (our bug), not a 503 inviting the client to retry.
    assert answer.status_code == 500, answer.text
    assert transactions(stack) == 1
    assert payable_items(link) == before
    assert link.charges() == []
