"""HTTP requests and responses of the API, by route family; the OpenAPI document is generated from them.

Requests are strict: unknown fields, wrong types (``10.5``, ``"100"`` or ``true`` for an amount),
out-of-range values and control characters in text are refused with a 422 ``invalid_request``
before any use case runs. Responses say exactly what leaves the service: never a link token's
hash, a processor id or an internal counter.

Sections: shared types, then one section per route family. The pay page's, card and eCheck
models still live in ``models/pay.py``, ``models/card.py`` and ``models/echeck.py``; new route
families add their section here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)

from firmpay.models.ledger import (
    COUNTRY_CURRENCY,
    Client,
    Country,
    DepositAccount,
    Destination,
    Email,
    Firm,
    Last4,
    Payable,
    PayableKind,
    PayableStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundBooking,
    RefundReason,
    RefundStatus,
    Region,
    StoredMethod,
    check_region,
)
from firmpay.money import MAXIMUM_AMOUNT_MINOR, Currency

# == Shared =======================================================================================

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_text(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` (pydantic alone would also take a number of seconds since 1970)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


# Text a person typed, on one line: no control characters (they would end up in email headers).
_ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
# Free text that may span lines (a memo): tabs and line breaks, no other control characters.
_MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

Amount = Annotated[
    StrictInt, Field(gt=0, le=MAXIMUM_AMOUNT_MINOR, description="Integer minor units (cents); never a float.")
]
IsoDate = Annotated[date, BeforeValidator(_iso_date_text), Field(description="ISO date, YYYY-MM-DD.")]
ResourceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,80}$")]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_ONE_LINE)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=_ONE_LINE)]
Memo = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=_MULTI_LINE)]
PayableNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f<>]+$")
]


class ApiRequest(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiResponse(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorOut(ApiResponse):
    """Every error answer. `code` is stable (part of the contract); `message` is for people."""

    code: str
    message: str
    details: dict[str, Any] | None = None


class MoneyOut(ApiResponse):
    amount_minor: int = Field(description="Integer minor units (cents).")
    currency: Currency


# == Firm API (/firm/..., IAM-signed; see firmpay.payments.firm_admin) =============================

# -- requests --


class DepositAccountIn(ApiRequest):
    name: PersonName = Field(description="How the firm names the account, e.g. 'IOLTA Trust (Chase)'.")
    last4: Last4


class CreateFirmRequest(ApiRequest):
    """A firm. The caller's IAM principal becomes the firm's principal."""

    name: PersonName
    country: Country
    region: Region = Field(
        description="Two-letter code of the US state (or DC, PR, territory) or Canadian province where the firm practises."
    )
    currency: Currency = Field(description="USD for US firms, CAD for Canadian firms.")
    language: Literal["en", "fr"] = Field(default="en", description="'fr' is offered to Canadian firms only.")
    operating_account: DepositAccountIn
    trust_account: DepositAccountIn
    reply_to_email: Email
    echeck_max_minor: Amount = Field(default=2_500_000, description="Largest eCheck payment (US firms).")
    echeck_daily_limit: Annotated[StrictInt, Field(ge=1, le=100)] = Field(
        default=5, description="eCheck payments per client and day (US firms)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> CreateFirmRequest:
        if COUNTRY_CURRENCY[self.country] != self.currency:
            raise ValueError("US firms bill in USD and Canadian firms in CAD")
        if self.language == "fr" and self.country != "CA":
            raise ValueError("French is offered to Canadian firms only")
        check_region(self.country, self.region)
        return self


class CreateClientRequest(ApiRequest):
    name: PersonName
    email: Email


class LineItemIn(ApiRequest):
    description: Description
    amount_minor: Amount


class _PayableRequest(ApiRequest):
    client_id: ResourceId
    number: PayableNumber = Field(
        description="The firm's own number, unique per firm among its bills (or its trust requests)."
    )
    issued_on: IsoDate
    due_on: IsoDate
    currency: Currency = Field(description="Must be the firm's currency.")
    memo: Memo = ""

    @model_validator(mode="after")
    def _due_after_issue(self) -> _PayableRequest:
        if self.due_on < self.issued_on:
            raise ValueError("due_on must not be before issued_on")
        return self


class CreateBillRequest(_PayableRequest):
    """A bill: its total is the sum of its line items."""

    line_items: Annotated[list[LineItemIn], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _total_in_range(self) -> CreateBillRequest:
        if sum(item.amount_minor for item in self.line_items) > MAXIMUM_AMOUNT_MINOR:
            raise ValueError(f"the total must not exceed {MAXIMUM_AMOUNT_MINOR} minor units")
        return self


class CreateTrustRequestRequest(_PayableRequest):
    """A trust request: a deposit of ``amount_minor`` into the firm's trust account."""

    amount_minor: Amount


class IssueLinkRequest(ApiRequest):
    expires_in_days: Annotated[StrictInt, Field(ge=1, le=365)] | None = Field(
        default=None, description="Days until the link expires (default: the deployment's, 90)."
    )


# -- responses --


class DepositAccountOut(ApiResponse):
    name: str
    last4: str

    @classmethod
    def of(cls, account: DepositAccount) -> DepositAccountOut:
        return cls(name=account.name, last4=account.last4)


class FirmOut(ApiResponse):
    firm_id: str
    name: str
    country: Country
    region: str | None
    currency: Currency
    language: Literal["en", "fr"]
    operating_account: DepositAccountOut
    trust_account: DepositAccountOut
    reply_to_email: str
    principals: list[str] = Field(description="IAM principals allowed to manage the firm.")
    echeck_max_minor: int
    echeck_daily_limit: int
    created_at: datetime

    @classmethod
    def of(cls, firm: Firm) -> FirmOut:
        return cls(
            firm_id=firm.firm_id,
            name=firm.name,
            country=firm.country,
            region=firm.region,
            currency=firm.currency,
            language=firm.language,
            operating_account=DepositAccountOut.of(firm.operating_account),
            trust_account=DepositAccountOut.of(firm.trust_account),
            reply_to_email=firm.reply_to_email,
            principals=list(firm.principals),
            echeck_max_minor=firm.echeck_max_minor,
            echeck_daily_limit=firm.echeck_daily_limit,
            created_at=firm.created_at,
        )


class ClientOut(ApiResponse):
    client_id: str
    firm_id: str
    name: str
    email: str
    created_at: datetime

    @classmethod
    def of(cls, client: Client) -> ClientOut:
        return cls(
            client_id=client.client_id,
            firm_id=client.firm_id,
            name=client.name,
            email=client.email,
            created_at=client.created_at,
        )


class LineItemOut(ApiResponse):
    description: str
    amount: MoneyOut


class RefundOut(ApiResponse):
    """A refund of (part of) a payment. ``pending`` until the processor confirms it."""

    refund_id: str
    payment_id: str
    amount: MoneyOut
    status: RefundStatus
    reason: RefundReason
    note: str
    booking: RefundBooking = Field(
        description="`balance_restored`: a bill's balance is owed again; `trust_disbursement`: trust money "
        "returned to the client (the trust request does not ask for it again)."
    )
    failure_reason: str | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, refund: Refund) -> RefundOut:
        return cls(
            refund_id=refund.refund_id,
            payment_id=refund.payment_id,
            amount=MoneyOut(amount_minor=refund.amount_minor, currency=refund.currency),
            status=refund.status,
            reason=refund.reason,
            note=refund.note,
            booking=refund.booking,
            failure_reason=refund.failure_reason,
            created_at=refund.created_at,
            completed_at=refund.completed_at,
        )


class PaymentOut(ApiResponse):
    payment_id: str
    reference: str
    amount: MoneyOut
    status: PaymentStatus
    method: str = Field(description="What the client paid with, e.g. 'Visa ••••4242'.")
    destination: Destination
    origin: Literal["pay_page", "autopay", "plan"]
    fee_minor: int | None
    failure_code: str | None
    return_code: str | None = Field(description="ACH return code (R01, ...) of a returned eCheck.")
    refunded: MoneyOut = Field(description="Refunded so far (succeeded refunds).")
    refunds: list[RefundOut] = Field(default_factory=list, description="Oldest first.")
    created_at: datetime


class PayableOut(ApiResponse):
    """A bill or a trust request; ``total = paid + pending + balance`` always holds."""

    payable_id: str
    firm_id: str
    client_id: str
    kind: PayableKind
    number: str
    issued_on: date
    due_on: date
    currency: Currency
    line_items: list[LineItemOut]
    memo: str
    total: MoneyOut
    paid: MoneyOut
    pending: MoneyOut = Field(description="Reserved by payments the processor has not confirmed yet.")
    balance: MoneyOut
    refunded: MoneyOut = Field(
        description="Refunded to the client; for a trust request, trust disbursements outside total = paid + "
        "pending + balance."
    )
    status: PayableStatus
    voided_at: datetime | None
    has_active_link: bool = Field(description="Whether a pay link was issued and not revoked (it may have expired).")
    payments: list[PaymentOut] = Field(description="Oldest first.")
    created_at: datetime

    @classmethod
    def of(
        cls, payable: Payable, payments: list[Payment] | None = None, refunds: list[Refund] | None = None
    ) -> PayableOut:
        def money(amount_minor: int) -> MoneyOut:
            return MoneyOut(amount_minor=amount_minor, currency=payable.currency)

        return cls(
            payable_id=payable.payable_id,
            firm_id=payable.firm_id,
            client_id=payable.client_id,
            kind=payable.kind,
            number=payable.number,
            issued_on=payable.issued_on,
            due_on=payable.due_on,
            currency=payable.currency,
            line_items=[
                LineItemOut(description=i.description, amount=money(i.amount_minor)) for i in payable.line_items
            ],
            memo=payable.memo,
            total=money(payable.total_minor),
            paid=money(payable.paid_minor),
            pending=money(payable.pending_minor),
            balance=money(payable.balance_minor),
            refunded=money(payable.refunded_minor),
            status=payable.status,
            voided_at=payable.voided_at,
            has_active_link=payable.current_link_hash is not None,
            payments=[
                PaymentOut(
                    payment_id=p.payment_id,
                    reference=p.reference,
                    amount=money(p.amount_minor),
                    status=p.status,
                    method=p.method.label(),
                    destination=p.destination,
                    origin=p.origin,
                    fee_minor=p.fee_minor,
                    failure_code=p.failure_code,
                    return_code=p.return_code,
                    refunded=money(p.refunded_minor),
                    refunds=[RefundOut.of(r) for r in refunds or [] if r.payment_id == p.payment_id],
                    created_at=p.created_at,
                )
                for p in payments or []
            ],
            created_at=payable.created_at,
        )


class LinkOut(ApiResponse):
    """A new pay link. The URL carries the token: it is shown in this answer only, never again."""

    url: str
    expires_at: datetime


# == Autopay (/firm/autopay and lambda:InvokeFunction; see firmpay.payments.autopay) ===============

IdempotencyKey = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
    Field(description="The firm's own key for this charge (e.g. its invoice run id); a repeat never charges again."),
]


class AutopayRequest(ApiRequest):
    """Charge a method the client stored (with consent) for one of the firm's payables."""

    firm_id: ResourceId
    payable_id: ResourceId
    method_id: ResourceId = Field(description="A stored method of the payable's client (see .../methods).")
    amount_minor: Amount
    currency: Currency | None = Field(default=None, description="If given, must be the payable's currency.")
    idempotency_key: IdempotencyKey


class AutopayOut(ApiResponse):
    """The payment an autopay request made (or, for a repeated key, made the first time)."""

    payment_id: str
    reference: str
    payable_id: str
    method: str = Field(description="e.g. 'Visa ••••4242'.")
    origin: Literal["pay_page", "autopay", "plan"]
    amount: MoneyOut
    status: PaymentStatus = Field(description="succeeded; processing (eCheck, until it settles); failed; pending.")
    failure_code: str | None = Field(
        description="Why it failed, e.g. `authentication_required` (the client is emailed a link to pay on-session)."
    )
    balance: MoneyOut = Field(description="The payable's balance after this payment.")
    replayed: bool = Field(description="True when the idempotency key was seen before: nothing was charged now.")
    created_at: datetime


# == Refunds (POST /firm/firms/{firm_id}/payables/{payable_id}/payments/{payment_id}/refunds) ======

RefundIdempotencyKey = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,255}$"),
    Field(description="The firm's key for this refund: a retry with the same key never refunds twice."),
]


class CreateRefundRequest(ApiRequest):
    """Refund a succeeded payment in full (no ``amount_minor``) or in part."""

    amount_minor: Amount | None = Field(
        default=None, description="Integer minor units; default: all that is left to refund."
    )
    reason: RefundReason
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=_ONE_LINE)] = Field(
        default="", description="Free text for the firm's records; required when the reason is `other`."
    )
    idempotency_key: RefundIdempotencyKey | None = Field(
        default=None, description="Or the `Idempotency-Key` header (one of the two is required)."
    )

    @model_validator(mode="after")
    def _note_for_other(self) -> CreateRefundRequest:
        if self.reason is RefundReason.OTHER and not self.note:
            raise ValueError("a note is required when the reason is 'other'")
        return self


# == Stored methods (/firm/.../clients/{client}/methods; see firmpay.payments.firm_admin) ==========


class StoredMethodOut(ApiResponse):
    """A payment method a client stored with consent. Never a processor id or a full number."""

    method_id: str
    type: str = Field(description="The method: `card`, `echeck` (a US bank account), or one added later.")
    label: str = Field(description="e.g. 'Visa ••••4242' or 'Chase ••••6789'.")
    brand: str | None = Field(description="Card brand (cards).")
    bank_name: str | None = Field(description="Bank name (bank accounts).")
    last4: str | None
    exp_month: int | None = Field(description="Card expiry month (cards).")
    exp_year: int | None = Field(description="Card expiry year (cards).")
    status: Literal["active", "revoked", "unusable"] = Field(
        description="`revoked`: removed by the firm or the client; `unusable`: declined or returned by the bank."
    )
    stored_at: datetime
    stored_from_payment_id: str | None = Field(description="The payment during which the client stored it.")

    @classmethod
    def of(cls, method: StoredMethod) -> StoredMethodOut:
        summary = method.summary
        return cls(
            method_id=method.method_id,
            type=summary.type,
            label=summary.label(),
            brand=summary.brand,
            bank_name=summary.bank_name,
            last4=summary.last4,
            exp_month=summary.exp_month,
            exp_year=summary.exp_year,
            status=method.status,
            stored_at=method.created_at,
            stored_from_payment_id=method.created_from_payment_id,
        )


class StoredMethodsOut(ApiResponse):
    methods: list[StoredMethodOut] = Field(description="Oldest first, revoked ones included.")


# == Payment plans (/firm/.../payables/{payable}/plans; see firmpay.payments.plans) ================


class CreatePlanRequest(ApiRequest):
    """Installments on a stored method: give the installment amount *or* the number of installments."""

    method_id: ResourceId = Field(description="A stored method of the payable's client.")
    installment_minor: Amount | None = Field(default=None, description="Each installment; the last one is the rest.")
    installments: Annotated[StrictInt, Field(ge=1, le=120)] | None = Field(
        default=None, description="Number of installments; the balance is split evenly, the last one takes the rest."
    )
    frequency: Literal["weekly", "biweekly", "monthly"] = Field(
        description="monthly: the same day of the month as `start_on`, or the month's last day when it has no such day."
    )
    start_on: IsoDate = Field(description="Due date of the first installment (today or later).")

    @model_validator(mode="after")
    def _amount_or_count(self) -> CreatePlanRequest:
        if (self.installment_minor is None) == (self.installments is None):
            raise ValueError("give exactly one of installment_minor and installments")
        return self


class PlanOut(ApiResponse):
    plan_id: str
    payable_id: str
    method_id: str
    frequency: Literal["weekly", "biweekly", "monthly"]
    start_on: date
    installment: MoneyOut = Field(description="Each installment but the last, which charges the rest of the balance.")
    installments: int
    next_installment: int = Field(description="Number of the next installment to charge (1-based).")
    next_due_at: datetime | None = Field(description="When the next charge is made (null unless active).")
    attempts: int = Field(description="Failed attempts of the next installment so far.")
    charged: MoneyOut = Field(description="Collected by this plan so far.")
    status: Literal["active", "paused", "completed", "canceled", "stopped"]
    status_reason: str | None = Field(
        description="Why it is paused or stopped: paused_by_firm, installment_failed, authentication_required, "
        "payable_void, paid_another_way, method_unusable; debit_returned: a counted eCheck installment was "
        "returned by the bank, so the plan is active again and collects that amount from a day later."
    )
    last_payment_id: str | None
    last_failure_code: str | None
    created_at: datetime


class PlansOut(ApiResponse):
    plans: list[PlanOut] = Field(description="Oldest first.")
