"""Stripe webhooks: verify, then bring the ledger in line with the PaymentIntent as Stripe keeps it now.

An event only says *which* payment to look at. The intent is read again from Stripe and applied
with ``checkout.apply_intent`` (conditional writes), so duplicated, replayed and out-of-order
events, and events racing the submit or the sweep, all converge on the same state, and a crash
between Stripe's confirm and our ledger update is repaired without a second charge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import ValidationError

from firmpay.errors import InvalidRequest, ServiceUnavailable, WebhookSignatureInvalid
from firmpay.ledger import Ledger
from firmpay.models.card import StripeEvent
from firmpay.models.ledger import Payment
from firmpay.observability import logger
from firmpay.payments.checkout import apply_intent
from firmpay.payments.plans import reopen_after_return
from firmpay.payments.ports import PaymentAndRefundProcessor, PaymentProcessor
from firmpay.payments.processor import Intent, ProcessorUnavailable
from firmpay.payments.stored_methods import remember_method, retire_returned_method

SIGNATURE_TOLERANCE_SECONDS = 300

PAYMENT_INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
    }
)
REFUND_EVENTS = frozenset(
    {"charge.refunded", "charge.refund.updated", "refund.created", "refund.updated", "refund.failed"}
)

# (raw body, Stripe-Signature header, secret, tolerance in seconds) -> valid?
SignatureCheck = Callable[[str, str | None, str, int], bool]


def read_event(payload: str, signature: str | None, secret: str, signature_valid: SignatureCheck) -> StripeEvent:
    """The event, once its signature over the raw body is checked; ``WebhookSignatureInvalid`` otherwise."""
    if not signature or not signature_valid(payload, signature, secret, SIGNATURE_TOLERANCE_SECONDS):
        raise WebhookSignatureInvalid()
    try:
        return StripeEvent.model_validate_json(payload)
    except ValidationError as error:
        raise InvalidRequest("The event is not a Stripe event.") from error


def reconcile_event(ledger: Ledger, processor: PaymentAndRefundProcessor, event: StripeEvent, now: datetime) -> str:
    """Apply one event; the answer says what happened (for the log and the HTTP body)."""
    from firmpay.metrics import record_webhook_lag  # on the first event, not at cold start

    record_webhook_lag(event.id, event.created, now)
    if event.type in REFUND_EVENTS:
        return on_refund(ledger, processor, event, now)
    if event.type not in PAYMENT_INTENT_EVENTS:
        return "ignored"
    intent = event.data.object
    metadata = intent.get("metadata") or {}
    payable_id, payment_id = metadata.get("payable_id"), metadata.get("payment_id")
    if not isinstance(payable_id, str) or not isinstance(payment_id, str):
        return "ignored"
    payment = ledger.get_payment(payable_id, payment_id)
    if payment is None or payment.processor_intent_id != intent.get("id"):
        # A review that was never submitted, or an intent that is not ours.
        logger.info("webhook for an unknown payment", extra={"event_type": event.type, "event_id": event.id})
        return "ignored"
    outcome = reconcile_payment(ledger, processor, payment, now)
    logger.info(
        "webhook reconciled",
        extra={"event_type": event.type, "event_id": event.id, "payment_id": payment.payment_id, "outcome": outcome},
    )
    return outcome


def reconcile_payment(
    ledger: Ledger,
    processor: PaymentProcessor,
    payment: Payment,
    now: datetime,
    abandon_after: timedelta | None = None,
) -> str:
    """Read the payment's intent from Stripe and apply it: ``unchanged`` or the payment's new status.

    With ``abandon_after`` (the sweep), an intent left waiting longer than that is canceled first.
    """
    if payment.reserved:
        assert payment.processor_intent_id is not None
        try:
            intent = processor.retrieve_intent(payment.processor_intent_id)
            if abandon_after is not None and abandoned(intent, payment, now, abandon_after):
                intent = processor.cancel_intent(intent.intent_id, f"fp-cancel-{payment.payment_id}")
        except ProcessorUnavailable as error:
            raise ServiceUnavailable() from error
        after = apply_intent(ledger, payment, intent)
    else:
        after = payment
    # Also for a payment settled earlier: the submit may have died between settling and storing.
    remember_method(ledger, after, now)
    retire_returned_method(ledger, after)
    reopen_after_return(ledger, after, now)
    return "unchanged" if after.status is payment.status else after.status.value


def abandoned(intent: Intent, payment: Payment, now: datetime, abandon_after: timedelta) -> bool:
    """Never confirmed, or a challenge never answered, for longer than ``abandon_after``."""
    waiting = intent.status in ("requires_confirmation", "requires_action") or (
        intent.status == "requires_payment_method" and not intent.failure_code
    )
    return waiting and payment.created_at <= now - abandon_after


def on_refund(ledger: Ledger, processor: PaymentAndRefundProcessor, event: StripeEvent, now: datetime) -> str:
    """Book the refunds of the payment the event names, as Stripe keeps them now (``payments.refunds``)."""
    from firmpay.payments.refunds import reconcile_refund_event

    outcome = reconcile_refund_event(ledger, processor, event, now)
    logger.info("refund webhook reconciled", extra={"event_type": event.type, "event_id": event.id, "outcome": outcome})
    return outcome
