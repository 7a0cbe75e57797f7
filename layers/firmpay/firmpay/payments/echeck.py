"""eCheck (US firms): Plaid Link -> Stripe ACH debit with a recorded NACHA WEB mandate.

The flow: ``start_bank_link`` (a Link token) -> the client signs in to the bank in Plaid Link ->
``connect_bank_account`` (exchange the public token, check the account, turn it into a Stripe bank
account on the client's customer, keep the Plaid access token only encrypted) -> the shared
review/submit machinery of ``checkout`` with the mandate -> the debit stays *processing* (still
reserved) until Stripe settles or returns it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from firmpay.errors import FirmPayError, InvalidRequest, ServiceUnavailable
from firmpay.models.ledger import Firm, Mandate, Payable

ACH_MANDATE_TEXT_VERSION = "ach-web-v1"

# Stripe's failure codes for ACH debits, and the NACHA return codes they stand for.
STRIPE_TO_ACH_RETURN = {
    "insufficient_funds": "R01",
    "account_closed": "R02",
    "no_account": "R03",
    "invalid_account_number": "R04",
    "debit_not_authorized": "R10",
    "bank_account_restricted": "R16",
    "account_frozen": "R16",
    "debit_authorization_not_match": "R29",
}
# Returns that say the account can never be debited again: a stored method becomes unusable.
ACCOUNT_GONE_RETURNS = frozenset({"R02", "R03", "R04", "R10", "R16", "R29"})


class EcheckNotOffered(FirmPayError):
    status, code = 422, "echeck_not_offered"
    default_message = "Payment by eCheck is offered to clients of US firms only; please pay by card."


class EcheckLimitExceeded(FirmPayError):
    status, code = 422, "echeck_limit_exceeded"
    default_message = "This amount is over the firm's limit for eCheck payments; please pay by card."


class MandateRequired(FirmPayError):
    status, code = 422, "mandate_required"
    default_message = "Please check the box authorizing the withdrawal before submitting."


class BankAccountRefused(FirmPayError):
    status, code = 422, "bank_account_not_supported"
    default_message = "Please choose a checking or savings account."


class BankLinkFailed(FirmPayError):
    status, code = 422, "bank_link_failed"
    default_message = "We could not connect to your bank. Please try again or pay by card."


@dataclass(frozen=True)
class LinkToken:
    link_token: str
    expiration: object


@dataclass(frozen=True)
class BankAccount:
    account_id: str
    name: str
    mask: str
    type: str
    subtype: str
    institution_name: str
    verification_status: str | None = None


class BankLinkError(Exception):
    """A Plaid error, with Plaid's own code (INVALID_PUBLIC_TOKEN, ...)."""

    def __init__(self, code: str, error_type: str, retryable: bool) -> None:
        super().__init__(code)
        self.code = code
        self.error_type = error_type
        self.retryable = retryable


class BankLinker(Protocol):
    def create_link_token(self, client_user_id: str, client_name: str, language: str) -> LinkToken: ...

    def exchange_public_token(self, public_token: str) -> str: ...

    def account(self, access_token: str, account_id: str) -> BankAccount | None: ...

    def stripe_bank_account_token(self, access_token: str, account_id: str) -> str: ...

    def remove_item(self, access_token: str) -> None: ...


def bank_error(error: BankLinkError) -> FirmPayError:
    """Plaid's failure as a client-facing error; provider messages never reach the client."""
    if error.retryable:
        return ServiceUnavailable()
    if error.code in ("INVALID_PUBLIC_TOKEN", "INVALID_ACCESS_TOKEN", "ITEM_NOT_FOUND"):
        return InvalidRequest("The bank connection expired or was already used; please select your bank again.")
    if error.code == "INVALID_ACCOUNT_ID":
        return BankAccountRefused("That account does not belong to the bank connection you made.")
    return BankLinkFailed()


def plaid_user_id(firm_id: str, client_id: str) -> str:
    """Plaid's client_user_id: stable per client and firm, revealing neither."""
    return hashlib.sha256(f"firmpay:{firm_id}:{client_id}".encode()).hexdigest()


def ensure_echeck_offered(firm: Firm) -> None:
    if not firm.offers_echeck:
        raise EcheckNotOffered()


def check_echeck_amount(firm: Firm, amount_minor: int) -> None:
    if amount_minor > firm.echeck_max_minor:
        raise EcheckLimitExceeded(
            f"eCheck payments to {firm.name} are limited to {firm.echeck_max_minor // 100:,} per payment; "
            "please pay by card or pay in parts.",
            limit_minor=firm.echeck_max_minor,
        )


def mandate_text(firm: Firm, payable: Payable, amount_formatted: str, bank_label: str, on: datetime) -> str:
    """The NACHA WEB authorization the client accepts, versioned as ``ACH_MANDATE_TEXT_VERSION``."""
    kind = "trust request" if payable.kind == "trust_request" else "bill"
    return (
        f"By checking this box, I authorize {firm.name} to electronically debit my account "
        f"{bank_label} for a one-time payment of {amount_formatted} on {on.date().isoformat()} "
        f"(or the next business day) for {kind} {payable.number}. I confirm I am authorized to debit "
        f"this account. I can revoke this authorization by contacting {firm.name} at "
        f"{firm.reply_to_email} before the payment is processed. If the debit is returned, "
        f"{firm.name} may contact me to arrange another payment."
    )


def make_mandate(
    text: str,
    amount_minor: int,
    currency: str,
    account: BankAccount | None,
    last4: str,
    now: datetime,
    ip_address: str,
    user_agent: str,
    validation: str | None,
) -> Mandate:
    return Mandate(
        text_version=ACH_MANDATE_TEXT_VERSION,
        text=text,
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        accepted_at=now,
        ip_address=ip_address,
        user_agent=user_agent[:512],
        amount_minor=amount_minor,
        currency=currency,
        account_last4=last4,
        account_validation=validation or (account.verification_status if account else None) or "plaid_auth",
    )


def ach_return_code(stripe_code: str | None) -> str | None:
    if stripe_code is None:
        return None
    if stripe_code.startswith("R") and stripe_code[1:].isdigit():
        return stripe_code
    return STRIPE_TO_ACH_RETURN.get(stripe_code)
