"""The card routes of the pay page, on the checkout pipeline: review, submit, complete after 3-D Secure.

The card's rules (fees, how declines read, expiry of a stored card) are its policy,
``payments.methods.card``; what is here is how the pay page collects a card and defends itself:

- ``create_card_review``: the card (a Stripe PaymentMethod made by Stripe.js: the number never
  reaches us) is summarised (brand, last 4, expiry), the amount checked, and checkout's review
  creates the unconfirmed PaymentIntent.
- ``submit_card``: checkout's ``submit`` with the card-testing counters as its guard: one
  BatchGetItem (review, payable, firm, attempt counters), the reserve-and-write-ahead transaction,
  the idempotent confirm at Stripe, and the settle or release transaction: four DynamoDB requests
  with the link lookup. Double clicks, reloads and second tabs land on the same payment row and
  the same Stripe Idempotency-Key.
- ``complete_card``: after the browser ran the 3-D Secure challenge, the server reads the intent
  from Stripe and applies it; the browser never decides the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from firmpay.errors import InvalidPaymentMethod, NotFound, ServiceUnavailable
from firmpay.ledger import DailyLimit, Ledger, LinkContext
from firmpay.models.card import CardResultResponse, CardResultStatus, CardReviewResponse
from firmpay.models.ledger import BillingDetails, MethodSummary, PayLink, Payment, PaymentStatus, Review
from firmpay.money import Locale
from firmpay.payments.card_testing import (
    DEFAULT_LIMITS,
    AttemptCounters,
    CardTestingLimits,
    attempt_counters,
    attempt_slots,
    check_attempt,
    give_back,
)
from firmpay.payments.checkout import (
    AttemptGuard,
    CheckoutOutcome,
    Submission,
    SubmitChoice,
    apply_intent,
    check_amount,
    create_review,
    current_balance,
    submit,
)
from firmpay.payments.methods import CARD
from firmpay.payments.ports import CaptchaVerifier, PaymentProcessor
from firmpay.payments.presenters import payment_result, review_response
from firmpay.payments.processor import ConfirmRequest, Intent, ProcessorUnavailable
from firmpay.payments.stored_methods import remember_method

_RESULT_STATUS: dict[PaymentStatus, CardResultStatus] = {
    PaymentStatus.SUCCEEDED: "succeeded",
    PaymentStatus.REQUIRES_ACTION: "requires_action",
    PaymentStatus.FAILED: "failed",
    PaymentStatus.CANCELED: "failed",
    PaymentStatus.PENDING: "pending",
    PaymentStatus.PROCESSING: "pending",
}

CardOutcome = CheckoutOutcome


def decline_code(payment: Payment) -> str | None:
    if payment.status is PaymentStatus.CANCELED:
        return "canceled"
    if payment.status is not PaymentStatus.FAILED:
        return None
    return CARD.decline_code(payment.failure_code)


@dataclass(frozen=True)
class CardTestingGuard(AttemptGuard):
    """The card-testing counters of one caller on one link, as checkout's submit guard: read with
    the review, reCAPTCHA asked past the limits, one slot of each taken in the reserve transaction.
    Whoever settles the payment (this submit, complete, the webhook, the sweep) gives them back in
    the settle transaction; a declined or abandoned attempt keeps them."""

    counters: AttemptCounters
    limits: CardTestingLimits
    verifier: CaptchaVerifier
    captcha_token: str | None
    ip_address: str

    @property
    def counter_keys(self) -> list[tuple[str, str]]:
        return self.counters.keys

    def slots(self, submission: Submission) -> list[DailyLimit]:
        verified = check_attempt(
            submission.counts,
            self.counters,
            self.limits,
            self.verifier,
            self.captcha_token,
            self.ip_address,
            submission.review.human_verified,
        )
        return attempt_slots(self.counters, self.limits, verified)


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
        type=CARD.key,
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

    Any number of submits of one review make one payment and at most one charge; a card that
    asks for 3-D Secure comes back with the client secret Stripe.js needs for the challenge.
    """
    guard = CardTestingGuard(
        attempt_counters(link.token_hash, ip_address, now, limits), limits, verifier, captcha_token, ip_address
    )
    choice = SubmitChoice(store_method=store_method, ip_address=ip_address, user_agent=user_agent)
    outcome = submit(ledger, processor, CARD, link, review_id, choice, now, guard)
    if outcome.payment.status is PaymentStatus.REQUIRES_ACTION:
        return CheckoutOutcome(
            outcome.payment, outcome.balance_minor, outcome.locale, _client_secret(processor, outcome.payment)
        )
    return outcome


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
    if payment is None or payment.method.type != CARD.key or payment.client_id != link.client_id:
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
    remember_method(ledger, payment, now)
    firm = ledger.get_firm(link.firm_id)
    locale: Locale = firm.locale if firm else "en-US"
    return CheckoutOutcome(payment, current_balance(ledger, payment.payable_id), locale, client_secret)


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
