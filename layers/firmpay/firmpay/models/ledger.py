"""The ledger's domain items. Amounts are integer minor units; each payable has one currency."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from firmpay.money import Currency, Locale, Money

Country = Literal["US", "CA"]
PayableKind = Literal["bill", "trust_request"]
Destination = Literal["operating", "trust"]
# A payment method's ledger key (``card``, ``echeck``...): the registry in
# ``firmpay.payments.methods`` says what each one is; stored values are never renamed.
MethodType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>\"]+@[^@\s<>\"]+\.[A-Za-z]{2,63}$"),
]
Last4 = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]

COUNTRY_CURRENCY: dict[str, Currency] = {"US": "USD", "CA": "CAD"}

# Where a firm practises: a US state (with DC and the territories) or a Canadian province or
# territory, as its two-letter postal code. Card-surcharge law and the page's language follow it.
US_REGIONS = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "PR",
        "VI",
        "GU",
        "AS",
        "MP",
    ]
)
CA_REGIONS = frozenset(["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"])
COUNTRY_REGIONS: dict[str, frozenset[str]] = {"US": US_REGIONS, "CA": CA_REGIONS}
Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


def check_region(country: str, region: str | None) -> None:
    """Refuse a region that is not in the firm's country (``None`` is a firm created before regions)."""
    if region is not None and region not in COUNTRY_REGIONS[country]:
        raise ValueError(f"{region} is not a {'US state' if country == 'US' else 'Canadian province'} code")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as ``firm_3kq...`` (96 bits)."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


class Item(BaseModel):
    """Base of every ledger item: strict about unknown fields, immutable once read."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DepositAccount(Item):
    """Where the money lands: shown to firms, never an account number in full."""

    name: Name
    last4: Last4


class Firm(Item):
    firm_id: str
    name: Name
    country: Country
    # None only for firms created before regions were recorded; the firm API requires it.
    region: Region | None = None
    currency: Currency
    language: Literal["en", "fr"] = "en"
    operating_account: DepositAccount
    trust_account: DepositAccount
    reply_to_email: Email
    # IAM principals (ARNs) allowed to manage this firm through the firm API.
    principals: list[str] = Field(default_factory=list)
    # eCheck risk limits (US firms only).
    echeck_max_minor: int = 2_500_000
    echeck_daily_limit: int = 5
    created_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _currency_matches_country(self) -> Firm:
        if COUNTRY_CURRENCY[self.country] != self.currency:
            raise ValueError(f"a firm in {self.country} bills in {COUNTRY_CURRENCY[self.country]}")
        if self.language == "fr" and self.country != "CA":
            raise ValueError("French is offered for Canadian firms")
        check_region(self.country, self.region)
        return self

    @property
    def locale(self) -> Locale:
        if self.country == "CA":
            return "fr-CA" if self.language == "fr" else "en-CA"
        return "en-US"


class Client(Item):
    client_id: str
    firm_id: str
    name: Name
    email: Email
    # The processor's customer for this client at this firm, created on the first payment.
    processor_customer_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class LineItem(Item):
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    amount_minor: int = Field(gt=0, le=1_000_000_000)


class PayableStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"


class Payable(Item):
    """A bill or a trust request. ``total = paid + pending + balance`` always holds.

    ``paid`` is net of refunds. A refunded bill is owed again (its balance goes back up); a trust
    request's refund is a trust disbursement back to the client, so for trust requests the rule
    reads ``total = paid + pending + balance + refunded`` (see ``Ledger.check_invariant``).
    """

    payable_id: str
    firm_id: str
    client_id: str
    kind: PayableKind
    number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    issued_on: date
    due_on: date
    currency: Currency
    line_items: list[LineItem] = Field(default_factory=list)
    memo: str = ""
    total_minor: int
    paid_minor: int = 0
    pending_minor: int = 0
    balance_minor: int
    refunded_minor: int = 0
    voided_at: datetime | None = None
    current_link_hash: str | None = None
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def status(self) -> PayableStatus:
        if self.voided_at is not None:
            return PayableStatus.VOID
        if self.balance_minor == 0 and self.pending_minor == 0:
            return PayableStatus.PAID
        if self.paid_minor > 0:
            return PayableStatus.PARTIALLY_PAID
        return PayableStatus.OPEN

    @property
    def open_for_payment(self) -> bool:
        return self.voided_at is None and self.balance_minor > 0

    @property
    def destination(self) -> Destination:
        """Bills are paid into the operating account, trust requests into the trust account."""
        return "trust" if self.kind == "trust_request" else "operating"

    def money(self, amount_minor: int) -> Money:
        return Money(amount_minor=amount_minor, currency=self.currency)


class PayLink(Item):
    """A pay link. Only the SHA-256 of its token is stored; the token is shown once."""

    token_hash: str
    payable_id: str
    firm_id: str
    client_id: str
    expires_at: datetime
    revoked_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class MethodRemovalLink(Item):
    """A client's "remove this stored method" link, sent in a confirmation email.

    Only the SHA-256 of its token is stored, like a pay link's; DynamoDB's TTL deletes it after
    ``expires_at`` (and it is refused from then on, whenever the TTL sweep gets to it).
    """

    token_hash: str
    firm_id: str
    client_id: str
    method_id: str
    payment_id: str
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)


class PaymentStatus(StrEnum):
    PENDING = "pending"  # reserved, processor not (yet) confirmed
    REQUIRES_ACTION = "requires_action"  # 3-D Secure challenge outstanding, still reserved
    PROCESSING = "processing"  # ACH debit submitted, still reserved
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


RESERVED_STATUSES = frozenset({PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING})


class MethodSummary(Item):
    """What a person needs to recognise a method: never a full number."""

    type: MethodType
    brand: str | None = None
    bank_name: str | None = None
    last4: Last4 | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    holder_name: str | None = None

    def label(self) -> str:
        """``Visa ••••4242`` for a card (its brand), ``Chase ••••6789`` for a bank account."""
        name = self.brand.title() if self.brand else self.bank_name or "Payment method"
        return f"{name} \u2022\u2022\u2022\u2022{self.last4 or ''}"


class BillingDetails(Item):
    name: Name
    line1: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    state: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=50)]
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=12)]
    country: Country


class Consent(Item):
    """A client's recorded agreement (storing a method, or an ACH debit mandate)."""

    text_version: str
    text_sha256: str
    accepted_at: datetime
    ip_address: str
    user_agent: str


class Mandate(Consent):
    """A NACHA WEB debit authorization, kept with the payment (never deleted; >= 2 years)."""

    text: str
    amount_minor: int
    currency: Currency
    account_last4: Last4
    account_validation: str


class BankConnection(Item):
    """A bank account the client just connected through Plaid Link, before the payment is submitted.

    The Plaid access token is only ever stored encrypted (KMS). Expires with ``expires_at``.
    """

    connection_id: str
    payable_id: str
    firm_id: str
    client_id: str
    holder_name: Name
    bank_name: str
    last4: Last4
    account_subtype: str
    account_validation: str
    processor_customer_id: str
    processor_method_id: str
    encrypted_access_token: str
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)


class RefundReason(StrEnum):
    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    OTHER = "other"


class RefundStatus(StrEnum):
    PENDING = "pending"  # written ahead; the amount is held on the payment (refunding_minor)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


# How a succeeded refund is booked: a bill's balance is owed again; trust money goes back to the
# client as a trust disbursement (the request does not ask for it again). See docs/decisions.md.
RefundBooking = Literal["balance_restored", "trust_disbursement"]


# Who made a refund: FirmPay (the firm API) or someone outside it (Stripe's Dashboard), booked from
# Stripe's events so the payable stays right.
RefundOrigin = Literal["firmpay", "outside"]


class RefundSummary(Item):
    """The latest refund of a payment, kept on the PAYMENT item for the confirmation-email stream."""

    refund_id: str
    amount_minor: int
    currency: Currency
    status: RefundStatus
    reason: RefundReason
    booking: RefundBooking
    updated_at: datetime
    origin: RefundOrigin = "firmpay"


class Payment(Item):
    payment_id: str
    payable_id: str
    firm_id: str
    client_id: str
    reference: str
    amount_minor: int = Field(gt=0)
    currency: Currency
    method: MethodSummary
    status: PaymentStatus = PaymentStatus.PENDING
    origin: Literal["pay_page", "autopay", "plan"] = "pay_page"
    idempotency_key: str
    destination: Destination
    destination_account: DepositAccount
    processor_intent_id: str | None = None
    processor_customer_id: str | None = None
    processor_method_id: str | None = None
    processor_mandate_id: str | None = None  # ACH: the mandate Stripe made from our accepted Mandate
    fee_minor: int | None = None
    fee_account: Destination = "operating"
    billing: BillingDetails | None = None
    store_method: bool = False
    store_consent: Consent | None = None
    mandate: Mandate | None = None
    return_code: str | None = None
    stored_method_id: str | None = None
    # Card-testing counter slots (scope, window) this attempt took at reserve; a success gives
    # them back in the settle transaction (a failed attempt keeps them).
    attempt_slots: list[tuple[str, str]] = Field(default_factory=list)
    failure_code: str | None = None
    failure_message: str | None = None
    refunded_minor: int = 0
    # Held by refunds written ahead and not yet confirmed by the processor.
    refunding_minor: int = 0
    last_refund: RefundSummary | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def refundable_minor(self) -> int:
        """What may still be refunded: paid, less refunded and refunds in flight (0 unless succeeded)."""
        if self.status is not PaymentStatus.SUCCEEDED:
            return 0
        return self.amount_minor - self.refunded_minor - self.refunding_minor

    @property
    def amount(self) -> Money:
        return Money(amount_minor=self.amount_minor, currency=self.currency)

    @property
    def reserved(self) -> bool:
        return self.status in RESERVED_STATUSES


class StoredMethod(Item):
    method_id: str
    firm_id: str
    client_id: str
    summary: MethodSummary
    processor_customer_id: str
    processor_method_id: str
    consent: Consent
    status: Literal["active", "revoked", "unusable"] = "active"
    mandate_id: str | None = None
    encrypted_access_token: str | None = None
    created_from_payment_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Review(Item):
    """A short-lived, server-side summary of what the client is about to pay."""

    review_id: str
    payable_id: str
    firm_id: str
    client_id: str
    amount_minor: int = Field(gt=0)
    currency: Currency
    method: MethodSummary
    payable_version: int
    destination: Destination
    destination_account: DepositAccount
    processor_intent_id: str | None = None
    processor_customer_id: str | None = None
    processor_method_id: str | None = None
    billing: BillingDetails | None = None
    bank_connection_id: str | None = None
    mandate_text: str | None = None
    daily_limit: int | None = None
    # Card-testing defence: the client passed a reCAPTCHA check when this review was made, so its
    # one submit is allowed even past the failed-attempt limits.
    human_verified: bool = False
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)


class Refund(Item):
    """A refund of (part of) a succeeded payment, written ahead of the processor call.

    ``refund_id`` is derived from the payment and the firm's idempotency key, so a retried request
    lands on this row and on the same processor Idempotency-Key (``fp-refund-<refund_id>``).
    """

    refund_id: str
    payable_id: str
    payment_id: str
    firm_id: str
    client_id: str
    amount_minor: int = Field(gt=0)
    currency: Currency
    reason: RefundReason
    note: str = ""
    booking: RefundBooking
    status: RefundStatus = RefundStatus.PENDING
    idempotency_key: str
    request_sha256: str
    processor_refund_id: str | None = None
    failure_reason: str | None = None
    completed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    origin: RefundOrigin = "firmpay"

    def summary(self) -> RefundSummary:
        return RefundSummary(
            refund_id=self.refund_id,
            amount_minor=self.amount_minor,
            currency=self.currency,
            status=self.status,
            reason=self.reason,
            booking=self.booking,
            updated_at=self.updated_at,
            origin=self.origin,
        )


class IdempotencyRecord(Item):
    """A firm's idempotency key (``IDEM#<firm>#<key>``): which payment it made, for which request.

    Written in the same transaction as the payment's reserve, so a key is taken exactly when a
    payment exists for it; ``fingerprint`` tells a repeat of the request from a different one.
    """

    firm_id: str
    idempotency_key: str
    fingerprint: str
    payable_id: str
    payment_id: str
    created_at: datetime = Field(default_factory=utcnow)


PlanFrequency = Literal["weekly", "biweekly", "monthly"]


class PlanStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by the firm, or after the last retry of an installment failed
    COMPLETED = "completed"  # the payable was paid (by the plan, or the rest another way)
    CANCELED = "canceled"  # by the firm
    STOPPED = "stopped"  # the payable was voided, or the stored method can no longer be charged


class PaymentPlan(Item):
    """Installments charged to a stored method on a schedule (``PLAN#<plan>`` under the payable).

    While active, the item carries ``gsi1`` ``PLANDUE / <next_due_at>`` so the scheduled run finds
    due plans with one query. Installment ``n`` charges ``installment_minor`` except the last one,
    which charges whatever is left of the balance.
    """

    plan_id: str
    payable_id: str
    firm_id: str
    client_id: str
    method_id: str
    currency: Currency
    installment_minor: int = Field(gt=0)
    installments: int = Field(ge=1)
    frequency: PlanFrequency
    start_on: date
    status: PlanStatus = PlanStatus.ACTIVE
    next_installment: int = 1
    next_due_at: datetime
    # Failed attempts of the current installment since it became due or the plan was resumed
    # (the retry policy counts these), and in all (part of the idempotency key, never reused).
    attempts: int = 0
    failed_tries: int = 0
    charged_minor: int = 0
    last_payment_id: str | None = None
    last_failure_code: str | None = None
    status_reason: str | None = None
    # Installment debits the bank returned after the plan counted them (each undone once).
    returned_payment_ids: list[str] = Field(default_factory=list)
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
