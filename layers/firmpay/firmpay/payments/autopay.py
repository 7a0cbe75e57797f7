"""Autopay: a firm charges a method its client stored, off-session, on checkout's machinery.

One request (``AutopayRequest``: firm, payable, stored method, amount, the firm's idempotency key)
goes through the same steps as a pay-page payment, without a browser:

1. Every check reads only: the firm (and, on the IAM route, that the caller is one of its
   principals), the firm's key (a repeat answers with the payment the key made, a different
   request under a used key is a 409 ``idempotency_key_reused``), the payable (the firm's, open,
   same currency, amount within the balance) and the method (the payable's client's, active,
   stored with the client's consent). A refusal changes nothing.
2. An unconfirmed PaymentIntent (Stripe Idempotency-Key derived from the firm, its key and the
   request), then checkout's ``open_payment``: reserve + PENDING payment + the ``IDEM#`` item in
   one transaction. Concurrent repeats land on the same payment row; a concurrent *different*
   request under the same key loses the transaction and gets the 409.
3. checkout's ``confirm_opened`` off-session (a debit under the mandate stored with the method) and
   ``apply_intent``. Which methods may be charged, and how, is their policy's (``payments.methods``).
   A card that needs authentication fails with ``authentication_required`` (Stripe declines
   off-session confirmations that need 3-D Secure); the confirmation-email stream emails the
   client a pay link to finish on-session for any failed payment not made on the pay page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from firmpay.errors import (
    CurrencyNotAccepted,
    FirmPayError,
    IdempotencyKeyReused,
    MethodNotAllowed,
    MethodUnusable,
    MethodWithoutConsent,
    NotFound,
    ServiceUnavailable,
)
from firmpay.ledger import Ledger
from firmpay.ledger.errors import IdempotencyKeyTaken
from firmpay.models.api import AutopayOut, AutopayRequest, MoneyOut
from firmpay.models.ledger import (
    Firm,
    IdempotencyRecord,
    Payable,
    Payment,
    PaymentStatus,
    Review,
    StoredMethod,
)
from firmpay.observability import logger
from firmpay.payments.checkout import (
    STORE_METHOD_TEXT_VERSIONS,
    check_amount,
    confirm_opened,
    create_unconfirmed_intent,
    current_balance,
    open_payment,
    payment_id_for,
    review_of,
    sha256_hex,
)
from firmpay.payments.firm_admin import authorized_firm, is_resource_id
from firmpay.payments.methods import PaymentMethodPolicy, UnknownMethod, method
from firmpay.payments.ports import PaymentProcessor
from firmpay.payments.processor import ProcessorUnavailable

# Consent texts under which a client agreed that the firm may charge the stored method later.
STORE_CONSENT_VERSIONS = STORE_METHOD_TEXT_VERSIONS
AUTHENTICATION_REQUIRED = "authentication_required"
_AUTHENTICATION_MESSAGE = (
    "The card issuer asks the client to authenticate this payment; it cannot be charged off-session."
)
Origin = Literal["autopay", "plan"]


@dataclass(frozen=True)
class AutopayOutcome:
    payment: Payment
    balance_minor: int
    replayed: bool


def request_fingerprint(request: AutopayRequest) -> str:
    """What makes two requests under one key "the same request"."""
    return sha256_hex(request.model_dump_json())


def charge_stored_method(
    ledger: Ledger,
    processor: PaymentProcessor,
    request: AutopayRequest,
    now: datetime,
    caller_arn: str | None = None,
    origin: Origin = "autopay",
) -> AutopayOutcome:
    """Charge ``request.method_id`` for ``request.payable_id`` at most once per firm key.

    ``caller_arn`` is the IAM caller of the route (it must be a principal of the firm); a direct
    invoke is already authorized by IAM (``lambda:InvokeFunction``) and passes None.
    """
    firm = _firm(ledger, request.firm_id, caller_arn)
    fingerprint = request_fingerprint(request)
    replay = _replay(ledger, firm.firm_id, request.idempotency_key, fingerprint)
    if replay is not None:
        return _finish_confirm(ledger, processor, replay, request)
    payable = _payable(ledger, firm, request.payable_id)
    stored = chargeable_method(ledger, firm, payable, request.method_id, now)
    if request.currency is not None and request.currency != payable.currency:
        raise CurrencyNotAccepted(f"This payable is in {payable.currency}, not {request.currency}.")
    check_amount(payable, request.amount_minor)
    review = _create_intent(processor, firm, payable, stored, request, fingerprint, origin, now)
    idempotency = IdempotencyRecord(
        firm_id=firm.firm_id,
        idempotency_key=request.idempotency_key,
        fingerprint=fingerprint,
        payable_id=payable.payable_id,
        payment_id=payment_id_for(review.review_id),
        created_at=now,
    )
    try:
        payment, created = open_payment(ledger, review, payable, now, origin=origin, idempotency=idempotency)
    except IdempotencyKeyTaken:
        _cancel_quietly(processor, review)
        replay = _replay(ledger, firm.firm_id, request.idempotency_key, fingerprint)
        if replay is None:
            raise ServiceUnavailable() from None
        return replay
    except ServiceUnavailable:
        # Concurrent repeats of one request collide on the same rows; the winner's answer is ours.
        replay = _replay(ledger, firm.firm_id, request.idempotency_key, fingerprint)
        if replay is None:
            raise
        return replay
    except FirmPayError:
        _cancel_quietly(processor, review)  # the balance went elsewhere meanwhile: nothing charged
        raise
    payment = confirm_opened(ledger, processor, payment, created, off_session=True, mandate_id=stored.mandate_id)
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        payment = _fail_for_authentication(ledger, processor, payment)
    if created:
        logger.info(
            "stored method charged",
            extra={"payment_id": payment.payment_id, "origin": origin, "status": payment.status.value},
        )
    return AutopayOutcome(payment, current_balance(ledger, payment.payable_id), replayed=not created)


def chargeable_method(ledger: Ledger, firm: Firm, payable: Payable, method_id: str, now: datetime) -> StoredMethod:
    """The payable's client's stored method, if it may be charged off-session now.

    A method of another client or firm is "not found" here (the lookup is by this payable's firm
    and client); a revoked or returned one is ``method_unusable``; one stored without the client's
    consent to future charges is ``method_without_consent``.
    """
    stored = ledger.get_method(firm.firm_id, payable.client_id, method_id) if is_resource_id(method_id) else None
    if stored is None:
        raise NotFound("No such stored payment method for this payable's client.")
    if stored.status != "active":
        raise MethodUnusable(
            "This stored payment method was removed."
            if stored.status == "revoked"
            else "This stored payment method can no longer be charged (it was declined or returned by the bank)."
        )
    if stored.consent.text_version not in STORE_CONSENT_VERSIONS:
        raise MethodWithoutConsent()
    policy = policy_of(stored)
    unusable = policy.unusable_reason(stored.summary, now)
    if unusable:
        raise MethodUnusable(unusable)
    if not policy.offered_to(firm):
        raise MethodNotAllowed(policy.not_offered_reason)
    return stored


def policy_of(stored: StoredMethod) -> PaymentMethodPolicy:
    """The policy of a stored method; one whose method is no longer offered at all cannot be charged."""
    try:
        return method(stored.summary.type)
    except UnknownMethod:
        raise MethodUnusable("This kind of payment method is no longer offered.") from None


def autopay_result(outcome: AutopayOutcome) -> AutopayOut:
    payment = outcome.payment

    def money(amount_minor: int) -> MoneyOut:
        return MoneyOut(amount_minor=amount_minor, currency=payment.currency)

    return AutopayOut(
        payment_id=payment.payment_id,
        reference=payment.reference,
        payable_id=payment.payable_id,
        method=payment.method.label(),
        origin=payment.origin,
        amount=money(payment.amount_minor),
        status=payment.status,
        failure_code=payment.failure_code,
        balance=money(outcome.balance_minor),
        replayed=outcome.replayed,
        created_at=payment.created_at,
    )


# -- steps -----------------------------------------------------------------------------------------


def _firm(ledger: Ledger, firm_id: str, caller_arn: str | None) -> Firm:
    if caller_arn is not None:
        return authorized_firm(ledger, firm_id, caller_arn)
    firm = ledger.get_firm(firm_id) if is_resource_id(firm_id) else None
    if firm is None:
        raise NotFound("No such firm.")
    return firm


def _payable(ledger: Ledger, firm: Firm, payable_id: str) -> Payable:
    payable = ledger.get_payable(payable_id) if is_resource_id(payable_id) else None
    if payable is None or payable.firm_id != firm.firm_id:
        raise NotFound("No such bill or trust request at this firm.")
    return payable


def _replay(ledger: Ledger, firm_id: str, key: str, fingerprint: str) -> AutopayOutcome | None:
    """The first answer for a key seen before; a different request under it is refused."""
    record = ledger.get_idempotency(firm_id, key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    payment = ledger.get_payment(record.payable_id, record.payment_id)
    if payment is None:  # written in one transaction with the key: cannot happen
        raise ServiceUnavailable()
    return AutopayOutcome(payment, current_balance(ledger, payment.payable_id), replayed=True)


def _finish_confirm(
    ledger: Ledger, processor: PaymentProcessor, replay: AutopayOutcome, request: AutopayRequest
) -> AutopayOutcome:
    """A repeat whose first call reserved but never heard back from Stripe confirms it now, with
    the same Idempotency-Key (Stripe charges at most once); any other state is the answer."""
    payment = replay.payment
    if payment.status is not PaymentStatus.PENDING:
        return replay
    stored = ledger.get_method(payment.firm_id, payment.client_id, request.method_id)
    # Still in flight (or Stripe still silent): the payment is answered as it stands, and the
    # webhook or the sweep settles it.
    payment = confirm_opened(
        ledger, processor, payment, created=False, off_session=True, mandate_id=stored.mandate_id if stored else None
    )
    if payment is replay.payment:
        return replay
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        payment = _fail_for_authentication(ledger, processor, payment)
    return AutopayOutcome(payment, current_balance(ledger, payment.payable_id), replayed=True)


def _create_intent(
    processor: PaymentProcessor,
    firm: Firm,
    payable: Payable,
    stored: StoredMethod,
    request: AutopayRequest,
    fingerprint: str,
    origin: Origin,
    now: datetime,
) -> Review:
    """The unconfirmed intent (nothing charged yet), and the in-memory review checkout opens."""
    review_id = "rev_" + sha256_hex(f"{origin}#{firm.firm_id}#{request.idempotency_key}#{fingerprint}")[:24]
    intent = create_unconfirmed_intent(
        processor,
        firm,
        payable,
        review_id,
        request.amount_minor,
        policy_of(stored),
        stored.processor_method_id,
        stored.processor_customer_id,
        metadata={"origin": origin, "method_id": stored.method_id},
    )
    return review_of(
        review_id,
        firm,
        payable,
        request.amount_minor,
        stored.summary,
        intent,
        stored.processor_customer_id,
        stored.processor_method_id,
        now,
        now + timedelta(minutes=15),
    )


def _fail_for_authentication(ledger: Ledger, processor: PaymentProcessor, payment: Payment) -> Payment:
    """An off-session charge that asks for 3-D Secure: nobody is there to answer, so it fails.

    The ledger first (the payment ends failed with ``authentication_required``, the balance is
    released), then the intent is canceled so it can never be completed later.
    """
    failure = {"failure_code": AUTHENTICATION_REQUIRED, "failure_message": _AUTHENTICATION_MESSAGE}
    released = ledger.release(payment, PaymentStatus.FAILED, **failure)
    assert payment.processor_intent_id is not None
    try:
        processor.cancel_intent(payment.processor_intent_id, f"fp-cancel-{payment.payment_id}")
    except ProcessorUnavailable:
        logger.warning("could not cancel an intent that needs authentication", extra={"payment": payment.payment_id})
    if released:
        return payment.model_copy(update={**failure, "status": PaymentStatus.FAILED})
    current = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert current is not None
    return current


def _cancel_quietly(processor: PaymentProcessor, review: Review) -> None:
    """Cancel an intent that will never be confirmed (nothing was charged; tidier at Stripe)."""
    if review.processor_intent_id is None:
        return
    try:
        processor.cancel_intent(review.processor_intent_id, f"fp-cancel-{review.review_id}")
    except Exception:  # best effort: an unconfirmed intent charges nothing
        logger.info("unconfirmed autopay intent left at the processor", extra={"review_id": review.review_id})


def direct_invoke(
    ledger: Ledger, processor: PaymentProcessor, event: object, now: datetime
) -> dict[str, int | dict[str, object]]:
    """A ``lambda:InvokeFunction`` payload -> ``{"statusCode", "body"}``, shaped like the route's answer.

    Bad input is a 422 ``invalid_request`` naming the fields; domain refusals keep their codes.
    """
    from pydantic import ValidationError

    from firmpay.errors import InvalidRequest

    try:
        request = AutopayRequest.model_validate(event)
    except ValidationError as error:
        fields = [
            {"field": ".".join(str(part) for part in p["loc"]) or "payload", "problem": p["msg"]}
            for p in error.errors()
        ]
        return {"statusCode": 422, "body": InvalidRequest(fields=fields).body()}
    try:
        outcome = charge_stored_method(ledger, processor, request, now)
    except FirmPayError as error:
        return {"statusCode": error.status, "body": error.body()}
    return {"statusCode": 200, "body": autopay_result(outcome).model_dump(mode="json")}
