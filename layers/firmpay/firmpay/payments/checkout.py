"""Review, submit and complete a payment: one machinery for cards, eCheck and autopay.

The order of events is what keeps money exact:

1. ``review``: validate the amount against the balance, create the processor intent (not yet
   confirmed, so nothing is charged) and a short-lived review record.
2. ``submit``: re-check the review against the current balance, **reserve** the amount and
   write the PENDING payment row in one transaction (write-ahead), then confirm at the processor
   with an Idempotency-Key derived from the payment id. Retries and concurrent submits of the
   same review map to the same payment id, hence the same key: Stripe charges at most once.
3. ``apply_intent``: the processor's answer (read by the server, never taken from the browser)
   settles, releases or parks the payment with conditional updates, so the webhook, the sweep
   and the submit can all apply it, in any order, any number of times.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from firmpay.errors import (
    AmountAboveMaximum,
    AmountBelowMinimum,
    AmountOverBalance,
    PayableClosed,
    ReviewExpired,
    ServiceUnavailable,
)
from firmpay.i18n import LANGUAGES, N_, active_language, gettext
from firmpay.ledger import DailyLimit, Ledger, LinkContext
from firmpay.models.ledger import (
    BillingDetails,
    Client,
    Consent,
    Firm,
    IdempotencyRecord,
    Mandate,
    MethodSummary,
    MethodType,
    Payable,
    Payment,
    PaymentStatus,
    Review,
    StoredMethod,
    new_id,
)
from firmpay.money import MAXIMUM_CHARGE_MINOR, MINIMUM_CHARGE_MINOR
from firmpay.payments.ports import PaymentProcessor
from firmpay.payments.processor import (
    ConfirmRequest,
    Intent,
    IntentRequest,
    ProcessorUnavailable,
)

STORE_METHOD_TEXT_VERSION = "store-method-v1"
STORE_METHOD_TEXT = N_(
    "Securely store this payment method for future use. I authorize {firm} to charge this payment "
    "method for my future bills and payment-plan installments, as agreed with the firm. I can ask "
    "the firm to remove it at any time."
)
# The consent's versions: the en-US text, and its translations (the language after a dot).
STORE_METHOD_TEXT_VERSIONS = frozenset(
    {STORE_METHOD_TEXT_VERSION, *(f"{STORE_METHOD_TEXT_VERSION}.{language}" for language in LANGUAGES)}
)


def store_method_consent(firm_name: str) -> tuple[str, str]:
    """The store-for-later consent as the client reads it (in the page's language, firmpay.i18n)
    and its version: the record's hash is of the very text the client ticked."""
    text = gettext(STORE_METHOD_TEXT).format(firm=firm_name)
    if text == STORE_METHOD_TEXT.format(firm=firm_name):
        return text, STORE_METHOD_TEXT_VERSION
    return text, f"{STORE_METHOD_TEXT_VERSION}.{active_language()}"


_REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def payment_reference(payment_id: str) -> str:
    """A short reference a person can read out on the phone: ``FP-7K3M-Q9XD``."""
    number = int.from_bytes(hashlib.sha256(payment_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(8):
        number, index = divmod(number, len(_REFERENCE_ALPHABET))
        chars.append(_REFERENCE_ALPHABET[index])
    return f"FP-{''.join(chars[:4])}-{''.join(chars[4:])}"


def payment_id_for(review_id: str) -> str:
    """Deterministic: every submit of one review is the same payment (and the same charge)."""
    return "pay_" + hashlib.sha256(review_id.encode()).hexdigest()[:24]


def estimated_fee(method: MethodType, amount_minor: int) -> int:
    """The processor fee we book against the operating account when Stripe has not reported it yet.

    Standard US/CA list pricing: cards 2.9% + 0.30, ACH debit 0.8% capped at 5.00.
    """
    if method == "card":
        return (amount_minor * 29 + 500) // 1000 + 30
    return min((amount_minor * 8 + 500) // 1000, 500)


def check_amount(payable: Payable, amount_minor: int) -> None:
    """A payment must be at least the processor's minimum, at most the balance due and at most
    the processor's maximum for one charge."""
    if not payable.open_for_payment:
        if payable.voided_at is not None:
            raise PayableClosed("This bill was cancelled by the firm and can no longer be paid.")
        if payable.pending_minor:
            raise PayableClosed("A payment for the rest of the balance is already in progress.")
        raise PayableClosed("This bill has been paid in full.")
    if amount_minor > payable.balance_minor:
        raise AmountOverBalance(balance_minor=payable.balance_minor)
    if payable.balance_minor < MINIMUM_CHARGE_MINOR:
        # Stripe refuses any charge under its minimum, even one for the exact balance.
        raise AmountBelowMinimum(
            "The balance left ({balance}) is less than the smallest payment that can be made online. "
            "Please contact the firm to settle it.",
            params={"balance": payable.money(payable.balance_minor)},
            minimum_minor=MINIMUM_CHARGE_MINOR,
        )
    if amount_minor < MINIMUM_CHARGE_MINOR:
        raise AmountBelowMinimum(minimum_minor=MINIMUM_CHARGE_MINOR)
    if amount_minor > MAXIMUM_CHARGE_MINOR:
        # One charge cannot be larger at Stripe: the client pays a large balance in parts.
        raise AmountAboveMaximum(maximum_minor=MAXIMUM_CHARGE_MINOR)


def ensure_customer(ledger: Ledger, processor: PaymentProcessor, client: Client) -> str:
    """The client's processor customer (one per client and firm), created and recorded once."""
    if client.processor_customer_id:
        return client.processor_customer_id
    customer_id = processor.ensure_customer(client.firm_id, client.client_id, client.name, client.email, None)
    return ledger.set_client_customer(client, customer_id)


def create_review(
    ledger: Ledger,
    processor: PaymentProcessor,
    context: LinkContext,
    amount_minor: int,
    method: MethodSummary,
    payment_method_id: str,
    now: datetime,
    ttl_seconds: int,
    billing: BillingDetails | None = None,
    extra: dict[str, Any] | None = None,
) -> Review:
    """Check the amount, create the (unconfirmed) processor intent and store the review.

    ``extra`` carries method-specific review fields (the eCheck mandate text and bank connection).
    """
    payable, firm = context.payable, context.firm
    check_amount(payable, amount_minor)
    customer_id = ensure_customer(ledger, processor, context.client)
    review_id = new_id("rev")
    destination = payable.destination
    intent = create_unconfirmed_intent(
        processor, firm, payable, review_id, amount_minor, method.type, payment_method_id, customer_id
    )
    review = Review(
        review_id=review_id,
        payable_id=payable.payable_id,
        firm_id=firm.firm_id,
        client_id=context.client.client_id,
        amount_minor=amount_minor,
        currency=payable.currency,
        method=method,
        payable_version=payable.version,
        destination=destination,
        destination_account=firm.trust_account if destination == "trust" else firm.operating_account,
        processor_intent_id=intent.intent_id,
        processor_customer_id=customer_id,
        processor_method_id=payment_method_id,
        billing=billing,
        expires_at=now + timedelta(seconds=ttl_seconds),
        created_at=now,
        **(extra or {}),
    )
    ledger.put_review(review)
    return review


def create_unconfirmed_intent(
    processor: PaymentProcessor,
    firm: Firm,
    payable: Payable,
    review_id: str,
    amount_minor: int,
    method_type: MethodType,
    payment_method_id: str,
    customer_id: str | None,
    metadata: dict[str, str] | None = None,
) -> Intent:
    """The processor intent of a review (nothing charged until it is confirmed), created once per
    review id (idempotently); its metadata name the payment the webhook and the sweep will apply."""
    kind = "Trust deposit" if payable.kind == "trust_request" else "Bill"
    try:
        return processor.create_intent(
            IntentRequest(
                amount_minor=amount_minor,
                currency=payable.currency,
                payment_method_id=payment_method_id,
                method_type="card" if method_type == "card" else "us_bank_account",
                idempotency_key=f"fp-review-{review_id}",
                customer_id=customer_id,
                description=f"{firm.name} - {kind} {payable.number}",
                metadata={
                    "firm_id": firm.firm_id,
                    "payable_id": payable.payable_id,
                    "review_id": review_id,
                    "payment_id": payment_id_for(review_id),
                    "destination": payable.destination,
                    **(metadata or {}),
                },
            )
        )
    except ProcessorUnavailable as error:
        raise ServiceUnavailable() from error


def load_review(ledger: Ledger, payable_id: str, review_id: str, now: datetime) -> tuple[Review, Payable]:
    """The review and the payable's current state; expired or unknown reviews are refused."""
    review, payable = ledger.get_review_and_payable(payable_id, review_id)
    if review is None or payable is None or review.expires_at <= now:
        raise ReviewExpired()
    return review, payable


def open_payment(
    ledger: Ledger,
    review: Review,
    payable: Payable,
    now: datetime,
    origin: Literal["pay_page", "autopay", "plan"] = "pay_page",
    store_consent: Consent | None = None,
    mandate: Mandate | None = None,
    daily_limit: DailyLimit | None = None,
    idempotency: IdempotencyRecord | None = None,
    attempt_slots: Sequence[DailyLimit] = (),
) -> tuple[Payment, bool]:
    """Reserve the review's amount and write the PENDING payment (one transaction).

    Returns ``(payment, created)``; ``created`` is False when this review was already submitted
    (double click, reload, second tab): the caller then continues with the existing payment.
    ``idempotency`` (autopay) takes the firm's key in the same transaction, ``attempt_slots``
    (card-testing counters) one slot of each.
    """
    payment_id = payment_id_for(review.review_id)
    payment = Payment(
        payment_id=payment_id,
        payable_id=review.payable_id,
        firm_id=review.firm_id,
        client_id=review.client_id,
        reference=payment_reference(payment_id),
        amount_minor=review.amount_minor,
        currency=review.currency,
        method=review.method,
        origin=origin,
        idempotency_key=f"fp-confirm-{payment_id}",
        destination=review.destination,
        destination_account=review.destination_account,
        processor_intent_id=review.processor_intent_id,
        processor_customer_id=review.processor_customer_id,
        processor_method_id=review.processor_method_id,
        billing=review.billing,
        store_method=store_consent is not None,
        store_consent=store_consent,
        # A card's METHOD id is drawn now and written ahead with the payment, so the submit, the
        # webhook and the sweep store one method between them. It is random: nothing the pay page
        # shows (payment id, reference, intent) lets anyone compute it.
        stored_method_id=new_id("mth") if store_consent is not None and review.method.type == "card" else None,
        attempt_slots=[(slot.scope, slot.window) for slot in attempt_slots],
        mandate=mandate,
        created_at=now,
        updated_at=now,
    )
    try:
        check_amount(payable, review.amount_minor)
        created = ledger.reserve(payment, daily_limit, idempotency, attempt_slots)
    except (PayableClosed, AmountOverBalance) as error:
        if existing := ledger.get_payment(review.payable_id, payment_id):
            return existing, False  # this review was submitted before and took the balance
        if isinstance(error, AmountOverBalance) and origin == "pay_page":
            # Another payment took the balance since the review: the client must review again.
            raise ReviewExpired("The balance changed since your review; please review the payment again.") from None
        raise
    if not created:
        existing = ledger.get_payment(review.payable_id, payment_id)
        assert existing is not None
        return existing, False
    return payment, True


def confirm_payment(
    ledger: Ledger,
    processor: PaymentProcessor,
    payment: Payment,
    ip_address: str | None = None,
    user_agent: str | None = None,
    off_session: bool = False,
    mandate_id: str | None = None,
    return_url: str | None = None,
) -> Payment:
    """Confirm the reserved payment at the processor (idempotently) and apply the answer.

    If the processor does not answer, the payment stays PENDING (still reserved): the client may
    retry (same Idempotency-Key), and the webhook or the sweep settles or releases it.
    """
    assert payment.processor_intent_id is not None
    try:
        intent = processor.confirm_intent(
            ConfirmRequest(
                intent_id=payment.processor_intent_id,
                idempotency_key=payment.idempotency_key,
                setup_future_usage="off_session" if payment.store_method else None,
                customer_id=payment.processor_customer_id,
                off_session=off_session,
                mandate_ip=ip_address if payment.mandate is not None else None,
                mandate_user_agent=user_agent if payment.mandate is not None else None,
                mandate_id=mandate_id,
                return_url=return_url,
            )
        )
    except ProcessorUnavailable as error:
        raise ServiceUnavailable() from error
    return apply_intent(ledger, payment, intent)


def apply_intent(ledger: Ledger, payment: Payment, intent: Intent) -> Payment:
    """Bring the ledger in line with the processor's intent. Idempotent and order-independent.

    Only a reserved payment moves; a final one (succeeded, failed, canceled) never changes here.
    """
    if intent.amount_minor != payment.amount_minor or intent.currency != payment.currency:
        raise ValueError(f"intent {intent.intent_id} does not match payment {payment.payment_id}")
    changed: Payment | None = None
    if intent.status == "succeeded":
        fee = (
            intent.fee_minor
            if intent.fee_minor is not None
            else estimated_fee(payment.method.type, payment.amount_minor)
        )
        changes = {"fee_minor": fee, "fee_account": "operating", "processor_intent_id": intent.intent_id}
        if ledger.settle(payment, **changes):
            changed = payment.model_copy(update={**changes, "status": PaymentStatus.SUCCEEDED})
    elif intent.status == "processing" and payment.status != PaymentStatus.PROCESSING:
        changed = ledger.update_reserved_payment(
            payment, status=PaymentStatus.PROCESSING, processor_mandate_id=intent.mandate_id
        )
    elif intent.status == "requires_action" and payment.status == PaymentStatus.PENDING:
        changed = ledger.update_reserved_payment(payment, status=PaymentStatus.REQUIRES_ACTION)
    elif intent.status == "requires_payment_method" and intent.failure_code:
        failure = {"failure_code": intent.failure_code, "failure_message": intent.failure_message}
        if payment.method.type == "echeck":
            failure["return_code"] = ach_return_code(intent.network_decline_code)
        if ledger.release(payment, PaymentStatus.FAILED, **failure):
            changed = payment.model_copy(update={**failure, "status": PaymentStatus.FAILED})
    elif intent.status == "canceled":
        if ledger.release(payment, PaymentStatus.CANCELED):
            changed = payment.model_copy(update={"status": PaymentStatus.CANCELED})
    else:
        return payment
    if changed is not None:
        return changed
    # Someone else (webhook, sweep, a concurrent submit) applied an outcome first: read it.
    current = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert current is not None
    return current


def ach_return_code(network_decline_code: str | None) -> str | None:
    """The NACHA return code (``R01``...) of a returned debit, as Stripe's network decline code gives it."""
    if network_decline_code and re.fullmatch(r"R\d\d", network_decline_code):
        return network_decline_code
    return None


def stored_method_from(payment: Payment, intent_method_id: str, now: datetime) -> StoredMethod | None:
    """The METHOD record for a succeeded payment whose client consented to storing it."""
    if not payment.store_method or payment.store_consent is None or payment.processor_customer_id is None:
        return None
    if payment.stored_method_id is None:  # written before card method ids were drawn at submit
        return None
    return StoredMethod(
        method_id=payment.stored_method_id,
        firm_id=payment.firm_id,
        client_id=payment.client_id,
        summary=payment.method,
        processor_customer_id=payment.processor_customer_id,
        processor_method_id=intent_method_id,
        consent=payment.store_consent,
        mandate_id=None,
        created_from_payment_id=payment.payment_id,
        created_at=now,
    )


def consent(text: str, version: str, now: datetime, ip_address: str, user_agent: str) -> Consent:
    return Consent(
        text_version=version,
        text_sha256=sha256_hex(text),
        accepted_at=now,
        ip_address=ip_address,
        user_agent=user_agent[:512],
    )
