"""Refund use cases and ledger transactions on DynamoDB Local, with the in-memory Stripe stand-in: write-ahead
holds, settle and release, outages repaired by a retry or the webhook, stale reads, the invariant."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime

import pytest
import stripe as stripe_sdk

from firmpay.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    PaymentNotRefundable,
    RefundExceedsPayment,
    ServiceUnavailable,
)
from firmpay.gateways.stripe_gateway import webhook_signature_valid
from firmpay.ledger import InvariantViolation, Ledger, keys
from firmpay.ledger.codec import to_attr
from firmpay.models.api import CreateRefundRequest
from firmpay.models.ledger import Firm, Payment, RefundReason, RefundStatus
from firmpay.payments import refunds, webhooks
from tests.support.card_fakes import FakeProcessor
from tests.unit.test_card_payments import open_link, review, submit

SECRET = "whsec_refunds"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def stripe() -> FakeProcessor:
    return FakeProcessor()


_CLIENT_ADDRESSES = itertools.count(1)


def paid_payment(ledger: Ledger, stripe: FakeProcessor, kind: str = "bill") -> tuple[Firm, Payment]:
    # A client address of its own: the session's table keeps the card-testing counters of every
    # earlier test's address (test_card_payments declines on purpose from its one address).
    ip = f"192.0.2.{next(_CLIENT_ADDRESSES) % 250 + 1}"
    context = open_link(ledger, kind=kind)
    outcome = submit(ledger, stripe, context, review(ledger, stripe, context, ip=ip).review_id, ip=ip)
    assert outcome.payment.status.value == "succeeded"
    return context.firm, outcome.payment


def ask(amount: int | None = None, reason: str = "requested_by_customer", note: str = "") -> CreateRefundRequest:
    return CreateRefundRequest.model_validate({"amount_minor": amount, "reason": reason, "note": note})


def refund(
    ledger: Ledger, stripe: FakeProcessor, firm: Firm, payment: Payment, amount: int | None = None, key: str = "k1"
) -> refunds.Refund:
    return refunds.refund_payment(ledger, stripe, firm, payment.payable_id, payment.payment_id, ask(amount), key, NOW)


def event(kind: str, obj: dict[str, object]) -> str:
    return json.dumps({"id": f"evt_{time.time_ns()}", "type": kind, "data": {"object": obj}})


def reconcile(ledger: Ledger, stripe: FakeProcessor, payload: str) -> str:
    header = stripe_sdk.WebhookSignature.generate_signature_header(payload, SECRET, int(time.time()))
    found = webhooks.read_event(payload, header, SECRET, webhook_signature_valid)
    return webhooks.reconcile_event(ledger, stripe, found, NOW)


# -- booking -------------------------------------------------------------------------------------


def test_a_partial_refund_of_a_bill_puts_its_amount_back_on_the_balance(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)

    done = refund(ledger, stripe, firm, payment, 50_000)

    assert (done.status, done.booking, done.amount_minor) == (RefundStatus.SUCCEEDED, "balance_restored", 50_000)
    payable = ledger.check_invariant(payment.payable_id)
    assert (payable.paid_minor, payable.balance_minor, payable.refunded_minor) == (100_050, 50_000, 50_000)
    stored = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert stored is not None
    assert stored.last_refund is not None
    assert (stored.refunded_minor, stored.refunding_minor, stored.last_refund.status) == (
        50_000,
        0,
        RefundStatus.SUCCEEDED,
    )


def test_a_trust_refund_leaves_the_requests_balance_alone(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe, kind="trust_request")

    done = refund(ledger, stripe, firm, payment)

    assert (done.booking, done.amount_minor) == ("trust_disbursement", 150_050)
    payable = ledger.check_invariant(payment.payable_id)
    assert (payable.paid_minor, payable.balance_minor, payable.refunded_minor) == (0, 0, 150_050)


def test_the_rest_is_refunded_when_no_amount_is_given(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    refund(ledger, stripe, firm, payment, 30_000, key="a")

    rest = refund(ledger, stripe, firm, payment, key="b")

    assert rest.amount_minor == 120_050
    with pytest.raises(RefundExceedsPayment):
        refund(ledger, stripe, firm, payment, key="c")
    assert ledger.check_invariant(payment.payable_id).paid_minor == 0


def test_a_failed_payment_cannot_be_refunded(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    failed = submit(ledger, stripe, context, review(ledger, stripe, context, method="pm_card_declined").review_id)

    with pytest.raises(PaymentNotRefundable):
        refund(ledger, stripe, context.firm, failed.payment)
    assert "create_refund" not in stripe.calls


def test_the_key_with_another_request_is_refused(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    refund(ledger, stripe, firm, payment, 1_000)

    with pytest.raises(IdempotencyKeyReused):
        refund(ledger, stripe, firm, payment, 2_000)
    assert ledger.check_invariant(payment.payable_id).refunded_minor == 1_000


def test_the_idempotency_key_comes_from_the_header_or_the_body() -> None:
    body = CreateRefundRequest.model_validate({"reason": "duplicate", "idempotency_key": "body-key"})

    assert refunds.idempotency_key_of(body, None) == "body-key"
    assert refunds.idempotency_key_of(ask(), "header-key") == "header-key"
    with pytest.raises(InvalidRequest):
        refunds.idempotency_key_of(ask(), None)
    with pytest.raises(InvalidRequest):
        refunds.idempotency_key_of(body, "other-key")


def test_other_needs_a_note() -> None:
    with pytest.raises(ValueError, match="note"):
        ask(reason="other")
    assert ask(reason="other", note="Settlement").reason is RefundReason.OTHER


# -- write-ahead, outages and the webhook ----------------------------------------------------------


def test_an_outage_leaves_the_refund_held_and_a_retry_finishes_it_once(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    stripe.unavailable = True

    with pytest.raises(ServiceUnavailable):
        refund(ledger, stripe, firm, payment, 40_000)

    payable = ledger.check_invariant(payment.payable_id)
    assert (payable.paid_minor, payable.refunded_minor) == (150_050, 0)
    held = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert held is not None
    assert held.refunding_minor == 40_000
    with pytest.raises(RefundExceedsPayment):  # the held amount is not refundable twice
        refund(ledger, stripe, firm, payment, 110_051, key="other")

    stripe.unavailable = False
    done = refund(ledger, stripe, firm, payment, 40_000)

    assert done.status is RefundStatus.SUCCEEDED
    assert len(stripe.refunds) == 1
    assert ledger.check_invariant(payment.payable_id).refunded_minor == 40_000


def test_a_pending_refund_is_finished_by_the_webhook_in_any_order(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    stripe.refund_status = "pending"
    pending = refund(ledger, stripe, firm, payment, 10_000)
    assert pending.status is RefundStatus.PENDING
    assert pending.processor_refund_id
    charge = {"object": "charge", "id": "ch_1", "payment_intent": payment.processor_intent_id}
    as_refund = {"object": "refund", "id": pending.processor_refund_id, "payment_intent": payment.processor_intent_id}

    early = reconcile(ledger, stripe, event("refund.created", as_refund))
    stripe.finish_refund(pending.processor_refund_id, "succeeded")
    outcomes = [
        reconcile(ledger, stripe, event("charge.refund.updated", as_refund)),
        reconcile(ledger, stripe, event("charge.refunded", charge)),
        reconcile(ledger, stripe, event("refund.created", as_refund)),
    ]

    assert early == "unchanged"
    assert outcomes == ["refund_succeeded", "unchanged", "unchanged"]
    assert ledger.check_invariant(payment.payable_id).refunded_minor == 10_000


def test_a_refund_the_bank_fails_gives_the_amount_back(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    stripe.refund_status = "pending"
    pending = refund(ledger, stripe, firm, payment)
    assert pending.processor_refund_id
    stripe.finish_refund(pending.processor_refund_id, "failed")
    charge = {"object": "charge", "id": "ch_1", "payment_intent": payment.processor_intent_id}

    assert reconcile(ledger, stripe, event("charge.refunded", charge)) == "refund_failed"

    payable = ledger.check_invariant(payment.payable_id)
    assert (payable.paid_minor, payable.refunded_minor) == (150_050, 0)
    again = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert again is not None
    assert again.refundable_minor == 150_050


def test_a_refund_stripe_refuses_is_released(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    # Refunded behind our back (the dashboard): Stripe refuses ours.
    stripe.create_refund(payment.processor_intent_id or "", 150_050, None, "outside", {})

    failed = refund(ledger, stripe, firm, payment, 5_000)

    assert failed.status is RefundStatus.FAILED
    assert ledger.check_invariant(payment.payable_id).paid_minor == 150_050


def test_a_stale_read_is_not_booked(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    first = refund(ledger, stripe, firm, payment, 150_000, key="a")
    assert first.status is RefundStatus.SUCCEEDED
    late = refunds._new_refund(
        ledger.get_payable(payment.payable_id),  # type: ignore[arg-type]
        payment,  # read before the first refund: 150_050 refundable
        ask(100),
        "rfd_stale",
        "x",
        NOW,
    )

    assert ledger.open_refund(late, payment) == "stale"
    assert ledger.get_refund(payment.payable_id, "rfd_stale") is None
    ledger.check_invariant(payment.payable_id)


def test_the_invariant_notices_a_refund_that_was_not_booked(ledger: Ledger, stripe: FakeProcessor) -> None:
    firm, payment = paid_payment(ledger, stripe)
    refund(ledger, stripe, firm, payment, 5_000)
    # A bug that books only half of a refund:
    ledger._db.update_item(
        TableName=ledger._table,
        Key=keys.payment(payment.payable_id, payment.payment_id),
        UpdateExpression="SET refunded_minor = :r",
        ExpressionAttributeValues={":r": to_attr(0)},
    )

    with pytest.raises(InvariantViolation, match="refunded"):
        ledger.check_invariant(payment.payable_id)
