"""HTTP requests and responses of the firm API (``/firm/...``). Strict: unknown fields, wrong
types, floats or strings for amounts, and out-of-range values are refused with a 422."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from firmpay.models.ledger import Country, Email, Last4, Name
from firmpay.money import Currency

Amount = Annotated[StrictInt, Field(gt=0, le=1_000_000_000, description="Integer minor units (cents).")]
Number = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\s<>]+$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DepositAccountIn(Request):
    name: Name
    last4: Last4


class CreateFirmRequest(Request):
    name: Name
    country: Country
    currency: Currency
    language: Literal["en", "fr"] = "en"
    operating_account: DepositAccountIn
    trust_account: DepositAccountIn
    reply_to_email: Email
    echeck_max_minor: Amount = 2_500_000
    echeck_daily_limit: Annotated[StrictInt, Field(ge=1, le=100)] = 5

    @model_validator(mode="after")
    def _consistent(self) -> CreateFirmRequest:
        if (self.country, self.currency) not in (("US", "USD"), ("CA", "CAD")):
            raise ValueError("US firms bill in USD and Canadian firms in CAD")
        if self.language == "fr" and self.country != "CA":
            raise ValueError("French is offered for Canadian firms")
        return self


class CreateClientRequest(Request):
    name: Name
    email: Email


class LineItemIn(Request):
    description: Text
    amount_minor: Amount


class _Dated(Request):
    client_id: Annotated[str, StringConstraints(max_length=80)]
    number: Number
    issued_on: date
    due_on: date

    @model_validator(mode="after")
    def _due_after_issue(self) -> _Dated:
        if self.due_on < self.issued_on:
            raise ValueError("due_on must not be before issued_on")
        return self


class CreateBillRequest(_Dated):
    currency: Currency
    line_items: Annotated[list[LineItemIn], Field(min_length=1, max_length=100)]
    memo: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class CreateTrustRequestRequest(_Dated):
    currency: Currency
    amount_minor: Amount
    memo: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class IssueLinkRequest(Request):
    expires_in_days: Annotated[StrictInt, Field(ge=1, le=365)] | None = None


class MoneyOut(BaseModel):
    amount_minor: int
    currency: str


class PaymentOut(BaseModel):
    payment_id: str
    reference: str
    amount: MoneyOut
    status: str
    method: str
    destination: str
    fee_minor: int | None
    failure_code: str | None
    return_code: str | None
    origin: str
    created_at: datetime


class PayableOut(BaseModel):
    payable_id: str
    firm_id: str
    client_id: str
    kind: str
    number: str
    issued_on: date
    due_on: date
    currency: str
    line_items: list[LineItemIn]
    memo: str
    total: MoneyOut
    paid: MoneyOut
    pending: MoneyOut
    balance: MoneyOut
    status: str
    has_active_link: bool
    payments: list[PaymentOut] = []


class LinkOut(BaseModel):
    url: str
    expires_at: datetime


class SentOut(BaseModel):
    message_id: str
    url_expires_at: datetime
