"""eCheck: an ACH debit of a US bank account (Stripe ``us_bank_account``), for US firms in USD.

The client links the account through Plaid Link on the pay page (``payments.bank_link`` turns it
into a Stripe bank account; ``payments.echeck`` runs the pay-page routes), accepts the NACHA WEB
authorization below before each debit, and the debit stays *processing* for days until Stripe
settles it or the bank returns it with an R-code. The ledger key stays ``echeck`` (stored items).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmpay.errors import EcheckLimitExceeded, EcheckNotOffered, FirmPayError
from firmpay.models.ledger import Firm
from firmpay.money import Money
from firmpay.payments.methods.base import (
    Eligibility,
    FeeSchedule,
    MandateTerms,
    PageSection,
    PaymentMethodPolicy,
    ReturnCodes,
    Storage,
)

ACH_MANDATE_TEXT_VERSION = "ach-web-v1"
ACH_MANDATE = MandateTerms(
    version=ACH_MANDATE_TEXT_VERSION,
    texts={
        "en": (
            "By checking this box, I authorize {firm} to electronically debit my account {account} for a "
            "one-time payment of {amount} on {date} (or the next business day) for {payable}. I confirm I am "
            "authorized to debit this account. I can revoke this authorization by contacting {firm} at "
            "{reply_to} before the payment is processed. If the debit is returned, {firm} may contact me to "
            "arrange another payment."
        )
    },
    # Plaid Auth verified the account and routing numbers before the debit (NACHA's WEB rule).
    default_account_validation="plaid_auth",
)

# Returns that say the account can never be debited again: a stored method becomes unusable.
# Stripe reports the bank's return code in last_payment_error.network_decline_code and its own
# decline code (bank_account_closed, ...) in decline_code (Stripe docs, "Network decline codes", ACH
# Direct Debit): all but the funds returns (R01, R09) say the account or the authorization is gone.
ACCOUNT_GONE_RETURNS = frozenset({"R02", "R03", "R04", "R05", "R07", "R08", "R10", "R11", "R16", "R20", "R29", "R31"})

# NACHA return codes a client may see, in plain words.
RETURN_REASONS: dict[str, dict[str, str]] = {
    "en": {
        "R01": "there were not enough funds in the account",
        "R02": "the account is closed",
        "R03": "the bank could not find the account",
        "R04": "the account number is not valid",
        "R05": "the bank was told this debit was not authorized",
        "R07": "the authorization for this debit was revoked",
        "R08": "a stop payment was placed on this debit",
        "R09": "the funds in the account were not yet available",
        "R10": "the account holder told the bank this debit was not authorized",
        "R16": "the account is frozen",
        "R20": "the account does not allow this kind of debit",
        "R29": "the account holder told the bank this debit was not authorized",
    },
    "fr": {
        "R01": "le compte n'avait pas les fonds suffisants",
        "R02": "le compte est fermé",
        "R03": "la banque n'a pas trouvé le compte",
        "R04": "le numéro de compte n'est pas valide",
        "R05": "la banque a été avisée que ce prélèvement n'était pas autorisé",
        "R07": "l'autorisation de ce prélèvement a été révoquée",
        "R08": "un arrêt de paiement a été placé sur ce prélèvement",
        "R09": "les fonds du compte n'étaient pas encore disponibles",
        "R10": "le titulaire a avisé la banque que ce prélèvement n'était pas autorisé",
        "R16": "le compte est gelé",
        "R20": "le compte n'accepte pas ce type de prélèvement",
        "R29": "le titulaire a avisé la banque que ce prélèvement n'était pas autorisé",
    },
}


@dataclass(frozen=True)
class UsBankAccountPolicy(PaymentMethodPolicy):
    """The firm's eCheck risk limits (``Firm.echeck_max_minor``, ``Firm.echeck_daily_limit``)."""

    def not_offered_error(self) -> FirmPayError:
        return EcheckNotOffered()

    def max_payment_minor(self, firm: Firm) -> int | None:
        return firm.echeck_max_minor

    def over_limit_error(self, firm: Firm, limit_minor: int) -> FirmPayError:
        return EcheckLimitExceeded(
            "eCheck payments to {firm} are limited to {limit} per payment; please pay by card or pay in parts.",
            params={"firm": firm.name, "limit": Money(amount_minor=limit_minor, currency=firm.currency)},
            limit_minor=limit_minor,
        )

    def daily_payments(self, firm: Firm) -> int | None:
        return firm.echeck_daily_limit

    def daily_limit_error(self) -> FirmPayError:
        return EcheckLimitExceeded("You have reached today's limit of eCheck payments; please pay by card.")


US_BANK_ACCOUNT = UsBankAccountPolicy(
    key="echeck",
    processor_type="us_bank_account",
    instrument="bank_account",
    labels={"en": "eCheck", "fr": "Chèque électronique"},
    section=PageSection("_echeck_section.html", head_scripts=("plaid_link_js_url",)),
    eligibility=Eligibility(countries=frozenset({"US"}), currencies=frozenset({"USD"})),
    # Stripe's ACH Direct Debit list price: 0.8%, capped at 5.00.
    fees=FeeSchedule(rate_per_mille=8, cap_minor=500),
    # Stored by the eCheck submit, with the Plaid item's encrypted access token; reused
    # off-session under the multi-use mandate Stripe made when the client agreed to future debits.
    storage=Storage(stored_by="method"),
    mandate=ACH_MANDATE,
    returns=ReturnCodes(pattern=r"R\d\d", account_gone=ACCOUNT_GONE_RETURNS, reasons=RETURN_REASONS),
    settles_later=True,
    not_offered_reason="eCheck is offered to US firms only.",
)
