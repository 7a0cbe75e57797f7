"""The Stripe webhook through the local stack: a crash between Stripe's confirm and the ledger update
is repaired by the webhook alone; replays and out-of-order events change nothing; forged or stale
signatures get 400 and change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe

from firmpay.errors import ServiceUnavailable
from firmpay.payments import checkout
from local.stack import WEBHOOK_SECRET, LocalStack
from tests.integration.conftest import table_snapshot
from tests.support.card_stack import (
    CARD_OK,
    StackLink,
    forget_failed_attempts,
    open_link,
    post_webhook,
    quiet_table,
    set_webhook_delivery,
    signed_event,
)

pytestmark = pytest.mark.integration


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


def crash_after_confirm(
    stack: LocalStack, link: StackLink, monkeypatch: pytest.MonkeyPatch, number: str = CARD_OK, via_proxy: bool = True
) -> str:
    """Submit a payment whose ledger update fails after Stripe confirmed it; its payment id.

    ``via_proxy``: a real DynamoDB failure (the proxy answers 500 to every TransactWriteItems),
    armed at the moment the submit, holding Stripe's answer, starts to update the ledger; use it
    with the emulator's webhooks off, since they would meet the same faults. Otherwise the
    update raises right there, as a function killed at that point would stop.
    """
    real: Callable[..., Any] = checkout.apply_intent

    def failing_ledger_update(*args: Any, **kwargs: Any) -> Any:
        if not via_proxy:
            raise ServiceUnavailable()
        stack.proxy.inject("dynamodb", "TransactWriteItems", status=500, times=10)
        return real(*args, **kwargs)

    review_id = link.review(number).json()["review_id"]
    monkeypatch.setattr(checkout, "apply_intent", failing_ledger_update)
    try:
        answer = link.submit(review_id)
    finally:
        monkeypatch.setattr(checkout, "apply_intent", real)
        stack.proxy.clear_faults()
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "service_unavailable"
    payment_id = checkout.payment_id_for(review_id)
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert payment.status.value == "pending"
    return payment_id


def test_the_webhook_alone_repairs_a_crash_after_the_charge(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, no_webhooks: None
) -> None:
    link = open_link(stack)
    payment_id = crash_after_confirm(stack, link, monkeypatch)
    intent = link.intents()[0]
    assert intent.status == "succeeded"
    assert link.invariant().pending_minor == 150_050

    answer = post_webhook(stack, *signed_event("payment_intent.succeeded", intent))

    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "succeeded"
    assert link.ledger.get_payment(link.payable_id, payment_id).status.value == "succeeded"
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor) == (150_050, 0)
    assert len(link.charges()) == 1


def test_the_emulators_own_webhook_repairs_a_crash(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    link = open_link(stack)

    payment_id = crash_after_confirm(stack, link, monkeypatch, via_proxy=False)

    link.wait_for_status(payment_id, "succeeded", timeout=15)
    assert link.invariant().paid_minor == 150_050
    assert len(link.charges()) == 1


def test_replayed_and_out_of_order_events_change_nothing(stack: LocalStack, no_webhooks: None) -> None:
    link = open_link(stack)
    result = link.pay()
    intent = link.intents()[0]
    settled = link.ledger.get_payment(link.payable_id, result["payment_id"])
    before = quiet_table(stack)

    outcomes = [
        post_webhook(stack, *signed_event(kind, intent)).json()["outcome"]
        for kind in (
            "payment_intent.succeeded",
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.processing",
            "payment_intent.requires_action",
            "payment_intent.canceled",
        )
    ]

    assert outcomes == ["unchanged"] * 6
    assert link.ledger.get_payment(link.payable_id, result["payment_id"]) == settled
    assert table_snapshot(stack) == before
    link.invariant()


def test_a_failure_event_arriving_before_the_submit_settles_nothing_twice(stack: LocalStack, no_webhooks: None) -> None:
    link = open_link(stack)
    result = link.pay("4000000000009995")
    intent = link.intents()[0]

    late = [post_webhook(stack, *signed_event("payment_intent.payment_failed", intent)).json()["outcome"] for _ in "ab"]

    assert late == ["unchanged", "unchanged"]
    assert link.ledger.get_payment(link.payable_id, result["payment_id"]).status.value == "failed"
    assert link.invariant().balance_minor == 150_050


def test_unknown_payments_and_other_events_are_acknowledged(stack: LocalStack) -> None:
    foreign = {"id": "pi_not_ours", "object": "payment_intent", "metadata": {}}

    ignored = post_webhook(stack, *signed_event("payment_intent.succeeded", foreign))
    other = post_webhook(stack, *signed_event("customer.created", {"id": "cus_1", "object": "customer"}))
    refund = post_webhook(stack, *signed_event("charge.refunded", {"id": "ch_1", "payment_intent": "pi_1"}))

    assert (ignored.status_code, ignored.json()["outcome"]) == (200, "ignored")
    assert other.json()["outcome"] == "ignored"
    assert refund.json()["outcome"] == "ignored"  # a charge of an intent Stripe does not know


def test_forged_or_stale_signatures_get_400_and_change_nothing(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, no_webhooks: None
) -> None:
    link = open_link(stack)
    crash_after_confirm(stack, link, monkeypatch)  # a genuine event would settle this payment
    intent = link.intents()[0]
    payload, signature = signed_event("payment_intent.succeeded", intent)
    forgeries = {
        "missing": (payload, None),
        "other secret": signed_event("payment_intent.succeeded", intent, secret="whsec_forged"),
        "stale": signed_event("payment_intent.succeeded", intent, at=int(time.time()) - 301),
        "tampered": (payload.replace('"succeeded"', '"canceled"', 1), signature),
        "garbage": (payload, "t=abc,v1=zzz"),
    }
    before = quiet_table(stack)

    answers = {name: post_webhook(stack, body, header) for name, (body, header) in forgeries.items()}

    assert {name: (a.status_code, a.json()["code"]) for name, a in answers.items()} == dict.fromkeys(
        forgeries, (400, "invalid_signature")
    )
    assert table_snapshot(stack) == before
    assert link.invariant().pending_minor == 150_050
    # and the genuine event, signed with our secret, is the one that settles it
    genuine = post_webhook(stack, payload, signature)
    assert (genuine.status_code, genuine.json()["outcome"]) == (200, "succeeded")
    assert link.invariant().paid_minor == 150_050


def test_the_webhook_writes_how_long_after_its_creation_an_event_arrived(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event Stripe created two minutes ago (a retried delivery), signed now
    event_id = f"evt_lag_{int(time.time() * 1000)}"
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()) - 120,
            "data": {"object": {}},
        }
    )
    signature = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET, int(time.time()))

    # When it is posted to the webhook
    assert post_webhook(stack, payload, signature).status_code == 200

    # Then stripe_webhook printed its lag, in seconds
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [lag] = [line for line in lines if line.get("event_id") == event_id]
    assert 120 <= lag["WebhookLag"][0] < 180
    assert lag["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "WebhookLag", "Unit": "Seconds"}]
