"""Card use cases (review, submit, 3-D Secure completion, storing) on a DynamoDB Local ledger and a fake Stripe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from firmpay.errors import (
    AmountBelowMinimum,
    AmountOverBalance,
    CaptchaRequired,
    PayableClosed,
    ReviewExpired,
)
from firmpay.ledger import Ledger, LinkContext
from firmpay.models.card import CardReviewRequest, CardSubmitRequest
from firmpay.models.ledger import BillingDetails, PaymentStatus
from firmpay.payments import card, stored_methods
from firmpay.payments.card_testing import DEFAULT_LIMITS, attempt_counters, record_failure
from firmpay.payments.checkout import STORE_METHOD_TEXT, STORE_METHOD_TEXT_VERSION, sha256_hex
from firmpay.payments.links import issue_pay_link, resolve_link
from tests.support.card_fakes import CARD_3DS, CARD_OK, DECLINES, FakeProcessor, FakeVerifier
from tests.support.factories import create_billed

IP, UA = "203.0.113.9", "Mozilla/5.0 (test)"
BILLING = BillingDetails(
    name="Jordan Client", line1="1 Main St", city="Springfield", state="IL", postal_code="62701", country="US"
)


def open_link(ledger: Ledger, **billed: object) -> LinkContext:
    now = datetime.now(UTC)
    payable = create_billed(ledger, **billed).payable  # type: ignore[arg-type]
    url, _ = issue_pay_link(ledger, payable, "http://127.0.0.1:3000", now)
    return resolve_link(ledger, url.rsplit("/", 1)[1], now)


def review(
    ledger: Ledger,
    stripe: FakeProcessor,
    context: LinkContext,
    amount: int | None = None,
    method: str = CARD_OK,
    verifier: FakeVerifier | None = None,
    captcha_token: str | None = None,
    ip: str = IP,
) -> card.Review:
    return card.create_card_review(
        ledger,
        stripe,
        verifier or FakeVerifier(),
        context,
        amount if amount is not None else context.payable.balance_minor,
        method,
        BILLING,
        captcha_token,
        ip,
        datetime.now(UTC),
        900,
    )


def submit(
    ledger: Ledger,
    stripe: FakeProcessor,
    context: LinkContext,
    review_id: str,
    store: bool = False,
    verifier: FakeVerifier | None = None,
    captcha_token: str | None = None,
    ip: str = IP,
) -> card.CardOutcome:
    return card.submit_card(
        ledger,
        stripe,
        verifier or FakeVerifier(),
        context.link,
        review_id,
        store,
        captcha_token,
        ip,
        UA,
        datetime.now(UTC),
    )


@pytest.fixture
def stripe() -> FakeProcessor:
    return FakeProcessor()


# -- review ---------------------------------------------------------------------------------------


def test_review_summarises_the_card_and_charges_nothing(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)

    made = review(ledger, stripe, context)

    assert made.method.brand == "visa"
    assert made.method.last4 == "4242"
    assert made.method.holder_name == "Jordan Client"
    assert made.amount_minor == context.payable.balance_minor
    assert made.currency == "USD"
    assert stripe.intents[made.processor_intent_id or ""].status == "requires_confirmation"
    assert stripe.charges == []
    body = card.card_review_response(made, context)
    assert body.card_brand == "Visa"
    assert body.card_last4 == "4242"
    assert body.billing_name == "Jordan Client"
    assert body.amount.formatted == "$1,500.50\u00a0USD"
    assert "Hartley & Vance LLP" in body.store_consent_text
    assert body.store_consent_version == STORE_METHOD_TEXT_VERSION


@pytest.mark.parametrize(
    ("amount", "error"), [(150_051, AmountOverBalance), (49, AmountBelowMinimum), (0, AmountBelowMinimum)]
)
def test_review_refuses_amounts_outside_minimum_and_balance(
    ledger: Ledger, stripe: FakeProcessor, amount: int, error: type[Exception]
) -> None:
    context = open_link(ledger)

    with pytest.raises(error):
        review(ledger, stripe, context, amount)

    assert stripe.calls == []


def test_review_refuses_an_unknown_payment_method(ledger: Ledger, stripe: FakeProcessor) -> None:
    with pytest.raises(card.InvalidPaymentMethod):
        review(ledger, stripe, open_link(ledger), method="pm_nope")


def test_review_refuses_a_card_saved_by_another_client(ledger: Ledger, stripe: FakeProcessor) -> None:
    stripe.attached[CARD_OK] = "cus_someone_else"

    with pytest.raises(card.InvalidPaymentMethod):
        review(ledger, stripe, open_link(ledger))


def test_request_models_refuse_float_and_string_amounts() -> None:
    good = {"amount_minor": 100, "payment_method_id": "pm_123456", "billing": BILLING.model_dump()}
    assert CardReviewRequest.model_validate(good).amount_minor == 100
    for amount in (100.0, "100", True, -1, 10**10):
        with pytest.raises(ValidationError):
            CardReviewRequest.model_validate(good | {"amount_minor": amount})
    with pytest.raises(ValidationError):
        CardSubmitRequest.model_validate({"review_id": "rev_abcdefgh12", "store_method": "yes"})


# -- submit ---------------------------------------------------------------------------------------


def test_full_payment_settles_and_reports_the_new_balance(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context)

    outcome = submit(ledger, stripe, context, made.review_id)

    assert outcome.payment.status is PaymentStatus.SUCCEEDED
    assert outcome.balance_minor == 0
    result = card.card_result(outcome)
    assert result.status == "succeeded"
    assert result.reference.startswith("FP-")
    assert result.message == "Payment successful. A confirmation email is on its way."
    payable = ledger.check_invariant(context.payable.payable_id)
    assert payable.paid_minor == 150_050
    assert payable.balance_minor == 0
    assert payable.pending_minor == 0
    assert len(stripe.charges) == 1


def test_partial_payment_leaves_the_rest_due(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context, 50_000)

    outcome = submit(ledger, stripe, context, made.review_id)

    assert outcome.balance_minor == 100_050
    assert ledger.check_invariant(context.payable.payable_id).balance_minor == 100_050


def test_submitting_one_review_again_never_charges_twice(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context)

    first = submit(ledger, stripe, context, made.review_id)
    again = submit(ledger, stripe, context, made.review_id)

    assert again.payment.payment_id == first.payment.payment_id
    assert again.payment.status is PaymentStatus.SUCCEEDED
    assert again.balance_minor == 0
    assert len(stripe.charges) == 1
    ledger.check_invariant(context.payable.payable_id)


def test_a_second_review_of_a_paid_bill_is_refused(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    first, second = review(ledger, stripe, context), review(ledger, stripe, context)
    submit(ledger, stripe, context, first.review_id)

    with pytest.raises(PayableClosed):
        submit(ledger, stripe, context, second.review_id)

    assert len(stripe.charges) == 1
    ledger.check_invariant(context.payable.payable_id)


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("pm_card_declined", "card_declined"),
        ("pm_card_insufficient", "insufficient_funds"),
        ("pm_card_expired", "expired_card"),
        ("pm_card_cvc", "incorrect_cvc"),
        ("pm_card_processing", "processing_error"),
    ],
)
def test_a_decline_releases_the_amount_with_a_stable_code(
    ledger: Ledger, stripe: FakeProcessor, method: str, code: str
) -> None:
    assert method in DECLINES
    context = open_link(ledger)
    made = review(ledger, stripe, context, method=method)

    outcome = submit(ledger, stripe, context, made.review_id)

    result = card.card_result(outcome)
    assert result.status == "failed"
    assert result.decline_code == code
    assert "declined" in result.message.lower() or "card" in result.message.lower()
    assert outcome.balance_minor == context.payable.balance_minor
    payable = ledger.check_invariant(context.payable.payable_id)
    assert payable.balance_minor == context.payable.balance_minor
    assert payable.paid_minor == 0
    assert stripe.charges == []


def test_an_expired_review_is_refused(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context)

    with pytest.raises(ReviewExpired):
        card.submit_card(
            ledger,
            stripe,
            FakeVerifier(),
            context.link,
            made.review_id,
            False,
            None,
            IP,
            UA,
            datetime.now(UTC) + timedelta(seconds=901),
        )
    assert ledger.check_invariant(context.payable.payable_id).pending_minor == 0


# -- 3-D Secure -----------------------------------------------------------------------------------


def test_three_d_secure_keeps_the_amount_reserved_until_completed(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context, method=CARD_3DS)

    asked = submit(ledger, stripe, context, made.review_id)
    assert card.card_result(asked).status == "requires_action"
    assert asked.client_secret
    assert asked.client_secret.startswith(made.processor_intent_id or "")
    assert ledger.check_invariant(context.payable.payable_id).pending_minor == made.amount_minor

    stripe.authenticate(made.processor_intent_id or "", success=True)
    done = card.complete_card(ledger, stripe, context.link, asked.payment.payment_id, datetime.now(UTC))

    assert card.card_result(done).status == "succeeded"
    assert done.balance_minor == 0
    assert ledger.check_invariant(context.payable.payable_id).paid_minor == made.amount_minor


def test_failed_three_d_secure_charges_nothing_and_frees_the_balance(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context, method=CARD_3DS)
    asked = submit(ledger, stripe, context, made.review_id)

    stripe.authenticate(made.processor_intent_id or "", success=False)
    done = card.complete_card(ledger, stripe, context.link, asked.payment.payment_id, datetime.now(UTC))

    result = card.card_result(done)
    assert result.status == "failed"
    assert result.decline_code == "authentication_failed"
    assert "Nothing was charged" in result.message
    assert stripe.charges == []
    assert ledger.check_invariant(context.payable.payable_id).balance_minor == context.payable.balance_minor


# -- storing --------------------------------------------------------------------------------------


def test_card_is_stored_with_the_consent_record_only_when_asked(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    not_kept = submit(ledger, stripe, context, review(ledger, stripe, context, 50_000).review_id, store=False)
    kept = submit(ledger, stripe, context, review(ledger, stripe, context, 50_000).review_id, store=True)

    methods = ledger.list_methods(context.firm.firm_id, context.client.client_id)

    assert [m.created_from_payment_id for m in methods] == [kept.payment.payment_id]
    method = methods[0]
    assert method.summary.last4 == "4242"
    assert method.summary.exp_year == 2034
    assert method.processor_customer_id.startswith("cus_")
    assert method.processor_method_id == CARD_OK
    shown = STORE_METHOD_TEXT.format(firm=context.firm.name)
    assert method.consent.text_version == STORE_METHOD_TEXT_VERSION
    assert method.consent.text_sha256 == sha256_hex(shown)
    assert (method.consent.ip_address, method.consent.user_agent) == (IP, UA)
    assert not_kept.payment.store_consent is None


def test_storing_twice_for_one_payment_keeps_one_method(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    outcome = submit(ledger, stripe, context, review(ledger, stripe, context).review_id, store=True)

    stored_methods.remember_method(ledger, outcome.payment, datetime.now(UTC))

    assert len(ledger.list_methods(context.firm.firm_id, context.client.client_id)) == 1


# -- routing and currencies -----------------------------------------------------------------------


def test_trust_request_goes_in_full_to_trust_with_the_fee_on_operating(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger, kind="trust_request", amounts=(500_000,))
    made = review(ledger, stripe, context)

    outcome = submit(ledger, stripe, context, made.review_id)

    payment = outcome.payment
    assert payment.destination == "trust"
    assert payment.destination_account == context.firm.trust_account
    assert payment.amount_minor == 500_000
    assert payment.fee_account == "operating"
    assert payment.fee_minor == 14_530
    assert "trust account" in card.card_review_response(made, context).destination_text
    assert ledger.check_invariant(context.payable.payable_id).paid_minor == 500_000


def test_canadian_firm_pays_in_cad(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger, country="CA")
    made = review(ledger, stripe, context)

    outcome = submit(ledger, stripe, context, made.review_id)

    assert made.currency == "CAD"
    assert stripe.intents[made.processor_intent_id or ""].currency == "CAD"
    assert card.card_result(outcome).amount.formatted == "$1,500.50\u00a0CAD"


# -- card-testing defence -------------------------------------------------------------------------


def test_after_three_declines_on_a_link_the_next_review_needs_a_captcha(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    ip = "198.51.100.1"
    for _ in range(3):
        submit(
            ledger, stripe, context, review(ledger, stripe, context, 1_000, "pm_card_declined", ip=ip).review_id, ip=ip
        )

    with pytest.raises(CaptchaRequired):
        review(ledger, stripe, context, 1_000, ip=ip)

    refused = FakeVerifier(answer=False)
    with pytest.raises(CaptchaRequired):
        review(ledger, stripe, context, 1_000, verifier=refused, captcha_token="bad-token", ip=ip)
    assert refused.seen == ["bad-token"]

    made = review(ledger, stripe, context, 1_000, verifier=FakeVerifier(), captcha_token="good-token", ip=ip)
    assert made.human_verified
    # Its one submit needs no second captcha.
    assert submit(ledger, stripe, context, made.review_id, ip=ip).payment.status is PaymentStatus.SUCCEEDED


def test_submit_of_an_unverified_review_past_the_limit_needs_a_captcha(ledger: Ledger, stripe: FakeProcessor) -> None:
    context = open_link(ledger)
    ip = "198.51.100.2"
    waiting = review(ledger, stripe, context, 1_000, ip=ip)
    for _ in range(3):
        submit(
            ledger, stripe, context, review(ledger, stripe, context, 1_000, "pm_card_declined", ip=ip).review_id, ip=ip
        )

    with pytest.raises(CaptchaRequired):
        submit(ledger, stripe, context, waiting.review_id, ip=ip)

    outcome = submit(ledger, stripe, context, waiting.review_id, captcha_token="ok", ip=ip)
    assert outcome.payment.status is PaymentStatus.SUCCEEDED


def test_ten_failures_from_one_ip_on_other_links_need_a_captcha(ledger: Ledger, stripe: FakeProcessor) -> None:
    ip, now = "198.51.100.3", datetime.now(UTC)
    for n in range(10):  # ten failed attempts from this IP, each on another link
        record_failure(ledger, attempt_counters(f"other-link-{n}", ip, now, DEFAULT_LIMITS))

    with pytest.raises(CaptchaRequired):
        review(ledger, stripe, open_link(ledger), 1_000, ip=ip)
    review(ledger, stripe, open_link(ledger), 1_000, ip="198.51.100.4")  # another caller is not affected
