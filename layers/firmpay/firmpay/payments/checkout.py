"""The checkout pipeline: review -> submit -> apply, one machinery for every payment method,
on the pay page (card, eCheck), in autopay and in payment plans.

The order of events is what keeps money exact:

1. ``create_review``: validate the amount against the balance and the method's rules (its
   policy in ``payments.methods``: who may use it, its limits, its mandate text), create the
   processor intent (not yet confirmed, so nothing is charged) and a short-lived review record.
2. submit: ``load_submission`` re-reads the review with the current balance; ``open_submission``
   (``open_payment``) **reserves** the amount and writes the PENDING payment row in one transaction (write-ahead);
   ``confirm_opened`` confirms at the processor with an Idempotency-Key derived from the payment
   id. Retries and concurrent submits of the same review map to the same payment id, hence the
   same key: Stripe charges at most once. ``submit`` is these steps for a pay-page method; a
   method that keeps something of its own at submit (``payments.echeck``), and autopay, compose
   the same steps.
3. ``apply_intent``: the processor's answer (read by the server, never taken from the browser)
   settles, releases or parks the payment with conditional updates, so the webhook, the sweep
   and the submit can all apply it, in any order, any number of times; ``stored_methods`` then
   keeps the client's stored methods in line with it.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from firmpay.errors import (
    AmountAboveMaximum,
    AmountBelowMinimum,
    AmountOverBalance,
    InvalidRequest,
    MandateRequired,
    PayableClosed,
    ReviewExpired,
    ServiceUnavailable,
)
from firmpay.i18n import LANGUAGES, N_, active_language, gettext
from firmpay.ledger import DailyLimit, Ledger, LinkContext
from firmpay.ledger.repository import CheckoutState
from firmpay.models.ledger import (
    BillingDetails,
    Client,
    Consent,
    Firm,
    IdempotencyRecord,
    Mandate,
    MethodSummary,
    Payable,
    PayLink,
    Payment,
    PaymentStatus,
    Review,
    new_id,
)
from firmpay.money import MAXIMUM_CHARGE_MINOR, MINIMUM_CHARGE_MINOR, Locale
from firmpay.payments.methods import PaymentMethodPolicy, method
from firmpay.payments.ports import PaymentProcessor
from firmpay.payments.processor import (
    ConfirmRequest,
    Intent,
    IntentRequest,
    ProcessorUnavailable,
)
from firmpay.payments.stored_methods import remember_method, stored_by_pipeline

Origin = Literal["pay_page", "autopay", "plan"]

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


def estimated_fee(method_type: str, amount_minor: int) -> int:
    """The processor fee we book against the operating account when Stripe has not reported it
    yet: the method's list price (``PaymentMethodPolicy.fees``)."""
    return method(method_type).fees.estimate(amount_minor)


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


def check_method(policy: PaymentMethodPolicy, firm: Firm, payable: Payable, amount_minor: int) -> None:
    """The method may pay this payable at this firm, and the amount is within the firm's limit for it."""
    policy.refuse_unless_offered(firm, payable)
    policy.check_limits(firm, amount_minor)


def create_review(
    ledger: Ledger,
    processor: PaymentProcessor,
    context: LinkContext,
    amount_minor: int,
    summary: MethodSummary,
    payment_method_id: str,
    now: datetime,
    ttl_seconds: int,
    billing: BillingDetails | None = None,
    extra: dict[str, Any] | None = None,
) -> Review:
    """Check the method and the amount, create the (unconfirmed) processor intent and store the
    review, with the exact mandate text the client will accept for a debit.

    ``extra`` carries review fields of the method's own (the eCheck's bank connection).
    """
    payable, firm = context.payable, context.firm
    policy = method(summary.type)
    check_method(policy, firm, payable, amount_minor)
    check_amount(payable, amount_minor)
    customer_id = ensure_customer(ledger, processor, context.client)
    review_id = new_id("rev")
    intent = create_unconfirmed_intent(
        processor, firm, payable, review_id, amount_minor, policy, payment_method_id, customer_id
    )
    mandate_text = None
    if policy.mandate is not None:
        amount = payable.money(amount_minor).format(firm.locale)
        mandate_text = policy.mandate.text(firm, payable, summary, amount, now)
    review = review_of(
        review_id,
        firm,
        payable,
        amount_minor,
        summary,
        intent,
        customer_id,
        payment_method_id,
        now,
        now + timedelta(seconds=ttl_seconds),
        billing=billing,
        mandate_text=mandate_text,
        daily_limit=policy.daily_payments(firm),
        **(extra or {}),
    )
    ledger.put_review(review)
    return review


def review_of(
    review_id: str,
    firm: Firm,
    payable: Payable,
    amount_minor: int,
    summary: MethodSummary,
    intent: Intent,
    customer_id: str | None,
    payment_method_id: str,
    now: datetime,
    expires_at: datetime,
    **fields: Any,
) -> Review:
    """The review of paying ``amount_minor`` of the payable by this method through ``intent``,
    into the firm's account for the payable's kind (trust requests into trust)."""
    destination = payable.destination
    return Review(
        review_id=review_id,
        payable_id=payable.payable_id,
        firm_id=firm.firm_id,
        client_id=payable.client_id,
        amount_minor=amount_minor,
        currency=payable.currency,
        method=summary,
        payable_version=payable.version,
        destination=destination,
        destination_account=firm.trust_account if destination == "trust" else firm.operating_account,
        processor_intent_id=intent.intent_id,
        processor_customer_id=customer_id,
        processor_method_id=payment_method_id,
        expires_at=expires_at,
        created_at=now,
        **fields,
    )


def create_unconfirmed_intent(
    processor: PaymentProcessor,
    firm: Firm,
    payable: Payable,
    review_id: str,
    amount_minor: int,
    policy: PaymentMethodPolicy,
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
                method_type=policy.processor_type,
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
                method_options=policy.mandate.options(firm, payable) if policy.mandate else {},
            )
        )
    except ProcessorUnavailable as error:
        raise ServiceUnavailable() from error


# -- submit ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitChoice:
    """What the client chose and who they are, as a pay-page submit tells it."""

    store_method: bool
    ip_address: str
    user_agent: str
    # The box of the method's mandate is checked (ignored for a method without a mandate).
    authorized: bool = False


@dataclass(frozen=True)
class Submission:
    """A review about to be submitted, with the payable and the firm as they are now."""

    policy: PaymentMethodPolicy
    review: Review
    payable: Payable
    firm: Firm
    counts: dict[tuple[str, str], int]


@dataclass(frozen=True)
class CheckoutOutcome:
    """A payment as the client sees it after a submit (or the completion of a 3-D Secure challenge)."""

    payment: Payment
    balance_minor: int
    locale: Locale
    client_secret: str | None = None


class AttemptGuard(ABC):
    """A pay-page defence read with the submit's state, whose slots the reserve transaction takes
    (the card-testing counters, ``payments.card.CardTestingGuard``)."""

    @property
    @abstractmethod
    def counter_keys(self) -> list[tuple[str, str]]:
        """The ``RATE#`` counters to read with the review."""

    @abstractmethod
    def slots(self, submission: Submission) -> Sequence[DailyLimit]:
        """The counter slots this attempt takes (raises the defence's error to refuse it)."""


def load_submission(
    ledger: Ledger,
    policy: PaymentMethodPolicy,
    link: PayLink,
    review_id: str,
    now: datetime,
    counter_keys: Sequence[tuple[str, str]] = (),
) -> Submission:
    """The link's review of this method, its payable and firm (and counters) in one BatchGetItem;
    an expired or unknown review is refused, one of another method or client is not a review here."""
    state: CheckoutState = ledger.get_checkout_state(link.payable_id, review_id, link.firm_id, list(counter_keys))
    review, payable, firm = state.review, state.payable, state.firm
    if review is None or payable is None or firm is None or review.expires_at <= now:
        raise ReviewExpired()
    if review.method.type != policy.key or review.client_id != link.client_id:
        raise InvalidRequest("This review is not one of this payment method and this link.")
    return Submission(policy, review, payable, firm, state.counts)


def _store_consent(firm: Firm, choice: SubmitChoice, now: datetime) -> Consent | None:
    """The client's consent to storing the method, as the text they were shown (None: not asked)."""
    if not choice.store_method:
        return None
    return consent(*store_method_consent(firm.name), now, choice.ip_address, choice.user_agent)


def _mandate(
    submission: Submission, choice: SubmitChoice, now: datetime, validation: str | None = None
) -> Mandate | None:
    """The debit mandate the client accepted with this submit (None for a method without one)."""
    review, terms = submission.review, submission.policy.mandate
    if terms is None:
        return None
    if not choice.authorized:
        raise MandateRequired()
    if not review.mandate_text:
        raise InvalidRequest("This review carries no authorization to accept.")
    last4 = review.method.last4 or "0000"
    return terms.record(
        review.mandate_text,
        review.amount_minor,
        review.currency,
        last4,
        now,
        choice.ip_address,
        choice.user_agent,
        validation,
    )


def _daily_limit(submission: Submission, now: datetime) -> DailyLimit | None:
    """The method's per-client daily counter, taken in the reserve transaction (None: no limit)."""
    policy, review = submission.policy, submission.review
    limit = review.daily_limit or policy.daily_payments(submission.firm)
    if limit is None:
        return None
    return DailyLimit(
        scope=f"{policy.key}#{review.firm_id}#{review.client_id}",
        window=now.date().isoformat(),
        limit=limit,
        expires_at=int((now + timedelta(days=2)).timestamp()),
        error=policy.daily_limit_error(),
    )


def open_submission(
    ledger: Ledger,
    submission: Submission,
    choice: SubmitChoice,
    now: datetime,
    attempt_slots: Sequence[DailyLimit] = (),
    account_validation: str | None = None,
) -> tuple[Payment, bool]:
    """``open_payment`` for a pay-page submit: with the client's consent to storing the method,
    the mandate they accepted (``account_validation``: how the account was checked, when the
    method knows) and the method's daily counter, in the reserve transaction."""
    return open_payment(
        ledger,
        submission.review,
        submission.payable,
        now,
        store_consent=_store_consent(submission.firm, choice, now),
        mandate=_mandate(submission, choice, now, account_validation),
        daily_limit=_daily_limit(submission, now),
        attempt_slots=attempt_slots,
    )


def submit(
    ledger: Ledger,
    processor: PaymentProcessor,
    policy: PaymentMethodPolicy,
    link: PayLink,
    review_id: str,
    choice: SubmitChoice,
    now: datetime,
    guard: AttemptGuard | None = None,
) -> CheckoutOutcome:
    """Reserve, confirm at the processor (idempotently) and apply the outcome of a pay-page review.

    Any number of submits of one review make one payment and at most one charge. Four DynamoDB
    requests with the link lookup: the checkout state, the reserve, the settle or release.
    """
    if policy.mandate is not None and not choice.authorized:
        raise MandateRequired()
    submission = load_submission(ledger, policy, link, review_id, now, guard.counter_keys if guard else ())
    # The guard's slots are taken in the reserve transaction itself: the counters read above only
    # decide whether to ask for reCAPTCHA; the transaction is what stops the 4th parallel submit.
    payment, created = open_submission(ledger, submission, choice, now, guard.slots(submission) if guard else ())
    payment = confirm_opened(ledger, processor, payment, created, choice.ip_address, choice.user_agent)
    remember_method(ledger, payment, now)
    balance = balance_after(ledger, submission.payable, payment, created)
    return CheckoutOutcome(payment, balance, submission.firm.locale)


def open_payment(
    ledger: Ledger,
    review: Review,
    payable: Payable,
    now: datetime,
    origin: Origin = "pay_page",
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
        stored_method_id=new_id("mth") if store_consent is not None and stored_by_pipeline(review.method) else None,
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
                setup_future_usage=method(payment.method.type).storage.setup_future_usage
                if payment.store_method
                else None,
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


def confirm_opened(
    ledger: Ledger,
    processor: PaymentProcessor,
    payment: Payment,
    created: bool,
    ip_address: str | None = None,
    user_agent: str | None = None,
    off_session: bool = False,
    mandate_id: str | None = None,
) -> Payment:
    """Confirm the payment ``open_payment`` answered with, if nobody has yet.

    A submit that finds the payment made by an earlier one (``created`` False) and cannot confirm
    it is not an error: the first submit of the review is confirming right now (Stripe answers the
    same Idempotency-Key with "in use"); the payment is reported as it stands and moves on shortly.
    """
    if payment.status is not PaymentStatus.PENDING:
        return payment
    try:
        return confirm_payment(
            ledger, processor, payment, ip_address, user_agent, off_session=off_session, mandate_id=mandate_id
        )
    except ServiceUnavailable:
        if created:
            raise
        return payment


def current_balance(ledger: Ledger, payable_id: str) -> int:
    payable = ledger.get_payable(payable_id)
    return payable.balance_minor if payable else 0


def balance_after(ledger: Ledger, payable: Payable, payment: Payment, created: bool) -> int:
    """The balance a submit reports. For the payment it made: the payable as read before the
    reserve, less this payment unless it was released (no extra read on the hot path; a concurrent
    payment may have lowered it meanwhile). Otherwise the payable as it is now."""
    if not created:
        return current_balance(ledger, payment.payable_id)
    taken = 0 if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED) else payment.amount_minor
    return payable.balance_minor - taken


def apply_intent(ledger: Ledger, payment: Payment, intent: Intent) -> Payment:
    """Bring the ledger in line with the processor's intent. Idempotent and order-independent.

    Only a reserved payment moves; a final one (succeeded, failed, canceled) never changes here.
    """
    if intent.amount_minor != payment.amount_minor or intent.currency != payment.currency:
        raise ValueError(f"intent {intent.intent_id} does not match payment {payment.payment_id}")
    changed: Payment | None = None
    policy = method(payment.method.type)
    if intent.status == "succeeded":
        fee = intent.fee_minor if intent.fee_minor is not None else policy.fees.estimate(payment.amount_minor)
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
        if policy.returns is not None:
            failure["return_code"] = policy.returns.read(intent.network_decline_code)
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


def consent(text: str, version: str, now: datetime, ip_address: str, user_agent: str) -> Consent:
    return Consent(
        text_version=version,
        text_sha256=sha256_hex(text),
        accepted_at=now,
        ip_address=ip_address,
        user_agent=user_agent[:512],
    )
