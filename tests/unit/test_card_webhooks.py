"""Stripe webhooks and the sweep: signature checks, repair after a crash, replays, out-of-order events."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe as stripe_sdk

from firmpay.errors import WebhookSignatureInvalid
from firmpay.gateways.stripe_gateway import webhook_signature_valid
from firmpay.ledger import Ledger, LinkContext
from firmpay.models.ledger import Payment, PaymentStatus
from firmpay.payments import webhooks
from firmpay.payments.checkout import consent as make_consent
from firmpay.payments.checkout import open_payment
from firmpay.payments.processor import ConfirmRequest
from firmpay.payments.sweep import sweep_pending
from tests.support.card_fakes import CARD_3DS, CARD_OK, FakeProcessor
from tests.unit.test_card_payments import open_link, review, submit

SECRET = "whsec_test_secret"


def signed(payload: str, at: int | None = None, secret: str = SECRET) -> str:
    return stripe_sdk.WebhookSignature.generate_signature_header(payload, secret, at or int(time.time()))


def event_for(payment: Payment, kind: str = "payment_intent.succeeded", **obj: Any) -> str:
    intent = {
        "id": payment.processor_intent_id,
        "object": "payment_intent",
        "metadata": {"payable_id": payment.payable_id, "payment_id": payment.payment_id},
    }
    return json.dumps({"id": "evt_1", "type": kind, "created": int(time.time()), "data": {"object": intent | obj}})


def crashed_after_confirm(
    ledger: Ledger, stripe: FakeProcessor, context: LinkContext, method: str = CARD_OK
) -> Payment:
    """Reserve and confirm at Stripe, then "crash" before the ledger hears the answer."""
    made = review(ledger, stripe, context, method=method)
    _, payable = ledger.get_review_and_payable(made.payable_id, made.review_id)
    assert payable is not None
    payment, _ = open_payment(ledger, made, payable, datetime.now(UTC))
    stripe.confirm_intent(
        ConfirmRequest(intent_id=made.processor_intent_id or "", idempotency_key=payment.idempotency_key)
    )
    return payment


def reconcile(ledger: Ledger, stripe: FakeProcessor, payload: str) -> str:
    event = webhooks.read_event(payload, signed(payload), SECRET, webhook_signature_valid)
    return webhooks.reconcile_event(ledger, stripe, event, datetime.now(UTC))


@pytest.fixture
def stripe() -> FakeProcessor:
    return FakeProcessor()


# -- signatures -----------------------------------------------------------------------------------


def test_a_valid_signature_yields_the_event() -> None:
    payload = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}})

    event = webhooks.read_event(payload, signed(payload), SECRET, webhook_signature_valid)

    assert event.type == "payment_intent.succeeded"
    assert event.data.object["id"] == "pi_1"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=1,v1=abc",
        "garbage",
        "forged-with-other-secret",
        "stale",
        "body-changed",
    ],
)
def test_forged_missing_or_stale_signatures_are_refused(header: str | None) -> None:
    payload = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}})
    if header == "forged-with-other-secret":
        header = signed(payload, secret="whsec_other")
    elif header == "stale":
        header = signed(payload, at=int(time.time()) - 301)
    elif header == "body-changed":
        header, payload = signed(payload), payload.replace("evt_1", "evt_2")

    with pytest.raises(WebhookSignatureInvalid):
        webhooks.read_event(payload, header, SECRET, webhook_signature_valid)


# -- reconciling ----------------------------------------------------------------------------------


def test_webhook_alone_repairs_a_crash_after_the_charge(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    payment = crashed_after_confirm(ledger, stripe, context)
    assert ledger.check_invariant(payment.payable_id).pending_minor == payment.amount_minor

    outcome = reconcile(ledger, stripe, event_for(payment))

    assert outcome == "succeeded"
    payable = ledger.check_invariant(payment.payable_id)
    assert payable.paid_minor == payment.amount_minor
    assert payable.pending_minor == 0
    assert len(stripe.charges) == 1


def test_replayed_and_out_of_order_events_change_nothing(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    payment = crashed_after_confirm(ledger, stripe, context)
    reconcile(ledger, stripe, event_for(payment))
    settled = ledger.get_payment(payment.payable_id, payment.payment_id)

    replays = [
        reconcile(ledger, stripe, event_for(payment)),
        reconcile(ledger, stripe, event_for(payment, "payment_intent.payment_failed")),
        reconcile(ledger, stripe, event_for(payment, "payment_intent.requires_action")),
        reconcile(ledger, stripe, event_for(payment, "payment_intent.canceled")),
    ]

    assert replays == ["unchanged"] * 4
    assert ledger.get_payment(payment.payable_id, payment.payment_id) == settled
    assert ledger.check_invariant(payment.payable_id).paid_minor == payment.amount_minor


def test_a_late_requires_action_event_after_failure_keeps_the_failure(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    payment = crashed_after_confirm(ledger, stripe, context, "pm_card_insufficient")

    assert reconcile(ledger, stripe, event_for(payment, "payment_intent.payment_failed")) == "failed"
    assert reconcile(ledger, stripe, event_for(payment, "payment_intent.requires_action")) == "unchanged"

    stored = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert stored is not None
    assert stored.status is PaymentStatus.FAILED
    assert stored.failure_code == "insufficient_funds"
    assert ledger.check_invariant(payment.payable_id).balance_minor == context.payable.balance_minor


@pytest.mark.parametrize(
    "metadata",
    [{}, {"payable_id": "pbl_unknown", "payment_id": "pay_000000000000000000000000"}],
)
def test_events_for_unknown_payments_are_ignored(
    ledger: Ledger, stripe: FakeProcessor, metadata: dict[str, str]
) -> None:
    payload = json.dumps(
        {"id": "evt_9", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_x", "metadata": metadata}}}
    )

    assert reconcile(ledger, stripe, payload) == "ignored"
    assert stripe.calls == []


def test_an_event_naming_another_intent_is_ignored(ledger: Ledger, stripe: FakeProcessor) -> None:
    payment = crashed_after_confirm(ledger, stripe, open_link(ledger))

    assert reconcile(ledger, stripe, event_for(payment, id="pi_someone_else")) == "ignored"
    assert ledger.check_invariant(payment.payable_id).pending_minor == payment.amount_minor


def test_a_refund_event_for_an_intent_that_is_not_ours_is_ignored(ledger: Ledger, stripe: FakeProcessor) -> None:
    payload = json.dumps({"id": "evt_r", "type": "charge.refunded", "data": {"object": {"payment_intent": "pi_1"}}})

    assert reconcile(ledger, stripe, payload) == "ignored"


def test_the_webhook_stores_a_consented_card_the_crashed_submit_did_not(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context)
    _, payable = ledger.get_review_and_payable(made.payable_id, made.review_id)
    assert payable is not None
    consent = make_consent("text", "store-method-v1", datetime.now(UTC), "203.0.113.9", "UA")
    payment, _ = open_payment(ledger, made, payable, datetime.now(UTC), store_consent=consent)
    stripe.confirm_intent(
        ConfirmRequest(
            intent_id=made.processor_intent_id or "",
            idempotency_key=payment.idempotency_key,
            setup_future_usage="off_session",
        )
    )

    reconcile(ledger, stripe, event_for(payment))
    reconcile(ledger, stripe, event_for(payment))

    methods = ledger.list_methods(context.firm.firm_id, context.client.client_id)
    assert [m.created_from_payment_id for m in methods] == [payment.payment_id]


# -- the sweep ------------------------------------------------------------------------------------


def test_sweep_alone_repairs_a_crash_after_the_charge(ledger: Ledger, stripe: FakeProcessor) -> None:
    payment = crashed_after_confirm(ledger, stripe, open_link(ledger))

    report = sweep_pending(ledger, stripe, datetime.now(UTC) + timedelta(minutes=4), timedelta(minutes=15))

    assert report.outcomes["succeeded"] >= 1
    stored = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert stored is not None
    assert stored.status is PaymentStatus.SUCCEEDED
    assert ledger.check_invariant(payment.payable_id).paid_minor == payment.amount_minor
    assert len(stripe.charges) == 1


def test_sweep_leaves_young_payments_to_the_submit(ledger: Ledger, stripe: FakeProcessor) -> None:
    payment = crashed_after_confirm(ledger, stripe, open_link(ledger))

    sweep_pending(ledger, stripe, datetime.now(UTC), timedelta(minutes=15))

    stored = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert stored is not None
    assert stored.status is PaymentStatus.PENDING


def test_sweep_cancels_an_abandoned_challenge_and_frees_the_balance(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context, method=CARD_3DS)
    asked = submit(ledger, stripe, context, made.review_id)
    assert asked.payment.status is PaymentStatus.REQUIRES_ACTION

    sweep_pending(ledger, stripe, datetime.now(UTC) + timedelta(minutes=16), timedelta(minutes=15))

    stored = ledger.get_payment(asked.payment.payable_id, asked.payment.payment_id)
    assert stored is not None
    assert stored.status is PaymentStatus.CANCELED
    assert stripe.intents[made.processor_intent_id or ""].status == "canceled"
    assert ledger.check_invariant(context.payable.payable_id).balance_minor == context.payable.balance_minor


def test_sweep_goes_on_when_stripe_fails_for_one_payment(ledger: Ledger, stripe: FakeProcessor) -> None:
    payment = crashed_after_confirm(ledger, stripe, open_link(ledger))
    stripe.unavailable = True

    report = sweep_pending(ledger, stripe, datetime.now(UTC) + timedelta(minutes=4), timedelta(minutes=15))

    assert report.outcomes["error"] >= 1
    stored = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert stored is not None
    assert stored.status is PaymentStatus.PENDING
