"""What FirmPay must know of a payment method, as one policy object (``PaymentMethodPolicy``).

A policy holds rules and words, never I/O: who may use the method, its limits, its mandate, its
fee, how its failures read, how it is stored and reused, its labels and its page section. The
checkout pipeline (``payments.checkout``), autopay, the emails and the pay page read it; none of
them compares a method's name. Each method module (``methods/card.py``, ...) makes one instance of
this class (or of a subclass overriding the methods below) and the registry lists it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from firmpay.errors import FirmPayError, MethodNotAllowed
from firmpay.models.ledger import Firm, Mandate, MethodSummary, Payable
from firmpay.money import Currency

Instrument = Literal["card", "bank_account"]
ALL_PAYABLE_KINDS = frozenset({"bill", "trust_request"})
# How a payable is named inside a sentence (mandate texts), by language.
PAYABLE_PHRASES: dict[str, dict[str, str]] = {
    "en": {"bill": "bill", "trust_request": "trust request"},
    "fr": {"bill": "la facture", "trust_request": "la demande de dépôt en fidéicommis"},
}


@dataclass(frozen=True)
class Eligibility:
    """Who may pay with the method: the firm's country, the payable's currency and its kind."""

    countries: frozenset[str]
    currencies: frozenset[str]
    payable_kinds: frozenset[str] = ALL_PAYABLE_KINDS

    def admits(self, firm: Firm, payable: Payable | None = None) -> bool:
        if firm.country not in self.countries or firm.currency not in self.currencies:
            return False
        return payable is None or (payable.currency in self.currencies and payable.kind in self.payable_kinds)


@dataclass(frozen=True)
class FeeSchedule:
    """The processor's list price, booked when Stripe has not reported the fee yet:
    ``rate_per_mille`` thousandths of the amount (rounded half up) plus ``fixed_minor``, at most
    ``cap_minor``."""

    rate_per_mille: int
    fixed_minor: int = 0
    cap_minor: int | None = None

    def estimate(self, amount_minor: int) -> int:
        fee = (amount_minor * self.rate_per_mille + 500) // 1000 + self.fixed_minor
        return fee if self.cap_minor is None else min(fee, self.cap_minor)


@dataclass(frozen=True)
class Storage:
    """How the method is kept for later (only with the client's consent) and charged again.

    ``stored_by``: ``"pipeline"``, the method is stored once its payment succeeds, by whichever of
    the submit, the 3-D Secure completion, the webhook or the sweep applies the outcome first (its
    method id is drawn when the payment is reserved, so they all store the same one);
    ``"method"``, the method's own submit stores it, as only it holds what is kept with it (a bank
    account linked through Plaid keeps its encrypted access token).
    ``while_processing``: with ``"pipeline"``, a debit's method is stored as soon as the bank took
    the debit for processing (its mandate is known then), not days later when it settles.
    ``setup_future_usage``: what the confirm asks Stripe for when the client consented, so that
    Stripe keeps the method (and, for a debit, a multi-use mandate) for off-session charges;
    autopay and plans then charge it off-session, under the mandate id recorded with it if any.
    """

    setup_future_usage: Literal["off_session"] = "off_session"
    stored_by: Literal["pipeline", "method"] = "pipeline"
    while_processing: bool = False


@dataclass(frozen=True)
class MandateTerms:
    """The debit authorization a client accepts (a box to check) before each payment.

    ``texts`` by language, with the placeholders ``{firm}``, ``{account}`` (e.g. "Chase ••••6789"),
    ``{holder}``, ``{amount}``, ``{date}``, ``{payable}`` (e.g. "bill INV-1"), ``{reply_to}``; a
    method whose agreement needs more (a PAD agreement's category or schedule clause) subclasses
    this and overrides ``text``. The exact text shown at review is kept with the payment
    (``Mandate``: text, ``version``, SHA-256, time, IP address, user agent, account) and the confirm
    tells Stripe the client accepted it online (``mandate_data.customer_acceptance``).
    ``processor_options``: what the intent carries under ``payment_method_options[<type>]`` (a
    Canadian pre-authorized debit's ``mandate_options``, for example; override ``options`` when
    they depend on the payment); ACH needs none.
    """

    version: str
    texts: Mapping[str, str]
    default_account_validation: str
    processor_options: Mapping[str, Any] = field(default_factory=dict)

    def text(self, firm: Firm, payable: Payable, account: MethodSummary, amount_formatted: str, on: datetime) -> str:
        """The authorization the client reads at review, in the firm's language."""
        lang = firm.language if firm.language in self.texts else "en"
        phrases = PAYABLE_PHRASES.get(lang, PAYABLE_PHRASES["en"])
        return self.texts[lang].format(
            firm=firm.name,
            account=account.label(),
            holder=account.holder_name or "",
            amount=amount_formatted,
            date=on.date().isoformat(),
            payable=f"{phrases[payable.kind]} {payable.number}",
            reply_to=firm.reply_to_email,
        )

    def options(self, firm: Firm, payable: Payable) -> Mapping[str, Any]:
        """What the intent carries under ``payment_method_options[<type>]``."""
        return self.processor_options

    def record(
        self,
        text: str,
        amount_minor: int,
        currency: Currency,
        last4: str,
        now: datetime,
        ip_address: str,
        user_agent: str,
        validation: str | None,
    ) -> Mandate:
        """The mandate as kept with the payment (never deleted)."""
        return Mandate(
            text_version=self.version,
            text=text,
            text_sha256=hashlib.sha256(text.encode()).hexdigest(),
            accepted_at=now,
            ip_address=ip_address,
            user_agent=user_agent[:512],
            amount_minor=amount_minor,
            currency=currency,
            account_last4=last4,
            account_validation=validation or self.default_account_validation,
        )


@dataclass(frozen=True)
class ReturnCodes:
    """A debit's bank return codes: their form (as Stripe reports them in
    ``last_payment_error.network_decline_code``), those that say the account can never be debited
    again, and how each reads to a person, by language."""

    pattern: str
    account_gone: frozenset[str]
    reasons: Mapping[str, Mapping[str, str]]

    def read(self, network_decline_code: str | None) -> str | None:
        if network_decline_code and re.fullmatch(self.pattern, network_decline_code):
            return network_decline_code
        return None

    def reason(self, code: str | None, lang: str) -> str | None:
        return self.reasons.get(lang, self.reasons["en"]).get(code or "")


@dataclass(frozen=True)
class PageSection:
    """The pay page's section for the method: a Jinja template (from ``web/templates``, or from
    ``directory`` when the method ships its own) and the external scripts the page loads for it
    (names of settings holding their URLs)."""

    template: str
    directory: Path | None = None
    head_scripts: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaymentMethodPolicy:
    """One payment method. Subclasses override the methods below where the rule needs the firm.

    ``key`` is what the ledger stores as ``MethodSummary.type`` (never renamed: old items must
    read); ``processor_type`` is Stripe's payment method type, sent as the intent's
    ``allowed_payment_method_types``.
    """

    key: str
    processor_type: str
    instrument: Instrument
    labels: Mapping[str, str]
    section: PageSection
    eligibility: Eligibility
    fees: FeeSchedule
    storage: Storage = Storage()
    mandate: MandateTerms | None = None
    returns: ReturnCodes | None = None
    # Debits: the payment is *processing* after submit and settles (or is returned) days later.
    settles_later: bool = False
    # How a failure reads on the pay page (processor code -> message) and in the API (-> stable code).
    decline_messages: Mapping[str, str] = field(default_factory=dict)
    decline_codes: Mapping[str, str] = field(default_factory=dict)
    default_decline_code: str | None = None
    not_offered_reason: str = MethodNotAllowed.default_message

    def label(self, lang: str = "en") -> str:
        """The method's name for people ("Credit card", "eCheck")."""
        return self.labels.get(lang, self.labels["en"])

    def offered_to(self, firm: Firm, payable: Payable | None = None) -> bool:
        return self.eligibility.admits(firm, payable)

    def not_offered_error(self) -> FirmPayError:
        return MethodNotAllowed(self.not_offered_reason)

    def refuse_unless_offered(self, firm: Firm, payable: Payable | None = None) -> None:
        if not self.offered_to(firm, payable):
            raise self.not_offered_error()

    def max_payment_minor(self, firm: Firm) -> int | None:
        """The firm's largest payment by this method (None: only the processor's maximum)."""
        return None

    def over_limit_error(self, firm: Firm, limit_minor: int) -> FirmPayError:
        return MethodNotAllowed(
            "This amount is over the firm's limit for this payment method.", limit_minor=limit_minor
        )

    def check_limits(self, firm: Firm, amount_minor: int) -> None:
        limit = self.max_payment_minor(firm)
        if limit is not None and amount_minor > limit:
            raise self.over_limit_error(firm, limit)

    def daily_payments(self, firm: Firm) -> int | None:
        """How many pay-page payments one client may make by this method in a day (None: no limit)."""
        return None

    def daily_limit_error(self) -> FirmPayError:
        return MethodNotAllowed("You have reached today's limit of payments by this method.")

    def unusable_reason(self, summary: MethodSummary, now: datetime) -> str | None:
        """Why a stored method of this kind cannot be charged now (None: it can)."""
        return None

    def failure_message(self, failure_code: str | None) -> str | None:
        """What the pay page says of a failed payment (None: the generic words)."""
        return self.decline_messages.get(failure_code or "")

    def decline_code(self, failure_code: str | None) -> str | None:
        """The API's stable code for a processor failure code (None when the method has none)."""
        return self.decline_codes.get(failure_code or "", self.default_decline_code)

    def return_reason(self, return_code: str | None, lang: str) -> str | None:
        """A returned debit's reason in plain words (None: the generic words)."""
        return self.returns.reason(return_code, lang) if self.returns else None

    def account_gone(self, return_code: str | None) -> bool:
        """Whether a return says the account can never be debited again."""
        return self.returns is not None and return_code in self.returns.account_gone
