"""Faults at every step boundary of a payment, and the recovery paths that repair them.

A card payment is killed after the reserve, after the Stripe call, after the ledger update, after
the stream record and after SES accepted the email; then it is restarted only through the real
recovery paths (the client's retry, Stripe's webhook, the sweep, the stream's redelivery). After
each: no double charge, no lost payment, no lost or duplicate email, the ledger invariant holds.
DynamoDB throttling and Stripe / Plaid 5xx and timeouts are injected at the HTTP level (the AWS
proxy, the emulators' ``/_test/faults``); the handlers answer 503 with a retry hint and leave
nothing half-done.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from firmpay.emails import confirmations
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger.repository import Ledger
from firmpay.payments import card, checkout
from firmpay.payments.sweep import sweep_pending
from local.stack import STRIPE_SECRET, LocalStack, reset_firmpay_caches
from tests.integration.conftest import table_snapshot
from tests.integration.test_stripe_webhook import crash_after_confirm
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
from tests.support.reconcile import assert_reconciled

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {STRIPE_SECRET}"}  # localstripe wants a key on every route
CLIENT_EMAIL = "jordan@example.com"
FIRM_EMAIL = "billing@hartleyvance.example"


@pytest.fixture(autouse=True)
def _clean_faults(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A silent processor becomes a timeout after 1 s instead of 5 (the functions' setting).
    monkeypatch.setenv("OUTBOUND_TIMEOUT_SECONDS", "1")
    reset_firmpay_caches()
    stack.poller.drain()
    yield
    for service in ("stripe", "plaid"):
        disarm(stack, service)
    stack.proxy.clear_faults()
    stack.poller.resume()
    set_webhook_delivery(stack, enabled=True)
    forget_failed_attempts(stack)
    monkeypatch.undo()
    reset_firmpay_caches()


def arm(stack: LocalStack, service: str, path: str, status: int | None = 500, times: int = 10, **extra: Any) -> None:
    answer = requests.post(
        f"{stack.urls[service]}/_test/faults",
        json={"path": path, "status": status, "times": times, **extra},
        headers=AUTH,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text


def disarm(stack: LocalStack, service: str) -> None:
    requests.delete(f"{stack.urls[service]}/_test/faults", headers=AUTH, timeout=5).raise_for_status()


def expect_503(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "service_unavailable"
    assert int(answer.headers["Retry-After"]) > 0


def emails(stack: LocalStack, number: str, to: str) -> list[dict[str, Any]]:
    found = [stack.outbox.read(m["id"]) for m in stack.outbox.list_messages() if number in m["subject"]]
    return [m for m in found if m and to in str(m.get("to"))]


def wait_for_charges(link: StackLink, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(charges := link.charges()) != count:
        assert time.monotonic() < deadline, f"waited {timeout} s for {count} charge(s) at Stripe, saw {len(charges)}"
        time.sleep(0.2)


def assert_paid_once(link: StackLink, amount: int = 150_050) -> None:
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor) == (amount, 0)
    assert len(link.charges()) == 1


def assert_emailed_once(stack: LocalStack, link: StackLink) -> None:
    stack.poller.drain()
    number = link.billed.payable.number
    assert len(emails(stack, number, CLIENT_EMAIL)) == 1
    assert len(emails(stack, number, FIRM_EMAIL)) == 1


def sweep(stack: LocalStack, minutes_later: int) -> dict[str, int]:
    now = datetime.now(UTC) + timedelta(minutes=minutes_later)
    return sweep_pending(stack.ledger, StripeGateway(), now, abandon_after=timedelta(minutes=15)).as_dict()


# -- killed after the reserve, before Stripe answered ---------------------------------------------


@pytest.mark.parametrize("fault", ["stripe_5xx", "stripe_timeout"])
@pytest.mark.parametrize("recovery", ["client_retry", "sweep"])
def test_killed_after_the_reserve(stack: LocalStack, fault: str, recovery: str) -> None:
    set_webhook_delivery(stack, enabled=False)
    link = open_link(stack)
    review_id = link.review().json()["review_id"]
    intent_id = link.intents()[0].id
    confirm = f"/v1/payment_intents/{intent_id}/confirm"
    if fault == "stripe_5xx":
        arm(stack, "stripe", confirm, 500)
    else:
        arm(stack, "stripe", confirm, None, delay=2.0)  # each try outlasts the 1 s read timeout

    expect_503(link.submit(review_id))

    payment = link.ledger.get_payment(link.payable_id, checkout.payment_id_for(review_id))
    assert payment is not None
    assert payment.status.value == "pending"  # reserved, never lost
    assert link.invariant().pending_minor == 150_050
    if fault == "stripe_5xx":
        assert link.charges() == []  # Stripe refused every try: nothing charged
    else:
        # A read timeout is not a refusal: the held-back tries still reach Stripe, as a slow
        # request does on the real service, and charge once under their one Idempotency-Key.
        wait_for_charges(link, 1)
    disarm(stack, "stripe")

    if recovery == "client_retry":
        assert link.submit(review_id).json()["status"] == "succeeded"
        assert_paid_once(link)
        assert_emailed_once(stack, link)
    else:  # the client walked away: the sweep cancels the intent and frees the balance
        if fault == "stripe_timeout":
            # The timed-out confirm charged (above): the sweep finds the intent succeeded and
            # books it, never cancels money Stripe took.
            sweep(stack, minutes_later=16)
            assert link.ledger.get_payment(link.payable_id, payment.payment_id).status.value == "succeeded"
            assert_paid_once(link)
            assert_reconciled(stack, [link.payable_id])
        else:
            sweep(stack, minutes_later=16)
            assert link.ledger.get_payment(link.payable_id, payment.payment_id).status.value == "canceled"
            assert link.invariant().balance_minor == 150_050
            assert link.charges() == []
    link.invariant()


# -- killed after Stripe charged, before the ledger update -----------------------------------------


@pytest.mark.parametrize("recovery", ["client_retry", "webhook", "sweep"])
def test_killed_after_the_stripe_call(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, recovery: str) -> None:
    set_webhook_delivery(stack, enabled=False)
    link = open_link(stack)
    payment_id = crash_after_confirm(stack, link, monkeypatch)
    assert len(link.charges()) == 1
    assert link.invariant().pending_minor == 150_050

    if recovery == "client_retry":
        review_id = link.intents()[0].to_dict()["metadata"]["review_id"]
        assert link.submit(review_id).json()["status"] == "succeeded"
    elif recovery == "webhook":
        answer = post_webhook(stack, *signed_event("payment_intent.succeeded", link.intents()[0]))
        assert answer.json()["outcome"] == "succeeded"
    else:
        assert sweep(stack, minutes_later=4)["succeeded"] >= 1

    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "succeeded"  # type: ignore[union-attr]
    assert_paid_once(link)
    assert_emailed_once(stack, link)


# -- killed after the ledger update, before the client got the answer ------------------------------


def test_killed_after_the_ledger_update(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    link = open_link(stack)
    review_id = link.review().json()["review_id"]
    real = card.card_result
    killed = {"done": False}

    def dies_once(outcome: Any) -> Any:
        if not killed["done"]:
            killed["done"] = True
            raise ConnectionAbortedError("the function died before answering")
        return real(outcome)

    monkeypatch.setattr(card, "card_result", dies_once)
    first = link.submit(review_id)
    assert first.status_code >= 500
    assert link.invariant().paid_minor == 150_050  # the ledger update happened

    again = link.submit(review_id)  # the client's retry (or reload) shows the same payment
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "succeeded"
    assert again.json()["payment_id"] == checkout.payment_id_for(review_id)
    assert_paid_once(link)
    assert_emailed_once(stack, link)


# -- killed after the stream record, before any email ----------------------------------------------


def test_killed_after_the_stream_record(stack: LocalStack) -> None:
    link = open_link(stack)
    stack.poller.pause()
    assert link.submit(link.review().json()["review_id"]).json()["status"] == "succeeded"
    calls = {"n": 0}

    def dies_first(event: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the function died before sending")
        return stack.invoke("confirmation_email", event)

    with stack.poller.use_handler(dies_first):
        stack.poller.drain()
    assert calls["n"] >= 2  # Lambda retried the batch
    assert_emailed_once(stack, link)
    assert_paid_once(link)


# -- killed after SES accepted the email ------------------------------------------------------------


class Killed(BaseException):
    """The function's process dies right here (not an exception the code could handle)."""


def test_killed_after_ses_accepted_the_email(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    link = open_link(stack)
    stack.poller.pause()
    assert link.submit(link.review().json()["review_id"]).json()["status"] == "succeeded"
    monkeypatch.setattr(confirmations, "LEASE_SECONDS", 0)  # a retry may claim at once: the lease is no guard here
    real_finish = Ledger.finish_email
    kills = {"n": 0}

    def dies_after_ses(self: Ledger, *args: Any, **kwargs: Any) -> bool:
        kills["n"] += 1
        raise Killed()

    def handler(event: dict[str, Any]) -> Any:
        try:
            return stack.invoke("confirmation_email", event)
        except Killed:
            raise RuntimeError("killed after SES accepted") from None

    monkeypatch.setattr(Ledger, "finish_email", dies_after_ses)
    with stack.poller.use_handler(handler):
        stack.poller.drain()
    monkeypatch.setattr(Ledger, "finish_email", real_finish)
    assert kills["n"] >= 1
    stack.poller.redeliver_last_batch()  # and the stream delivers it once more for good measure
    assert_emailed_once(stack, link)


# -- DynamoDB throttling and processor outages: 503, nothing half-done -------------------------------


def test_dynamodb_throttling_on_submit_answers_503_and_changes_nothing(stack: LocalStack) -> None:
    link = open_link(stack)
    review_id = link.review().json()["review_id"]
    before = quiet_table(stack)
    stack.proxy.throttle("TransactWriteItems", times=20)

    expect_503(link.submit(review_id))

    stack.proxy.clear_faults()
    assert table_snapshot(stack) == before
    assert link.charges() == []
    assert link.intents()[0].status == "requires_confirmation"
    assert link.submit(review_id).json()["status"] == "succeeded"  # the retry goes through
    assert_paid_once(link)


def test_dynamodb_throttling_on_the_pay_page_answers_503(stack: LocalStack) -> None:
    link = open_link(stack)
    stack.proxy.throttle("GetItem", times=20)
    expect_503(requests.get(f"{stack.urls['gateway']}/api/pay/{link.token}", timeout=30))
    stack.proxy.clear_faults()
    assert requests.get(f"{stack.urls['gateway']}/api/pay/{link.token}", timeout=30).status_code == 200


@pytest.mark.parametrize("fault", ["5xx", "timeout"])
def test_stripe_down_at_review_answers_503_and_changes_nothing(stack: LocalStack, fault: str) -> None:
    link = open_link(stack)
    method = link.card()
    assert link.review(amount=5_000).status_code == 200  # the client's Stripe customer exists from here on
    before = quiet_table(stack)
    arm(stack, "stripe", "/v1/payment_intents", 503 if fault == "5xx" else None, delay=0 if fault == "5xx" else 2.0)
    body = {
        "amount_minor": 10_000,
        "payment_method_id": method,
        "billing": {
            "name": "J C",
            "line1": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
            "country": "US",
        },
    }
    expect_503(link.post("review", body))
    disarm(stack, "stripe")
    assert table_snapshot(stack) == before


@pytest.mark.parametrize("fault", ["5xx", "timeout"])
def test_plaid_down_answers_503_and_changes_nothing(stack: LocalStack, fault: str) -> None:
    link = open_echeck_link(stack)
    before = quiet_table(stack)
    arm(stack, "plaid", "/link/token/create", 500 if fault == "5xx" else None, delay=0 if fault == "5xx" else 2.0)
    expect_503(link.post_echeck("link-token", {"holder_name": "Jordan Client"}))
    disarm(stack, "plaid")

    bank = link.link_bank()
    arm(
        stack,
        "plaid",
        "/processor/stripe/bank_account_token/create",
        500 if fault == "5xx" else None,
        delay=0 if fault == "5xx" else 2.0,
    )
    expect_503(link.exchange(bank))
    disarm(stack, "plaid")
    assert table_snapshot(stack) == before
    link.invariant()


def test_an_echeck_debit_killed_after_stripe_is_repaired_by_the_processing_webhook(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = open_echeck_link(stack)
    connection = link.connect()
    review_id = link.review_echeck(connection["connection_id"]).json()["review_id"]
    real = checkout.apply_intent

    def ledger_down(*args: Any, **kwargs: Any) -> Any:
        stack.proxy.inject("dynamodb", "UpdateItem", status=500, times=10)
        try:
            return real(*args, **kwargs)
        finally:
            stack.proxy.clear_faults()

    monkeypatch.setattr(checkout, "apply_intent", ledger_down)
    expect_503(link.submit_echeck(review_id))
    monkeypatch.setattr(checkout, "apply_intent", real)
    payment_id = checkout.payment_id_for(review_id)
    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "pending"  # type: ignore[union-attr]

    # Stripe's own payment_intent.processing webhook (sent by the emulator) moves it on.
    link.wait_for_status(payment_id, "processing", timeout=15)
    assert stripe_test_control(stack, link.intent_of(payment_id), "settle").status_code == 200
    link.wait_for_status(payment_id, "succeeded", timeout=15)
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (150_050, 0, 0)
