"""Refunds through the local stack: the firm's SigV4-signed refund route, the Stripe emulator's
refunds (through the real stripe SDK), its signed charge.refunded events, and the ledger invariant
after every step. Refusals answer a stable code and change nothing in the ledger."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from firmpay.errors import ServiceUnavailable
from firmpay.payments import refunds as refund_cases
from local.stack import LocalStack
from tests.integration.conftest import OTHER_KEY, FirmClient, table_snapshot
from tests.support.card_stack import (
    StackLink,
    forget_failed_attempts,
    open_link,
    post_webhook,
    quiet_table,
    set_webhook_delivery,
    signed_event,
)
from tests.support.echeck_stack import open_echeck_link, stripe_test_control
from tests.support.factories import card_payment
from tests.support.stripe_controls import advance_stripe_clock, finish_refund, refunds_start_pending

pytestmark = pytest.mark.integration

TOTAL = 150_050


@pytest.fixture(autouse=True)
def _fresh_attempts(stack: LocalStack) -> Iterator[None]:
    yield
    forget_failed_attempts(stack)


@pytest.fixture
def no_webhooks(stack: LocalStack) -> Iterator[None]:
    """The emulator's own deliveries go nowhere: the test alone decides which events arrive."""
    set_webhook_delivery(stack, enabled=False)
    yield
    set_webhook_delivery(stack, enabled=True)


def firm_api(stack: LocalStack, key: str | None = None) -> FirmClient:
    return FirmClient(stack.urls["gateway"], key) if key else FirmClient(stack.urls["gateway"])


def refunds_path(link: StackLink, payment_id: str) -> str:
    return f"/firm/firms/{link.billed.firm.firm_id}/payables/{link.payable_id}/payments/{payment_id}/refunds"


def refund(link: StackLink, payment_id: str, amount: int | None = None, key: str | None = None, **body: Any) -> Any:
    payload = {"reason": "requested_by_customer", "idempotency_key": key or uuid.uuid4().hex, **body}
    if amount is not None:
        payload["amount_minor"] = amount
    return firm_api(link.stack).call("POST", refunds_path(link, payment_id), payload)


def paid(stack: LocalStack, **billed: Any) -> tuple[StackLink, str]:
    """A payable paid in full by card through the pay page; its payment id."""
    link = open_link(stack, **billed)
    result = link.pay()
    assert result["status"] == "succeeded", result
    return link, result["payment_id"]


def settled_table(stack: LocalStack) -> list[dict[str, Any]]:
    """The table once the stream (emails) and the emulator's webhooks have quieted down."""
    stack.poller.drain()
    return quiet_table(stack)


def stripe_refunded(link: StackLink) -> int:
    return sum(int(c.amount_refunded) for c in link.charges())


def payable_view(link: StackLink) -> dict[str, Any]:
    answer = firm_api(link.stack).call("GET", f"/firm/firms/{link.billed.firm.firm_id}/payables/{link.payable_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


# -- refunds that go through ---------------------------------------------------------------------


def test_a_full_refund_gives_the_bill_its_balance_back(stack: LocalStack) -> None:
    link, payment_id = paid(stack)

    answer = refund(link, payment_id)

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["status"], body["amount"], body["booking"]) == (
        "succeeded",
        {"amount_minor": TOTAL, "currency": "USD"},
        "balance_restored",
    )
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor, payable.refunded_minor) == (0, TOTAL, TOTAL)
    assert stripe_refunded(link) == TOTAL
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert (payment.refunded_minor, payment.refunding_minor) == (TOTAL, 0)
    assert payment.last_refund is not None
    assert (payment.last_refund.status.value, payment.last_refund.amount_minor) == ("succeeded", TOTAL)


def test_the_firm_sees_each_refund_on_its_payment_without_processor_ids(stack: LocalStack) -> None:
    link, payment_id = paid(stack)
    refund(link, payment_id, 20_000, reason="duplicate")
    refund(link, payment_id, 5_000, reason="other", note="Goodwill credit")

    view = payable_view(link)

    assert view["paid"]["amount_minor"] == TOTAL - 25_000
    assert view["refunded"]["amount_minor"] == 25_000
    assert view["balance"]["amount_minor"] == 25_000
    assert view["status"] == "partially_paid"
    (payment,) = view["payments"]
    assert payment["refunded"]["amount_minor"] == 25_000
    assert [(r["amount"]["amount_minor"], r["reason"], r["note"], r["status"]) for r in payment["refunds"]] == [
        (20_000, "duplicate", "", "succeeded"),
        (5_000, "other", "Goodwill credit", "succeeded"),
    ]
    text = json.dumps(view)
    assert not re.search(r"\b(re|pi|ch|pm|cus)_[A-Za-z0-9]{8,}", text), text
    assert "fp-refund" not in text


def test_two_partial_refunds_sum_to_the_total_and_one_more_is_refused(stack: LocalStack) -> None:
    link, payment_id = paid(stack)

    first = refund(link, payment_id, 50_000)
    assert first.status_code == 201, first.text
    assert link.invariant().balance_minor == 50_000
    second = refund(link, payment_id, TOTAL - 50_000)
    assert second.status_code == 201, second.text
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor) == (0, TOTAL)
    before = settled_table(stack)

    more = refund(link, payment_id, 1)

    assert more.status_code == 422, more.text
    assert more.json()["code"] == "refund_exceeds_payment"
    assert more.json()["details"] == {"refundable_minor": 0}
    assert table_snapshot(stack) == before
    assert stripe_refunded(link) == TOTAL
    link.invariant()


def test_a_refund_over_what_is_left_is_refused(stack: LocalStack) -> None:
    link, payment_id = paid(stack)
    assert refund(link, payment_id, 100_000).status_code == 201
    before = settled_table(stack)

    over = refund(link, payment_id, 50_051)

    assert over.status_code == 422, over.text
    assert over.json()["code"] == "refund_exceeds_payment"
    assert over.json()["details"] == {"refundable_minor": 50_050}
    assert table_snapshot(stack) == before
    assert link.invariant().paid_minor == 50_050


def test_a_trust_refund_is_a_disbursement_back_to_the_client(stack: LocalStack) -> None:
    link, payment_id = paid(stack, kind="trust_request", amounts=(500_000,))

    answer = refund(link, payment_id, 200_000)

    assert answer.status_code == 201, answer.text
    assert answer.json()["booking"] == "trust_disbursement"
    payable = link.invariant()
    # The trust request does not ask for the money again: its balance stays 0.
    assert (payable.total_minor, payable.paid_minor, payable.balance_minor) == (500_000, 300_000, 0)
    assert payable.refunded_minor == 200_000
    view = payable_view(link)
    assert (view["paid"]["amount_minor"], view["refunded"]["amount_minor"]) == (300_000, 200_000)


def test_the_same_idempotency_key_never_refunds_twice(stack: LocalStack) -> None:
    link, payment_id = paid(stack)

    first = refund(link, payment_id, 10_000, key="refund-run-42")
    again = refund(link, payment_id, 10_000, key="refund-run-42")
    other = refund(link, payment_id, 20_000, key="refund-run-42")

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["refund_id"] == again.json()["refund_id"]
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert stripe_refunded(link) == 10_000
    assert link.invariant().refunded_minor == 10_000


def test_the_idempotency_key_may_come_in_a_header(stack: LocalStack) -> None:
    link, payment_id = paid(stack)
    api = firm_api(stack)
    url = api.base + refunds_path(link, payment_id)
    body = json.dumps({"amount_minor": 1_000, "reason": "duplicate"})
    from local.gateway import sign_request

    def send() -> Any:
        import requests

        headers = sign_request(
            "POST", url, body, api.access_key, {"Content-Type": "application/json", "Idempotency-Key": "hdr-1"}
        )
        return requests.post(url, data=body.encode(), headers=headers, timeout=30)

    first, again = send(), send()

    assert (first.status_code, again.status_code) == (201, 201), first.text
    assert first.json()["refund_id"] == again.json()["refund_id"]
    assert link.invariant().refunded_minor == 1_000


# -- refusals ------------------------------------------------------------------------------------


def test_refunds_of_payments_that_did_not_succeed_are_refused(stack: LocalStack) -> None:
    link = open_link(stack)
    declined = link.pay("4000000000009995")
    assert declined["status"] == "failed"
    in_flight = card_payment(link.billed, 10_000)
    assert link.ledger.reserve(in_flight)
    before = settled_table(stack)

    answers = [refund(link, declined["payment_id"]), refund(link, in_flight.payment_id, 5_000)]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(409, "payment_not_refundable")] * 2
    assert table_snapshot(stack) == before
    link.invariant()


def test_an_echeck_payment_is_refundable_once_its_debit_settled_and_its_refund_finishes_later(
    stack: LocalStack,
) -> None:
    # Given a bill paid by eCheck through the pay page: the ACH debit is processing at Stripe
    link = open_echeck_link(stack)
    paid = link.pay_echeck(amount=40_000)
    assert paid["status"] == "processing", paid
    payment_id = paid["payment_id"]
    intent_id = link.intent_of(payment_id)
    before = settled_table(stack)

    # When the firm tries to refund it before it settled, it is refused and nothing changes
    early = refund(link, payment_id)
    assert (early.status_code, early.json()["code"]) == (409, "payment_not_refundable")
    assert "settled" in early.json()["message"]
    assert table_snapshot(stack) == before

    # When the debit settles (Stripe's payment_intent.succeeded reaches the webhook)
    assert stripe_test_control(stack, intent_id, "settle").status_code == 200
    link.wait_for_status(payment_id, "succeeded")
    assert link.invariant().paid_minor == 40_000

    # Then it can be refunded; the bank refund is pending at Stripe first, its amount held
    refunds_start_pending(stack, intent_id)
    later = refund(link, payment_id, reason="fraudulent")
    assert (later.status_code, later.json()["status"]) == (201, "pending"), later.text
    held = link.invariant()
    assert (held.paid_minor, held.refunded_minor) == (40_000, 0)
    (at_stripe,) = link.stripe.v1.refunds.list(params={"payment_intent": intent_id}).data
    assert (at_stripe.amount, at_stripe.status, at_stripe.reason) == (40_000, "pending", "fraudulent")
    settled_table(stack)  # refund.created and charge.refunded came and found it pending
    assert link.invariant().refunded_minor == 0

    # When the refund reaches the client's bank (Stripe's refund.updated)
    finish_refund(stack, at_stripe.id, "succeed")

    # Then it is booked once: the bill is owed again, and the ledger agrees with Stripe
    wait_for_refund(link, later.json()["refund_id"], "succeeded")
    payable = link.invariant()
    assert (payable.paid_minor, payable.refunded_minor, payable.balance_minor) == (0, 40_000, TOTAL)
    charge = link.stripe.v1.payment_intents.retrieve(intent_id).latest_charge
    charge_id = charge if isinstance(charge, str) else charge.id
    assert link.stripe.v1.charges.retrieve(charge_id).amount_refunded == 40_000


def test_another_firm_cannot_refund(stack: LocalStack) -> None:
    link, payment_id = paid(stack)
    elsewhere, _ = paid(stack)
    before = settled_table(stack)
    body = {"reason": "fraudulent", "idempotency_key": "k-1"}

    foreign = firm_api(stack, OTHER_KEY).call("POST", refunds_path(link, payment_id), body)
    # My firm's path, with a payable of another firm (the same principal owns both here, so use
    # the first firm's id with the second firm's payable).
    crossed = firm_api(stack).call(
        "POST",
        f"/firm/firms/{link.billed.firm.firm_id}/payables/{elsewhere.payable_id}/payments/{payment_id}/refunds",
        body,
    )

    assert (foreign.status_code, foreign.json()["code"]) == (403, "forbidden")
    assert (crossed.status_code, crossed.json()["code"]) == (404, "not_found")
    assert table_snapshot(stack) == before


@pytest.fixture(scope="module")
def paid_once(stack: LocalStack) -> tuple[StackLink, str]:
    return paid(stack)


BAD_INPUT = [
    ("malformed json", '{"reason": ', 400, "malformed_json"),
    ("amount as text", {"amount_minor": "100"}, 422, "invalid_request"),
    ("amount as float", {"amount_minor": 10.5}, 422, "invalid_request"),
    ("amount as bool", {"amount_minor": True}, 422, "invalid_request"),
    ("zero amount", {"amount_minor": 0}, 422, "invalid_request"),
    ("negative amount", {"amount_minor": -500}, 422, "invalid_request"),
    ("unknown reason", {"reason": "changed_mind"}, 422, "invalid_request"),
    ("missing reason", {"reason": None}, 422, "invalid_request"),
    ("other without note", {"reason": "other"}, 422, "invalid_request"),
    ("unknown field", {"refund_all": True}, 422, "invalid_request"),
    ("no idempotency key", {"idempotency_key": None}, 422, "invalid_request"),
    ("bad idempotency key", {"idempotency_key": "has spaces"}, 422, "invalid_request"),
    ("note with control chars", {"note": "a\x07b"}, 422, "invalid_request"),
]


@pytest.mark.parametrize(("case", "change", "status", "code"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_and_changes_nothing(
    stack: LocalStack, paid_once: tuple[StackLink, str], case: str, change: Any, status: int, code: str
) -> None:
    link, payment_id = paid_once
    before = settled_table(stack)
    api = firm_api(stack)
    if isinstance(change, str):
        answer = api.call("POST", refunds_path(link, payment_id), raw=change)
    else:
        body = {"reason": "duplicate", "idempotency_key": f"bad-{uuid.uuid4().hex}", **change}
        answer = api.call("POST", refunds_path(link, payment_id), {k: v for k, v in body.items() if v is not None})

    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert table_snapshot(stack) == before
    assert link.invariant().refunded_minor == 0


def test_an_unknown_payment_is_not_found(stack: LocalStack, paid_once: tuple[StackLink, str]) -> None:
    link, _ = paid_once
    elsewhere, their_payment = paid(stack)
    before = settled_table(stack)

    answers = [refund(link, "pay_000000000000000000000000"), refund(link, their_payment), refund(link, "pay.x")]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 3
    assert table_snapshot(stack) == before
    assert elsewhere.invariant().refunded_minor == 0


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_refunds_never_exceed_what_was_paid(stack: LocalStack) -> None:
    # Six firm requests race to refund 50_000 each of a 150_050 payment: three fit.
    link, payment_id = paid(stack)
    answers: list[Any] = []
    start = threading.Barrier(6)

    def one() -> None:
        start.wait()
        answers.append(refund(link, payment_id, 50_000))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 3 + [422] * 3, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 422} == {"refund_exceeds_payment"}
    payable = link.invariant()
    assert (payable.refunded_minor, payable.paid_minor, payable.balance_minor) == (150_000, 50, 150_000)
    assert stripe_refunded(link) == 150_000


def test_concurrent_retries_of_one_refund_refund_once(stack: LocalStack) -> None:
    link, payment_id = paid(stack)
    answers: list[Any] = []
    start = threading.Barrier(6)

    def one() -> None:
        start.wait()
        answers.append(refund(link, payment_id, 70_000, key="same-key"))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    ok = [a for a in answers if a.status_code == 201]
    assert ok, [a.text for a in answers]
    assert {a.json()["refund_id"] for a in ok} == {refund_cases.refund_id_for(payment_id, "same-key")}
    assert all(a.status_code in (201, 503) for a in answers), [a.text for a in answers]
    assert stripe_refunded(link) == 70_000
    assert link.invariant().refunded_minor == 70_000


# -- Stripe's refund webhook ----------------------------------------------------------------------


def crash_after_stripe_refunded(
    link: StackLink, payment_id: str, amount: int, key: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A refund Stripe made whose ledger booking "crashed": the refund stays pending; its id."""
    real = refund_cases.apply_processor_refund

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise ServiceUnavailable()

    monkeypatch.setattr(refund_cases, "apply_processor_refund", crash)
    try:
        answer = refund(link, payment_id, amount, key=key)
    finally:
        monkeypatch.setattr(refund_cases, "apply_processor_refund", real)
    assert answer.status_code == 503, answer.text
    refund_id = refund_cases.refund_id_for(payment_id, key)
    pending = link.ledger.get_refund(link.payable_id, refund_id)
    assert pending is not None
    assert pending.status.value == "pending"
    return refund_id


def test_the_webhook_books_a_refund_whose_request_crashed_and_replays_change_nothing(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, no_webhooks: None
) -> None:
    link, payment_id = paid(stack)
    refund_id = crash_after_stripe_refunded(link, payment_id, 60_000, "crash-1", monkeypatch)
    held = link.invariant()
    assert (held.paid_minor, held.refunded_minor) == (TOTAL, 0)
    assert link.ledger.get_payment(link.payable_id, payment_id).refunding_minor == 60_000
    charge = link.charges()[0]
    stripe_refund = link.stripe.v1.refunds.list(params={"payment_intent": charge.payment_intent}).data[0]

    outcomes = [
        post_webhook(stack, *signed_event(kind, obj)).json()["outcome"]
        for kind, obj in (
            ("charge.refunded", link.stripe.v1.charges.retrieve(charge.id)),
            ("charge.refunded", link.stripe.v1.charges.retrieve(charge.id)),
            ("refund.created", stripe_refund),  # older than the charge event, arriving last
        )
    ]

    assert outcomes == ["refund_succeeded", "unchanged", "unchanged"]
    assert link.ledger.get_refund(link.payable_id, refund_id).status.value == "succeeded"
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor, payable.refunded_minor) == (90_050, 60_000, 60_000)
    # The firm's retry finds the booked refund and refunds nothing more.
    again = refund(link, payment_id, 60_000, key="crash-1")
    assert (again.status_code, again.json()["status"]) == (201, "succeeded")
    assert stripe_refunded(link) == 60_000


def test_the_emulators_own_charge_refunded_event_books_a_crashed_refund(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    link, payment_id = paid(stack)
    refund_id = crash_after_stripe_refunded(link, payment_id, 25_000, "crash-2", monkeypatch)

    deadline = datetime.now(UTC).timestamp() + 15
    while link.ledger.get_refund(link.payable_id, refund_id).status.value == "pending":
        assert datetime.now(UTC).timestamp() < deadline, "charge.refunded never booked the refund"
        threading.Event().wait(0.2)

    payable = link.invariant()
    assert (payable.refunded_minor, payable.balance_minor) == (25_000, 25_000)
    assert stripe_refunded(link) == 25_000


def test_an_event_for_a_refund_stripe_never_made_books_nothing(
    stack: LocalStack, paid_once: tuple[StackLink, str], no_webhooks: None
) -> None:
    link, _payment_id = paid_once
    charge = link.charges()[0]
    before = settled_table(stack)

    answer = post_webhook(stack, *signed_event("charge.refunded", link.stripe.v1.charges.retrieve(charge.id)))
    foreign = post_webhook(stack, *signed_event("charge.refunded", {"id": "ch_x", "payment_intent": "pi_not_ours"}))

    assert answer.json()["outcome"] == "unchanged"
    assert foreign.json()["outcome"] == "ignored"
    assert table_snapshot(stack) == before


# -- the client's refund email ----------------------------------------------------------------------


def refund_emails(stack: LocalStack, number: str) -> list[dict[str, Any]]:
    """The outbox's refund emails about payable ``number``, with their bodies."""
    found = [
        m for m in stack.outbox.list_messages() if m["subject"].startswith("Refund issued") and number in m["subject"]
    ]
    return [stack.outbox.read(m["id"]) for m in found]  # type: ignore[misc]


def test_each_partial_refund_emails_the_client_once(stack: LocalStack) -> None:
    # Given a $1,500.50 bill paid in full by card, its payment emails delivered
    link, payment_id = paid(stack)
    number = link.billed.payable.number
    stack.poller.drain()
    assert refund_emails(stack, number) == []

    # When the firm refunds $200.00 of it and the stream is delivered
    assert refund(link, payment_id, 20_000).status_code == 201
    stack.poller.drain()

    # Then the client got exactly one refund email, with the refund amount and the bill due again
    (first,) = refund_emails(stack, number)
    assert first["to"] == "jordan@example.com"
    assert first["reply_to"] == "billing@hartleyvance.example"
    for body in (first["text"], first["html"]):
        assert "$200.00\u00a0USD" in body
        assert "$1,500.50\u00a0USD" in body  # the original payment
    assert "Total refunded on this payment: $200.00\u00a0USD" in first["text"]
    assert "The bill's balance is open again: $200.00\u00a0USD is now due." in first["text"]

    # When a second partial refund of $50.00 goes through
    assert refund(link, payment_id, 5_000).status_code == 201
    stack.poller.drain()

    # Then a second email tells of that refund and of the total refunded so far
    emails = refund_emails(stack, number)
    assert len(emails) == 2
    (second,) = [m for m in emails if m["id"] != first["id"]]
    assert "Refund amount: $50.00\u00a0USD" in second["text"]
    assert "Total refunded on this payment: $250.00\u00a0USD" in second["text"]
    assert "Remaining balance: $250.00\u00a0USD" in second["text"]

    # When the stream delivers the last batch (the second refund's records) again
    batch = list(stack.poller.last_batch)
    refunds_in_batch = [
        r["dynamodb"]["NewImage"]["last_refund"]["M"]["status"]["S"]
        for r in batch
        if r["dynamodb"]["Keys"]["sk"]["S"] == f"PAYMENT#{payment_id}"
    ]
    assert "succeeded" in refunds_in_batch
    assert stack.poller.redeliver_last_batch() == {"batchItemFailures": []}

    # Then nothing more was sent, and the ledger still adds up
    assert len(refund_emails(stack, number)) == 2
    assert link.invariant().refunded_minor == 25_000


# -- refunds that Stripe finishes later (pending, then succeeded or failed) ------------------------


def stripe_refunds(link: StackLink) -> list[Any]:
    """Every refund Stripe holds for this payable's charges, whatever its status."""
    (intent,) = link.intents()
    return list(link.stripe.v1.refunds.list(params={"payment_intent": intent.id, "limit": 100}).data)


def paid_with_pending_refunds(stack: LocalStack) -> tuple[StackLink, str]:
    """A bill paid by card whose refunds start ``pending`` at Stripe."""
    link, payment_id = paid(stack)
    refunds_start_pending(stack, link.intents()[0].id)
    return link, payment_id


def test_a_retry_after_stripes_key_window_reads_the_pending_refund_and_refunds_once(
    stack: LocalStack, no_webhooks: None
) -> None:
    # Given a refund of half the payment that Stripe answered "pending" (and whose events are lost)
    link, payment_id = paid_with_pending_refunds(stack)
    half = TOTAL // 2
    first = refund(link, payment_id, half, key="half-after-a-day")
    assert (first.status_code, first.json()["status"]) == (201, "pending"), first.text
    held = link.invariant()
    assert (held.paid_minor, held.refunded_minor) == (TOTAL, 0)
    assert link.ledger.get_payment(link.payable_id, payment_id).refunding_minor == half
    (at_stripe,) = stripe_refunds(link)
    # When Stripe finishes it, and the firm retries the same request 25 hours later (the key is gone)
    finish_refund(stack, at_stripe.id, "succeed")
    advance_stripe_clock(stack, 25 * 3600)
    again = refund(link, payment_id, half, key="half-after-a-day")

    # Then the retry booked Stripe's refund: one refund at Stripe, booked once
    assert [r.id for r in stripe_refunds(link)] == [at_stripe.id]
    assert (again.status_code, again.json()["status"]) == (201, "succeeded"), again.text
    assert stripe_refunded(link) == half
    payable = link.invariant()
    assert (payable.paid_minor, payable.refunded_minor, payable.balance_minor) == (TOTAL - half, half, half)


def test_a_retry_within_the_key_window_finishes_a_refund_stripe_completed(stack: LocalStack, no_webhooks: None) -> None:
    link, payment_id = paid_with_pending_refunds(stack)
    assert refund(link, payment_id, 30_000, key="pending-then-done").json()["status"] == "pending"
    (at_stripe,) = stripe_refunds(link)
    finish_refund(stack, at_stripe.id, "succeed")

    again = refund(link, payment_id, 30_000, key="pending-then-done")

    assert (again.status_code, again.json()["status"]) == (201, "succeeded"), again.text
    assert len(stripe_refunds(link)) == 1
    assert link.invariant().refunded_minor == 30_000


def wait_for_refund(link: StackLink, refund_id: str, status: str, timeout: float = 15) -> Any:
    deadline = datetime.now(UTC).timestamp() + timeout
    while True:
        found = link.ledger.get_refund(link.payable_id, refund_id)
        if found is not None and found.status.value == status:
            return found
        assert datetime.now(UTC).timestamp() < deadline, f"refund {refund_id} is {found and found.status}, not {status}"
        threading.Event().wait(0.2)


def test_a_pending_refund_is_booked_when_stripes_refund_updated_event_says_it_succeeded(stack: LocalStack) -> None:
    link, payment_id = paid_with_pending_refunds(stack)
    answer = refund(link, payment_id, 40_000, key="pending-ok")
    assert answer.json()["status"] == "pending"
    (at_stripe,) = stripe_refunds(link)
    settled_table(stack)  # refund.created and charge.refunded came and found it pending
    assert link.invariant().refunded_minor == 0

    finish_refund(stack, at_stripe.id, "succeed")  # Stripe sends refund.updated

    wait_for_refund(link, answer.json()["refund_id"], "succeeded")
    payable = link.invariant()
    assert (payable.paid_minor, payable.refunded_minor, payable.balance_minor) == (TOTAL - 40_000, 40_000, 40_000)
    assert stripe_refunded(link) == 40_000


def test_a_failed_refund_gives_its_amount_back_to_the_payment(stack: LocalStack) -> None:
    # Given a pending refund of 400.00
    link, payment_id = paid_with_pending_refunds(stack)
    answer = refund(link, payment_id, 40_000, key="pending-fails")
    (at_stripe,) = stripe_refunds(link)
    settled_table(stack)  # refund.created and charge.refunded came and found it pending
    assert link.ledger.get_refund(link.payable_id, answer.json()["refund_id"]).status.value == "pending"

    # When the card's bank refuses it (Stripe sends refund.failed and refund.updated)
    finish_refund(stack, at_stripe.id, "fail", "expired_or_canceled_card")

    # Then the refund is failed, nothing was refunded, and the whole payment is refundable again
    failed = wait_for_refund(link, answer.json()["refund_id"], "failed")
    assert failed.failure_reason == "expired_or_canceled_card"
    payable = link.invariant()
    assert (payable.paid_minor, payable.refunded_minor, payable.balance_minor) == (TOTAL, 0, 0)
    assert stripe_refunded(link) == 0
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert (payment.refunded_minor, payment.refunding_minor) == (0, 0)
    refunds_start_pending(stack, link.intents()[0].id, pending=False)
    retried = refund(link, payment_id, TOTAL, key="after-the-failure")
    assert (retried.status_code, retried.json()["status"]) == (201, "succeeded"), retried.text
    assert link.invariant().refunded_minor == TOTAL
    assert stripe_refunded(link) == TOTAL


# -- refunds made outside FirmPay (Stripe's Dashboard) ---------------------------------------------


def test_a_refund_made_in_stripes_dashboard_is_booked_and_the_firm_is_told(stack: LocalStack) -> None:
    # Given a bill paid in full by card, its payment emails delivered
    link, payment_id = paid(stack)
    number = link.billed.payable.number
    stack.poller.drain()
    (intent,) = link.intents()

    # When someone refunds 300.00 in Stripe's Dashboard (a refund without FirmPay's metadata)
    made = link.stripe.v1.refunds.create(params={"payment_intent": intent.id, "amount": 30_000})

    # Then Stripe's events book it: paid goes down, the bill is owed again, the invariant holds
    booked = wait_for_refund(link, refund_cases.outside_refund_id(made.id), "succeeded")
    assert (booked.origin, booked.amount_minor, booked.processor_refund_id) == ("outside", 30_000, made.id)
    payable = link.invariant()
    assert (payable.paid_minor, payable.refunded_minor, payable.balance_minor) == (TOTAL - 30_000, 30_000, 30_000)
    view = payable_view(link)
    assert view["payments"][0]["refunds"][0]["note"] == refund_cases.OUTSIDE_NOTE
    # and the firm is emailed once (the client gets the usual refund email)
    stack.poller.drain()
    firm_emails = [
        stack.outbox.read(m["id"])
        for m in stack.outbox.list_messages()
        if m["subject"].startswith("Refund made outside FirmPay") and number in m["subject"]
    ]
    assert [m["to"] for m in firm_emails] == [link.billed.firm.reply_to_email]
    assert "$300.00\u00a0USD" in firm_emails[0]["text"]
    assert len(refund_emails(stack, number)) == 1

    # When Stripe's charge.refunded comes again, and the firm then refunds the rest through FirmPay
    before = settled_table(stack)
    again = post_webhook(stack, *signed_event("charge.refunded", link.stripe.v1.charges.retrieve(link.charges()[0].id)))
    assert again.json()["outcome"] == "unchanged"
    assert table_snapshot(stack) == before
    rest = refund(link, payment_id)

    # Then only what was left is refunded, and Stripe and the ledger agree
    assert (rest.status_code, rest.json()["amount"]["amount_minor"]) == (201, TOTAL - 30_000), rest.text
    assert stripe_refunded(link) == TOTAL
    assert link.invariant().refunded_minor == TOTAL
