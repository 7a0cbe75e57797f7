"""Card payments from a pay link, on top of ``checkout``: review, submit, complete after 3-D Secure.

- ``create_card_review``: the card (a Stripe PaymentMethod made by Stripe.js: the number never
  reaches us) is summarised (brand, last 4, expiry), the amount checked, and checkout's review
  creates the unconfirmed PaymentIntent.
- ``submit_card``: one BatchGetItem (review, payable, firm, attempt counters), checkout's
  reserve-and-write-ahead transaction, the idempotent confirm at Stripe, and the settle or release
  transaction: four DynamoDB requests with the link lookup. Double clicks, reloads and second tabs
  land on the same payment row and the same Stripe Idempotency-Key.
- ``complete_card``: after the browser ran the 3-D Secure challenge, the server reads the intent
  from Stripe and applies it; the browser never decides the outcome.
- ``remember_card``: the METHOD record, only for a succeeded payment whose client checked the box;
  deterministic, so the submit, the webhook and the sweep can all call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from firmpay.errors import (
    Conflict,
    InvalidPaymentMethod,
    InvalidRequest,
    NotFound,
    ReviewExpired,
    ServiceUnavailable,
)
from firmpay.ledger import Ledger, LinkContext
from firmpay.models.card import CardResultResponse, CardResultStatus, CardReviewResponse
from firmpay.models.ledger import BillingDetails, MethodSummary, PayLink, Payment, PaymentStatus, Review
from firmpay.money import Locale
from firmpay.observability import logger
from firmpay.payments.card_testing import (
    DEFAULT_LIMITS,
    CardTestingLimits,
    attempt_counters,
    attempt_slots,
    check_attempt,
    give_back,
)
from firmpay.payments.checkout import (
    apply_intent,
    check_amount,
    confirm_payment,
    consent,
    create_review,
    open_payment,
    store_method_consent,
    stored_method_from,
)
from firmpay.payments.ports import CaptchaVerifier, PaymentProcessor
from firmpay.payments.presenters import payment_result, review_response
from firmpay.payments.processor import ConfirmRequest, Intent, ProcessorUnavailable

# Stripe's decline and error codes -> the stable codes of our API (anything else: card_declined).
DECLINE_CODES = {
    "insufficient_funds": "insufficient_funds",
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
    "invalid_cvc": "incorrect_cvc",
    "processing_error": "processing_error",
    "payment_intent_authentication_failure": "authentication_failed",
    "authentication_required": "authentication_failed",
}

_RESULT_STATUS: dict[PaymentStatus, CardResultStatus] = {
    PaymentStatus.SUCCEEDED: "succeeded",
    PaymentStatus.REQUIRES_ACTION: "requires_action",
    PaymentStatus.FAILED: "failed",
    PaymentStatus.CANCELED: "failed",
    PaymentStatus.PENDING: "pending",
    PaymentStatus.PROCESSING: "pending",
}


@dataclass(frozen=True)
class CardOutcome:
    """A card payment as the client sees it after submit or complete."""

    payment: Payment
    balance_minor: int
    locale: Locale
    client_secret: str | None = None


def decline_code(payment: Payment) -> str | None:
    if payment.status is PaymentStatus.CANCELED:
        return "canceled"
    if payment.status is not PaymentStatus.FAILED:
        return None
    return DECLINE_CODES.get(payment.failure_code or "", "card_declined")


# -- use cases -------------------------------------------------------------------------------------


def create_card_review(
    ledger: Ledger,
    processor: PaymentProcessor,
    verifier: CaptchaVerifier,
    context: LinkContext,
    amount_minor: int,
    payment_method_id: str,
    billing: BillingDetails,
    captcha_token: str | None,
    ip_address: str,
    now: datetime,
    ttl_seconds: int,
    limits: CardTestingLimits = DEFAULT_LIMITS,
) -> Review:
    """Check the amount and the card, then create the review and its (unconfirmed) PaymentIntent."""
    check_amount(context.payable, amount_minor)
    counters = attempt_counters(context.link.token_hash, ip_address, now, limits)
    verified = check_attempt(ledger.read_counters(counters.keys), counters, limits, verifier, captcha_token, ip_address)
    # The attempt's slot is taken before Stripe hears of the card; a refused card keeps it.
    slots = attempt_slots(counters, limits, verified)
    ledger.take_counter_slots(slots)
    try:
        card = processor.card_details(payment_method_id)
    except ValueError as error:
        raise InvalidPaymentMethod() from error
    except ProcessorUnavailable as error:
        give_back(ledger, slots)
        raise ServiceUnavailable() from error
    if card.customer_id and card.customer_id != context.client.processor_customer_id:
        # Someone else's saved card: Stripe would refuse it, and we never reveal whose it is.
        raise InvalidPaymentMethod()
    method = MethodSummary(
        type="card",
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        holder_name=billing.name,
    )
    try:
        review = create_review(
            ledger,
            processor,
            context,
            amount_minor,
            method,
            payment_method_id,
            now,
            ttl_seconds,
            billing=billing,
            extra={"human_verified": True} if verified else None,
        )
    except InvalidPaymentMethod:
        raise  # the card was refused: a failed attempt keeps its slot
    except Exception:
        give_back(ledger, slots)
        raise
    give_back(ledger, slots)
    return review


def submit_card(
    ledger: Ledger,
    processor: PaymentProcessor,
    verifier: CaptchaVerifier,
    link: PayLink,
    review_id: str,
    store_method: bool,
    captcha_token: str | None,
    ip_address: str,
    user_agent: str,
    now: datetime,
    limits: CardTestingLimits = DEFAULT_LIMITS,
) -> CardOutcome:
    """Reserve, confirm at Stripe (idempotently) and settle or release the review's payment.

    Any number of submits of one review make one payment and at most one charge.
    """
    counters = attempt_counters(link.token_hash, ip_address, now, limits)
    state = ledger.get_checkout_state(link.payable_id, review_id, link.firm_id, counters.keys)
    review, payable, firm = state.review, state.payable, state.firm
    if review is None or payable is None or firm is None or review.expires_at <= now:
        raise ReviewExpired()
    if review.method.type != "card" or review.client_id != link.client_id:
        raise InvalidRequest("This review is not a card review of this link.")
    verified = check_attempt(state.counts, counters, limits, verifier, captcha_token, ip_address, review.human_verified)
    store_consent = consent(*store_method_consent(firm.name), now, ip_address, user_agent) if store_method else None
    # The attempt slots are taken in the reserve transaction itself: the counters read above only
    # decide whether to ask for reCAPTCHA; the transaction is what stops the 4th parallel submit.
    # Whoever settles the payment (this submit, complete, the webhook, the sweep) gives them back
    # in the settle transaction; a declined or abandoned attempt keeps them.
    slots = attempt_slots(counters, limits, verified)
    payment, created = open_payment(ledger, review, payable, now, store_consent=store_consent, attempt_slots=slots)
    if payment.status is PaymentStatus.PENDING:
        try:
            payment = confirm_payment(ledger, processor, payment)
        except ServiceUnavailable:
            if created:
                raise
            # The first submit of this review is confirming right now (Stripe answers the same
            # Idempotency-Key with "in use"): report the payment as pending; it settles shortly.
    client_secret = None
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        client_secret = _client_secret(processor, payment)
    remember_card(ledger, payment, now)
    if created:
        # The payable as read before the reserve, less this payment unless it was released: no
        # extra read on the hot path (a concurrent payment may have lowered it meanwhile).
        taken = 0 if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED) else payment.amount_minor
        balance = payable.balance_minor - taken
    else:
        balance = _current_balance(ledger, payment)
    return CardOutcome(payment, balance, firm.locale, client_secret)


def complete_card(
    ledger: Ledger,
    processor: PaymentProcessor,
    link: PayLink,
    payment_id: str,
    now: datetime,
) -> CardOutcome:
    """After the 3-D Secure challenge: read the intent from Stripe and apply it (the attempt's
    card-testing slots, taken at submit, go back in the settle transaction if it succeeded)."""
    payment = ledger.get_payment(link.payable_id, payment_id)
    if payment is None or payment.method.type != "card" or payment.client_id != link.client_id:
        raise NotFound("No such payment.")
    client_secret = None
    if payment.reserved:
        assert payment.processor_intent_id is not None
        try:
            intent = processor.retrieve_intent(payment.processor_intent_id)
            if intent.status == "requires_confirmation" and payment.status is PaymentStatus.REQUIRES_ACTION:
                intent = _confirm_after_action(processor, payment)
        except ProcessorUnavailable as error:
            raise ServiceUnavailable() from error
        payment = apply_intent(ledger, payment, intent)
        if payment.status is PaymentStatus.REQUIRES_ACTION:
            client_secret = intent.client_secret
    remember_card(ledger, payment, now)
    firm = ledger.get_firm(link.firm_id)
    locale: Locale = firm.locale if firm else "en-US"
    return CardOutcome(payment, _current_balance(ledger, payment), locale, client_secret)


def remember_card(ledger: Ledger, payment: Payment, now: datetime) -> None:
    """Store the card of a succeeded payment whose client consented; a no-op otherwise or when stored."""
    if payment.method.type != "card" or payment.status is not PaymentStatus.SUCCEEDED:
        return
    if payment.processor_method_id is None:
        return
    method = stored_method_from(payment, payment.processor_method_id, now)
    if method is None:
        return
    try:
        ledger.put_method(method)
    except Conflict:
        return  # stored already (by the submit, the webhook or the sweep)
    logger.info("card stored for future use", extra={"method_id": method.method_id})


def _confirm_after_action(processor: PaymentProcessor, payment: Payment) -> Intent:
    """Manual-confirmation intents wait in requires_confirmation after 3-D Secure: confirm them again."""
    assert payment.processor_intent_id is not None
    return processor.confirm_intent(
        ConfirmRequest(
            intent_id=payment.processor_intent_id, idempotency_key=f"{payment.idempotency_key}-authenticated"
        )
    )


def _client_secret(processor: PaymentProcessor, payment: Payment) -> str | None:
    """The intent's client secret, which Stripe.js needs to run the 3-D Secure challenge."""
    assert payment.processor_intent_id is not None
    try:
        return processor.retrieve_intent(payment.processor_intent_id).client_secret
    except ProcessorUnavailable as error:
        raise ServiceUnavailable() from error


def _current_balance(ledger: Ledger, payment: Payment) -> int:
    payable = ledger.get_payable(payment.payable_id)
    return payable.balance_minor if payable else 0


# -- what the page shows ---------------------------------------------------------------------------


def card_review_response(review: Review, context: LinkContext) -> CardReviewResponse:
    payable, firm = context.payable, context.firm
    base = review_response(review, payable.kind, payable.number, firm.name, firm.locale)
    return CardReviewResponse(
        **base.model_dump(),
        currency=review.currency,
        card_brand=(review.method.brand or "card").title(),
        card_last4=review.method.last4 or "",
        billing_name=review.billing.name if review.billing else "",
    )


def card_result(outcome: CardOutcome) -> CardResultResponse:
    payment = outcome.payment
    base = payment_result(payment, outcome.balance_minor, outcome.locale, outcome.client_secret)
    return CardResultResponse(
        **(base.model_dump() | {"status": _RESULT_STATUS[payment.status], "decline_code": decline_code(payment)})
    )
