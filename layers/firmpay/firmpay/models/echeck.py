"""HTTP requests and responses of the eCheck routes (plaid_link, echeck_payment)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from firmpay.models.ledger import Name

PlaidToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,200}$")]
EntityId = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,5}_[A-Za-z0-9_-]{8,64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkTokenRequest(Strict):
    holder_name: Name = Field(description="The account holder's name as the client typed it.")


class LinkTokenResponse(Strict):
    link_token: str
    expiration: str


class ExchangeRequest(Strict):
    public_token: PlaidToken
    account_id: PlaidToken
    holder_name: Name


class BankConnectionResponse(Strict):
    connection_id: str
    bank_name: str
    last4: str
    account_subtype: str
    label: str = Field(description='e.g. "First Platypus Bank ••••0000"')


class EcheckReviewRequest(Strict):
    amount_minor: StrictInt = Field(gt=0, le=1_000_000_000)
    connection_id: EntityId


class MoneyView(Strict):
    amount_minor: int
    currency: str
    formatted: str


class ReviewResponse(Strict):
    review_id: str
    amount: MoneyView
    payable_kind: str
    payable_number: str
    destination: str
    destination_text: str
    method_label: str
    authorization_text: str | None = None
    authorization_version: str | None = None
    store_consent_text: str
    store_consent_version: str
    expires_at: str


class EcheckSubmitRequest(Strict):
    review_id: EntityId
    authorize_debit: StrictBool = False
    store_method: StrictBool = False


class PaymentResultResponse(Strict):
    payment_id: str
    status: str
    reference: str
    amount: MoneyView
    method_label: str
    balance: MoneyView
    message: str
    client_secret: str | None = None
    failure_code: str | None = None


class MandateOut(Strict):
    """An eCheck payment's debit authorization (NACHA WEB), as the client accepted it."""

    firm_name: str
    payable_kind: str
    payable_number: str
    payment_id: str
    reference: str
    payment_status: str
    return_code: str | None = Field(description="The ACH return code (R01, R02, ...) when the debit was returned.")
    account_holder: str | None
    bank_name: str | None
    account_last4: str
    account_validation: str = Field(description="How the account was verified (Plaid Auth).")
    amount_minor: int
    currency: str
    amount_formatted: str
    text: str = Field(description="The exact authorization text the client accepted.")
    text_version: str
    text_sha256: str
    text_intact: bool = Field(description="Whether the stored text still hashes to the hash recorded at acceptance.")
    accepted_at: str
    ip_address: str
    user_agent: str
