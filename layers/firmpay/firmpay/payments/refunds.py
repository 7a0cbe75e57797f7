"""Refunds of succeeded payments, written ahead like the payments themselves.

1. ``refund_payment`` (firm API): the payment must be this firm's and succeeded (an eCheck only
   once settled). ``Ledger.open_refund`` writes the PENDING refund and holds its amount on the
   payment (``refunding_minor``) in one transaction, conditional on the amounts it read: two
   refunds racing on one payment can never hold more than was paid; the loser reads again.
2. Stripe creates the refund with the Idempotency-Key ``fp-refund-<refund_id>``.
3. ``apply_processor_refund`` books Stripe's answer: succeeded -> ``settle_refund`` (a bill's
   balance is owed again; a trust request's refund is a trust disbursement back to the client),
   failed or canceled -> ``release_refund``; pending -> held until the webhook says more.

``refund_id`` is derived from the payment and the firm's idempotency key, so a retry (same key,
same request) lands on the same row: it reads Stripe's refund first (by its id, or by our
metadata) and creates one only when Stripe has none, so it finishes a refund a crash, an outage or
a bank left pending, and never refunds twice, also after Stripe forgot the Idempotency-Key
(kept at least 24 hours). The same key with another request is a 409 ``idempotency_key_reused``.

Stripe's refund events (``charge.refunded``, ``refund.*``, ``charge.refund.updated``) only name
the payment: ``reconcile_refunds`` reads each of its pending refunds from Stripe and applies it
with the same conditional writes, so events in any order, any number of times, before or after
our own request finishes, converge on Stripe's state. Refunds made outside FirmPay (Stripe's
Dashboard: no ``refund_id`` in their metadata) are booked from the same events
(``book_outside_refunds``) and the firm is emailed.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from datetime import datetime

from firmpay.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    PaymentNotRefundable,
    RefundExceedsPayment,
    ServiceUnavailable,
)
from firmpay.ledger import Ledger
from firmpay.models.api import CreateRefundRequest
from firmpay.models.card import StripeEvent
from firmpay.models.ledger import Firm, Payable, Payment, PaymentStatus, Refund, RefundReason, RefundStatus
from firmpay.observability import logger
from firmpay.payments.firm_admin import payable_of
from firmpay.payments.ports import RefundProcessor
from firmpay.payments.processor import ProcessorRefund, ProcessorUnavailable, RefundRefused

# Stripe knows three reasons; "other" is ours (the note says why) and is sent without one.
_STRIPE_REASONS = {
    RefundReason.REQUESTED_BY_CUSTOMER: "requested_by_customer",
    RefundReason.DUPLICATE: "duplicate",
    RefundReason.FRAUDULENT: "fraudulent",
}
# Refunds racing on one payment each win a round in turn; past this many lost rounds, give up (409).
_MAX_ROUNDS = 40


def refund_id_for(payment_id: str, idempotency_key: str) -> str:
    """Deterministic: every retry of one request (same key) is the same refund, at Stripe too."""
    return "rfd_" + hashlib.sha256(f"{payment_id}\n{idempotency_key}".encode()).hexdigest()[:24]


def request_sha256(request: CreateRefundRequest) -> str:
    """What a retry must repeat exactly (the amount as asked: "the rest" stays "the rest")."""
    asked = {"amount_minor": request.amount_minor, "reason": request.reason.value, "note": request.note}
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def idempotency_key_of(request: CreateRefundRequest, header: str | None) -> str:
    """The firm's idempotency key, from the ``Idempotency-Key`` header or the body (required)."""
    if header and request.idempotency_key and header != request.idempotency_key:
        raise InvalidRequest("The Idempotency-Key header and the idempotency_key field differ.")
    key = header or request.idempotency_key
    if not key:
        raise InvalidRequest("An Idempotency-Key header (or an idempotency_key field) is required for a refund.")
    return key


def check_refundable(payment: Payment) -> None:
    """Only a succeeded payment can be refunded: an eCheck once its debit settled."""
    match payment.status:
        case PaymentStatus.SUCCEEDED if payment.processor_intent_id:
            return
        case PaymentStatus.PROCESSING:
            raise PaymentNotRefundable("This eCheck payment has not settled yet; it can be refunded once it has.")
        case PaymentStatus.PENDING | PaymentStatus.REQUIRES_ACTION:
            raise PaymentNotRefundable("This payment is still in progress; it can be refunded once it succeeds.")
        case PaymentStatus.FAILED | PaymentStatus.CANCELED:
            raise PaymentNotRefundable("This payment did not go through: nothing was charged, so nothing to refund.")
    raise PaymentNotRefundable()


def refund_payment(
    ledger: Ledger,
    processor: RefundProcessor,
    firm: Firm,
    payable_id: str,
    payment_id: str,
    request: CreateRefundRequest,
    idempotency_key: str,
    now: datetime,
) -> Refund:
    """Refund (part of) a succeeded payment of this firm; the refund as it stands after Stripe's answer.

    Refused before any write: another firm's or an unknown payment (404), a payment that did not
    succeed (409 ``payment_not_refundable``), more than what is left to refund (422
    ``refund_exceeds_payment``).
    """
    payable, payments = payable_of(ledger, firm, payable_id)
    payment = next((p for p in payments if p.payment_id == payment_id), None)
    if payment is None:
        raise NotFound("No such payment of this bill or trust request.")
    refund_id = refund_id_for(payment.payment_id, idempotency_key)
    fingerprint = request_sha256(request)
    opened = "exists"
    for _ in range(_MAX_ROUNDS):
        existing = ledger.get_refund(payable.payable_id, refund_id) if opened == "exists" else None
        if existing is not None:
            if existing.request_sha256 != fingerprint:
                raise IdempotencyKeyReused("This idempotency key was already used for a different refund.")
            return drive_refund(ledger, processor, existing, payment, now, first_attempt=False)
        refund = _new_refund(payable, payment, request, refund_id, fingerprint, now)
        opened = ledger.open_refund(refund, payment)
        if opened == "opened":
            logger.info(
                "refund opened",
                extra={"refund_id": refund_id, "payment_id": payment.payment_id, "amount_minor": refund.amount_minor},
            )
            return drive_refund(ledger, processor, refund, payment, now, first_attempt=True)
        if opened == "stale":
            # Another refund of this payment moved its amounts first: decide again on what is left.
            time.sleep(random.uniform(0.0, 0.01))
            current = ledger.get_payment(payment.payable_id, payment.payment_id)
            assert current is not None
            payment = current
    raise Conflict("This payment is being refunded by other requests right now; try again.")


def _new_refund(
    payable: Payable, payment: Payment, request: CreateRefundRequest, refund_id: str, fingerprint: str, now: datetime
) -> Refund:
    check_refundable(payment)
    left = payment.refundable_minor
    amount = left if request.amount_minor is None else request.amount_minor
    if left == 0 or amount > left:
        raise RefundExceedsPayment(
            "Nothing is left to refund on this payment."
            if left == 0
            else "The refund is more than what is left to refund on this payment.",
            refundable_minor=left,
        )
    return Refund(
        refund_id=refund_id,
        payable_id=payable.payable_id,
        payment_id=payment.payment_id,
        firm_id=payment.firm_id,
        client_id=payment.client_id,
        amount_minor=amount,
        currency=payment.currency,
        reason=request.reason,
        note=request.note,
        booking="trust_disbursement" if payable.kind == "trust_request" else "balance_restored",
        idempotency_key=f"fp-refund-{refund_id}",
        request_sha256=fingerprint,
        created_at=now,
        updated_at=now,
    )


def drive_refund(
    ledger: Ledger, processor: RefundProcessor, refund: Refund, payment: Payment, now: datetime, first_attempt: bool
) -> Refund:
    """Ask Stripe for a pending refund (same Idempotency-Key every time) and book its answer.

    On a retry (the refund row was already there) Stripe's refund is read first and only created
    when Stripe has none: within Stripe's idempotency window a create would replay the first
    answer (a refund ``pending`` then stays pending forever), and past it (Stripe keeps keys at
    least 24 hours) it would refund a second time. If Stripe does not answer, the refund stays
    pending with its amount held (503): a retry with the same idempotency key, or Stripe's webhook,
    finishes it.
    """
    if refund.status is not RefundStatus.PENDING:
        return refund
    assert payment.processor_intent_id is not None
    try:
        answer = None if first_attempt else refund_at_processor(processor, refund, payment.processor_intent_id)
        if answer is None:
            answer = _create_at_processor(ledger, processor, refund, payment.processor_intent_id, now)
            if answer is None:
                return _current(ledger, refund)
    except ProcessorUnavailable as error:
        raise ServiceUnavailable(
            "The payment processor did not answer. The refund is recorded as pending; retry with the same "
            "idempotency key to complete it (it will never be refunded twice)."
        ) from error
    return apply_processor_refund(ledger, refund, answer, now)


def refund_at_processor(processor: RefundProcessor, refund: Refund, intent_id: str) -> ProcessorRefund | None:
    """Stripe's refund for this ledger refund: by its id once known, else by our metadata (None: none yet)."""
    if refund.processor_refund_id:
        return processor.retrieve_refund(refund.processor_refund_id)
    return processor.find_refund(intent_id, refund.refund_id)


def _create_at_processor(
    ledger: Ledger, processor: RefundProcessor, refund: Refund, intent_id: str, now: datetime
) -> ProcessorRefund | None:
    """Create the refund at Stripe; None when Stripe refused it (the refund is then released as failed)."""
    metadata = {
        "firm_id": refund.firm_id,
        "payable_id": refund.payable_id,
        "payment_id": refund.payment_id,
        "refund_id": refund.refund_id,
    }
    try:
        return processor.create_refund(
            intent_id, refund.amount_minor, _STRIPE_REASONS.get(refund.reason), refund.idempotency_key, metadata
        )
    except RefundRefused as refused:
        # A refusal may follow a refund Stripe did make (a concurrent retry): look before failing it.
        found = processor.find_refund(intent_id, refund.refund_id)
        if found is None:
            logger.warning("refund refused by the processor", extra={"refund_id": refund.refund_id})
            ledger.release_refund(refund, RefundStatus.FAILED, f"processor_refused:{refused}", now)
        return found


def apply_processor_refund(ledger: Ledger, refund: Refund, answer: ProcessorRefund, now: datetime) -> Refund:
    """Bring the refund in line with Stripe's. Idempotent: only a pending refund moves."""
    if answer.amount_minor != refund.amount_minor:
        raise ValueError(f"processor refund {answer.refund_id} does not match refund {refund.refund_id}")
    if answer.status == "succeeded":
        ledger.settle_refund(refund, answer.refund_id, now)
    elif answer.status in ("failed", "canceled"):
        ledger.release_refund(refund, RefundStatus(answer.status), answer.failure_reason, now)
    elif refund.processor_refund_id != answer.refund_id:
        ledger.note_processor_refund(refund, answer.refund_id)
    return _current(ledger, refund)


def _current(ledger: Ledger, refund: Refund) -> Refund:
    current = ledger.get_refund(refund.payable_id, refund.refund_id)
    assert current is not None
    return current


# -- Stripe's refund events -------------------------------------------------------------------------


def reconcile_refund_event(ledger: Ledger, processor: RefundProcessor, event: StripeEvent, now: datetime) -> str:
    """A ``charge.refunded`` (a charge) or ``refund.*`` / ``charge.refund.updated`` (a refund) event.

    A charge event, or a refund without our metadata, may be about a refund made outside FirmPay
    (Stripe's Dashboard, or the API by hand): those are booked too (``book_outside_refunds``).
    """
    obj = event.data.object
    intent_id = obj.get("payment_intent")
    if not isinstance(intent_id, str):
        return "ignored"
    metadata = (obj.get("metadata") or {}) if obj.get("object") == "refund" else {}
    payable_id, payment_id = metadata.get("payable_id"), metadata.get("payment_id")
    ours = isinstance(metadata.get("refund_id"), str)
    try:
        if not isinstance(payable_id, str) or not isinstance(payment_id, str):
            # A charge event (or a refund made outside FirmPay): the intent says whose payment it is.
            intent = processor.find_intent(intent_id)
            intent_metadata = intent.metadata if intent else {}
            payable_id, payment_id = intent_metadata.get("payable_id"), intent_metadata.get("payment_id")
        payment = ledger.get_payment(payable_id, payment_id) if payable_id and payment_id else None
        if payment is None or payment.processor_intent_id != intent_id:
            logger.info("refund event for an unknown payment", extra={"event_type": event.type, "event_id": event.id})
            return "ignored"
        outcome = reconcile_refunds(ledger, processor, payment, now)
        if not ours:
            booked = book_outside_refunds(ledger, processor, payment, now)
            outcome = booked if outcome == "unchanged" else outcome
        return outcome
    except ProcessorUnavailable as error:
        raise ServiceUnavailable() from error


OUTSIDE_NOTE = "Refunded outside FirmPay (in Stripe)"
_OUTSIDE_REASONS = {stripe: ours for ours, stripe in _STRIPE_REASONS.items()}


def outside_refund_id(processor_refund_id: str) -> str:
    """Our id for a refund made outside FirmPay: derived from Stripe's, so every event books it once."""
    return "rfd_" + hashlib.sha256(f"outside\n{processor_refund_id}".encode()).hexdigest()[:24]


def book_outside_refunds(ledger: Ledger, processor: RefundProcessor, payment: Payment, now: datetime) -> str:
    """Book the refunds Stripe holds for the payment that FirmPay did not make (no ``refund_id``
    in their metadata): the payable's ``paid`` goes down as for our own refunds (a bill's balance is
    owed again) and the firm is emailed (the stream's ``firm_refund_outside``). ``unchanged`` or
    ``outside_refund_<status>``. A failed or canceled one moved no money and is not booked.
    """
    assert payment.processor_intent_id is not None
    outcome = "unchanged"
    for found in processor.list_refunds(payment.processor_intent_id):
        if "refund_id" in found.metadata or found.status not in ("pending", "succeeded"):
            continue
        if ledger.get_refund(payment.payable_id, outside_refund_id(found.refund_id)) is not None:
            continue  # booked by an earlier event; reconcile_refunds finishes it if it was pending
        booked = _book_outside_refund(ledger, payment, found, now)
        outcome = f"outside_refund_{booked.status.value}"
        logger.warning(
            "refund made outside FirmPay booked",
            extra={
                "refund_id": booked.refund_id,
                "payment_id": payment.payment_id,
                "amount_minor": booked.amount_minor,
            },
        )
    return outcome


def _book_outside_refund(ledger: Ledger, payment: Payment, found: ProcessorRefund, now: datetime) -> Refund:
    payable = ledger.get_payable(payment.payable_id)
    assert payable is not None
    for _ in range(_MAX_ROUNDS):
        if payment.status is not PaymentStatus.SUCCEEDED or found.amount_minor > payment.refundable_minor:
            # Stripe refunded more than the ledger can take: one of our own refunds is held but not
            # (yet) made at Stripe. Answer 503: Stripe sends the event again once that one is decided.
            logger.error("outside refund does not fit the payment yet", extra={"payment_id": payment.payment_id})
            raise ServiceUnavailable()
        refund = Refund(
            refund_id=outside_refund_id(found.refund_id),
            payable_id=payment.payable_id,
            payment_id=payment.payment_id,
            firm_id=payment.firm_id,
            client_id=payment.client_id,
            amount_minor=found.amount_minor,
            currency=payment.currency,
            reason=_OUTSIDE_REASONS.get(found.reason or "", RefundReason.OTHER),
            note=OUTSIDE_NOTE,
            booking="trust_disbursement" if payable.kind == "trust_request" else "balance_restored",
            idempotency_key=f"outside-{found.refund_id}",
            request_sha256=hashlib.sha256(found.refund_id.encode()).hexdigest(),
            processor_refund_id=found.refund_id,
            origin="outside",
            created_at=now,
            updated_at=now,
        )
        if ledger.open_refund(refund, payment) != "stale":
            return apply_processor_refund(ledger, _current(ledger, refund), found, now)
        current = ledger.get_payment(payment.payable_id, payment.payment_id)
        assert current is not None
        payment = current
    raise ServiceUnavailable()


def reconcile_refunds(ledger: Ledger, processor: RefundProcessor, payment: Payment, now: datetime) -> str:
    """Read each pending refund of the payment from Stripe and apply it: ``unchanged`` or ``refund_<status>``."""
    assert payment.processor_intent_id is not None
    outcome = "unchanged"
    for refund in ledger.list_refunds(payment.payable_id):
        if refund.payment_id != payment.payment_id or refund.status is not RefundStatus.PENDING:
            continue
        answer = (
            processor.retrieve_refund(refund.processor_refund_id)
            if refund.processor_refund_id
            else processor.find_refund(payment.processor_intent_id, refund.refund_id)
        )
        if answer is None:
            continue  # our own request has not reached Stripe yet: it (or its retry) books the answer
        after = apply_processor_refund(ledger, refund, answer, now)
        if after.status is not RefundStatus.PENDING:
            outcome = f"refund_{after.status.value}"
    return outcome
