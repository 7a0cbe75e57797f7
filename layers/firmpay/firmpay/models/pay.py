"""The pay link's JSON (``GET /api/pay/{token}``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from firmpay.models.echeck import MoneyView


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class FirmView(View):
    name: str
    country: str
    currency: str
    locale: str


class LineItemView(View):
    description: str
    amount: MoneyView


class PayableView(View):
    kind: Literal["bill", "trust_request"]
    number: str
    issued_on: date
    due_on: date
    memo: str
    line_items: list[LineItemView]
    total: MoneyView
    paid: MoneyView
    pending: MoneyView
    balance: MoneyView
    status: str
    destination: Literal["operating", "trust"]


class PayLinkResponse(View):
    firm: FirmView
    payable: PayableView
    client_name: str
    # The offered methods' keys, in page order (``card``, ``echeck``...; ``payments.methods``).
    payment_options: list[str]
    minimum_amount: MoneyView


class NewLinkResponse(View):
    code: str
    message: str
