"""A third payment method, registered by this test alone, goes through review, submit, autopay,
the emails and the pay page with no edit anywhere else (issue 14's acceptance for the registry).

The fake is a Canadian debit: offered to CA firms in CAD (so the card-only Canadian page gains it),
with its own mandate in English and French, return codes, fee, limit, labels and page section.
Stripe is ``FakeProcessor`` answering as a debit does (processing, then settled or returned);
the ledger is DynamoDB Local with its real rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmpay.emails.confirmations import payment_email
from firmpay.emails.notifications import EmailKind, PaymentChange, emails_for
from firmpay.errors import MethodNotAllowed
from firmpay.ledger import Ledger, LinkContext
from firmpay.models.api import AutopayRequest
from firmpay.models.ledger import Firm, MethodSummary, Payment, PaymentStatus
from firmpay.payments import autopay, checkout, methods, webhooks
from firmpay.payments.links import issue_pay_link, resolve_link
from firmpay.payments.methods.base import (
    Eligibility,
    FeeSchedule,
    MandateTerms,
    PageSection,
    PaymentMethodPolicy,
    ReturnCodes,
    Storage,
)
from firmpay.payments.processor import ConfirmRequest, Intent, IntentRequest
from firmpay.web.pages import pay_view, render_pay_page
from tests.support.card_fakes import FakeProcessor
from tests.support.factories import create_billed

IP, UA = "203.0.113.9", "Mozilla/5.0 (test)"
MANDATE_ID = "mandate_fake_debit_1"
SECTION = '<section id="fake-debit-section"><h2>{{ "Payer par débit fictif" if lang == "fr-CA" else "Pay by fake debit" }}</h2></section>\n'


@dataclass(frozen=True)
class FakeDebitPolicy(PaymentMethodPolicy):
    """Reads the firm, as a real method's limits do: at most 2,000.00 per payment."""

    def max_payment_minor(self, firm: Firm) -> int | None:
        return 200_000


def make_fake_debit(section_directory: Path) -> FakeDebitPolicy:
    return FakeDebitPolicy(
        key="fake_debit",
        processor_type="fake_debit",
        instrument="bank_account",
        labels={"en": "Fake debit", "fr": "Débit fictif"},
        section=PageSection("_fake_debit_section.html", directory=section_directory),
        eligibility=Eligibility(countries=frozenset({"CA"}), currencies=frozenset({"CAD"})),
        fees=FeeSchedule(rate_per_mille=10, fixed_minor=25, cap_minor=300),
        storage=Storage(stored_by="pipeline", while_processing=True),
        mandate=MandateTerms(
            version="fake-debit-v1",
            texts={
                "en": "I authorize {firm} to debit {account} for {amount} on {date} for {payable}.",
                "fr": "J'autorise {firm} à prélever {amount} de {account} le {date} pour {payable}.",
            },
            default_account_validation="test_verified",
            processor_options={"mandate_options": {"transaction_type": "personal"}},
        ),
        returns=ReturnCodes(
            pattern=r"9\d\d",
            account_gone=frozenset({"905"}),
            reasons={"en": {"905": "the account is closed"}, "fr": {"905": "le compte est fermé"}},
        ),
        settles_later=True,
        not_offered_reason="Fake debit is offered to Canadian firms only.",
    )


@dataclass
class DebitProcessor(FakeProcessor):
    """Stripe as it answers a debit: a confirmed debit is *processing* under a mandate, then the
    test settles it or the bank returns it (``network_decline_code``). Remembers every request."""

    intent_requests: list[IntentRequest] = field(default_factory=list)
    confirm_requests: list[ConfirmRequest] = field(default_factory=list)

    def create_intent(self, request: IntentRequest) -> Intent:
        self.intent_requests.append(request)
        return super().create_intent(request)

    def confirm_intent(self, request: ConfirmRequest) -> Intent:
        self._check("confirm_intent")
        self.confirm_requests.append(request)
        if request.idempotency_key in self._replies:
            return self._replies[request.idempotency_key]
        intent = self.intents[request.intent_id]
        if intent.status == "requires_confirmation":
            intent = dataclasses.replace(intent, status="processing", mandate_id=request.mandate_id or MANDATE_ID)
            self.intents[intent.intent_id] = intent
        self._replies[request.idempotency_key] = intent
        return intent

    def settle(self, intent_id: str) -> None:
        self.intents[intent_id] = dataclasses.replace(self.intents[intent_id], status="succeeded")

    def bank_returns(self, intent_id: str, code: str) -> None:
        self.intents[intent_id] = dataclasses.replace(
            self.intents[intent_id],
            status="requires_payment_method",
            failure_code="debit_returned",
            failure_message="The bank returned the debit.",
            network_decline_code=code,
        )


@pytest.fixture
def policy(tmp_path: Path) -> Iterator[FakeDebitPolicy]:
    (tmp_path / "_fake_debit_section.html").write_text(SECTION, encoding="utf-8")
    registered = make_fake_debit(tmp_path)
    methods.register(registered)
    yield registered
    methods.unregister(registered.key)


@pytest.fixture
def stripe() -> DebitProcessor:
    return DebitProcessor()


def open_link(ledger: Ledger, country: str = "CA", language: str = "fr") -> LinkContext:
    now = datetime.now(UTC)
    payable = create_billed(ledger, country=country, language=language).payable
    url, _ = issue_pay_link(ledger, payable, "http://127.0.0.1:3000", now)
    return resolve_link(ledger, url.rsplit("/", 1)[1], now)


def review(ledger: Ledger, stripe: DebitProcessor, context: LinkContext, amount: int = 100_000) -> checkout.Review:
    summary = MethodSummary(type="fake_debit", bank_name="Caisse Test", last4="6789", holder_name="Jordan Client")
    return checkout.create_review(ledger, stripe, context, amount, summary, "tpm_account_1", datetime.now(UTC), 900)


def submit(ledger: Ledger, stripe: DebitProcessor, context: LinkContext, review_id: str) -> checkout.CheckoutOutcome:
    choice = checkout.SubmitChoice(store_method=True, ip_address=IP, user_agent=UA, authorized=True)
    return checkout.submit(
        ledger, stripe, methods.method("fake_debit"), context.link, review_id, choice, datetime.now(UTC)
    )


def invariant(ledger: Ledger, context: LinkContext) -> tuple[int, int, int]:
    payable = ledger.check_invariant(context.payable.payable_id)
    return payable.paid_minor, payable.pending_minor, payable.balance_minor


# -- the page --------------------------------------------------------------------------------------


def test_the_pay_page_offers_and_renders_a_registered_method_where_its_policy_admits_it(
    ledger: Ledger, policy: FakeDebitPolicy
) -> None:
    canadian, american = open_link(ledger), open_link(ledger, "US", "en")

    assert pay_view(canadian).payment_options == ["card", "fake_debit"]
    assert pay_view(american).payment_options == ["card", "echeck"]
    page = render_pay_page(canadian)
    assert '<section id="fake-debit-section"><h2>Payer par débit fictif</h2></section>' in page
    assert 'data-options="card fake_debit"' in page
    assert "fake-debit-section" not in render_pay_page(american)


def test_without_the_registration_the_page_is_as_before(ledger: Ledger) -> None:
    assert pay_view(open_link(ledger)).payment_options == ["card"]


# -- review ----------------------------------------------------------------------------------------


def test_review_creates_the_intent_of_the_method_with_its_mandate_in_the_firm_s_language(
    ledger: Ledger, stripe: DebitProcessor, policy: FakeDebitPolicy
) -> None:
    context = open_link(ledger)

    made = review(ledger, stripe, context)

    request = stripe.intent_requests[-1]
    assert (request.method_type, dict(request.method_options)) == (
        "fake_debit",
        {"mandate_options": {"transaction_type": "personal"}},
    )
    assert made.mandate_text == (
        "J'autorise Tremblay Avocats à prélever 1\u00a0000,00\u00a0$\u00a0CAD de Caisse Test \u2022\u2022\u2022\u20226789 "
        f"le {made.created_at.date().isoformat()} pour la facture {context.payable.number}."
    )
    assert stripe.charges == []


def test_review_refuses_what_the_policy_refuses(
    ledger: Ledger, stripe: DebitProcessor, policy: FakeDebitPolicy
) -> None:
    with pytest.raises(MethodNotAllowed, match="Canadian firms only"):
        review(ledger, stripe, open_link(ledger, "US", "en"))
    with pytest.raises(MethodNotAllowed) as over:
        review(ledger, stripe, open_link(ledger), amount=200_001)
    assert over.value.details == {"limit_minor": 200_000}
    assert stripe.intent_requests == []


# -- submit, apply, stored method, emails ----------------------------------------------------------


def test_submit_debits_under_the_accepted_mandate_and_stores_the_method_with_it(
    ledger: Ledger, stripe: DebitProcessor, policy: FakeDebitPolicy
) -> None:
    context = open_link(ledger)
    made = review(ledger, stripe, context)

    outcome = submit(ledger, stripe, context, made.review_id)

    payment = outcome.payment
    assert payment.status is PaymentStatus.PROCESSING
    assert (outcome.balance_minor, invariant(ledger, context)) == (50_050, (0, 100_000, 50_050))
    assert payment.mandate is not None
    assert (payment.mandate.text_version, payment.mandate.text) == ("fake-debit-v1", made.mandate_text)
    assert (payment.mandate.account_validation, payment.mandate.ip_address) == ("test_verified", IP)
    assert stripe.confirm_requests[-1].setup_future_usage == "off_session"
    assert stripe.confirm_requests[-1].mandate_ip == IP
    [stored] = ledger.list_methods(context.firm.firm_id, context.client.client_id)
    assert (stored.method_id, stored.mandate_id, stored.summary.type) == (
        payment.stored_method_id,
        MANDATE_ID,
        "fake_debit",
    )


def test_the_emails_say_submitted_then_returned_in_the_method_s_own_words(
    ledger: Ledger, stripe: DebitProcessor, policy: FakeDebitPolicy
) -> None:
    context = open_link(ledger, "CA", "en")
    submitted = submit(ledger, stripe, context, review(ledger, stripe, context).review_id).payment
    assert submitted.processor_intent_id is not None
    stripe.bank_returns(submitted.processor_intent_id, "905")

    webhooks.reconcile_payment(ledger, stripe, submitted, datetime.now(UTC))

    returned = ledger.get_payment(submitted.payable_id, submitted.payment_id)
    assert returned is not None
    assert (returned.status, returned.return_code) == (PaymentStatus.FAILED, "905")
    assert invariant(ledger, context) == (0, 0, 150_050)
    assert emails_for(PaymentChange(PaymentStatus.PENDING, submitted)) == [EmailKind.CLIENT_SUBMITTED]
    assert emails_for(PaymentChange(PaymentStatus.PROCESSING, returned)) == [
        EmailKind.CLIENT_FAILED,
        EmailKind.FIRM_RETURNED,
    ]
    text = _text(EmailKind.FIRM_RETURNED, context, returned)
    assert "The bank returned Jordan Client's Fake debit payment of $1,000.00\u00a0CAD toward" in text
    assert "the account is closed (return code 905)" in text
    # The return says the account is gone: the stored method is never debited again.
    [stored] = ledger.list_methods(context.firm.firm_id, context.client.client_id)
    assert stored.status == "unusable"


def test_a_settled_debit_books_the_method_s_fee_estimate(
    ledger: Ledger, stripe: DebitProcessor, policy: FakeDebitPolicy
) -> None:
    context = open_link(ledger)
    submitted = submit(ledger, stripe, context, review(ledger, stripe, context).review_id).payment
    assert submitted.processor_intent_id is not None
    stripe.settle(submitted.processor_intent_id)

    webhooks.reconcile_payment(ledger, stripe, submitted, datetime.now(UTC))

    settled = ledger.get_payment(submitted.payable_id, submitted.payment_id)
    assert settled is not None
    assert (settled.status, settled.fee_minor) == (PaymentStatus.SUCCEEDED, 300)  # 1,000.25 capped at 3.00
    assert invariant(ledger, context) == (100_000, 0, 50_050)
    assert emails_for(PaymentChange(PaymentStatus.PROCESSING, settled)) == [EmailKind.FIRM_RECEIVED]


# -- autopay ---------------------------------------------------------------------------------------


def test_autopay_charges_the_stored_method_off_session_under_its_mandate(
    ledger: Ledger, stripe: DebitProcessor, policy: FakeDebitPolicy
) -> None:
    context = open_link(ledger)
    first = submit(ledger, stripe, context, review(ledger, stripe, context).review_id).payment
    assert first.stored_method_id is not None
    request = AutopayRequest(
        firm_id=context.firm.firm_id,
        payable_id=context.payable.payable_id,
        method_id=first.stored_method_id,
        amount_minor=50_050,
        idempotency_key="autopay-fake-debit-1",
    )

    outcome = autopay.charge_stored_method(ledger, stripe, request, datetime.now(UTC))

    assert (outcome.payment.status, outcome.payment.origin) == (PaymentStatus.PROCESSING, "autopay")
    assert outcome.payment.method.type == "fake_debit"
    assert stripe.intent_requests[-1].method_type == "fake_debit"
    confirm = stripe.confirm_requests[-1]
    assert (confirm.off_session, confirm.mandate_id) == (True, MANDATE_ID)
    assert invariant(ledger, context) == (0, 150_050, 0)


def _text(kind: EmailKind, context: LinkContext, payment: Payment) -> str:
    message = payment_email(kind, context.firm, context.client, context.payable, payment, "p@f.example")
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]
