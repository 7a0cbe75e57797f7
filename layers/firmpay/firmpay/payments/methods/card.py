"""Credit and debit cards (Stripe ``card``), for every firm, US and Canadian.

The card reaches us as a Stripe PaymentMethod made by Stripe.js (the number never touches our
servers); the pay page's card section also runs the 3-D Secure challenge when the bank asks.
No mandate: the card network's rules cover the charge. A stored card is charged off-session
without a mandate; one that needs authentication then fails (autopay) and the client is emailed
a pay link. The card-testing defence of the pay-page routes lives with them (``payments.card``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from firmpay.i18n import N_
from firmpay.models.ledger import MethodSummary
from firmpay.payments.methods.base import Eligibility, FeeSchedule, PageSection, PaymentMethodPolicy, Storage

# Stripe's decline and error codes as the pay page words them.
DECLINE_MESSAGES = {
    "insufficient_funds": N_("Your card has insufficient funds. Please use another card."),
    "expired_card": N_("Your card has expired. Please check the expiry date or use another card."),
    "incorrect_cvc": N_("The card's security code (CVC) is incorrect. Please check it and try again."),
    "processing_error": N_("An error occurred while processing your card. Please try again in a moment."),
    "authentication_required": N_(
        "Your bank could not authenticate this payment. Please try again or use another card."
    ),
    "payment_intent_authentication_failure": N_("Your bank could not authenticate this payment. Nothing was charged."),
    "card_declined": N_("Your card was declined. Please use another card."),
    "generic_decline": N_("Your card was declined. Please use another card."),
}

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


@dataclass(frozen=True)
class CardPolicy(PaymentMethodPolicy):
    def unusable_reason(self, summary: MethodSummary, now: datetime) -> str | None:
        if summary.exp_year and (summary.exp_year, summary.exp_month or 0) < (now.year, now.month):
            return "The stored card has expired."
        return None


CARD = CardPolicy(
    key="card",
    processor_type="card",
    instrument="card",
    labels={"en": "Credit card", "fr": "Carte de crédit"},
    section=PageSection("_card_section.html"),
    eligibility=Eligibility(countries=frozenset({"US", "CA"}), currencies=frozenset({"USD", "CAD"})),
    # Stripe's standard US/CA list price: 2.9% + 0.30.
    fees=FeeSchedule(rate_per_mille=29, fixed_minor=30),
    storage=Storage(stored_by="pipeline"),
    decline_messages=DECLINE_MESSAGES,
    decline_codes=DECLINE_CODES,
    default_decline_code="card_declined",
)
