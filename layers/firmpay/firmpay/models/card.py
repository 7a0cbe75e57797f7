"""HTTP requests and responses of the card routes (card_payment) and the Stripe webhook."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from firmpay.models.echeck import EntityId, PaymentResultResponse, ReviewResponse, Strict
from firmpay.models.ledger import BillingDetails
from firmpay.money import MAXIMUM_AMOUNT_MINOR

PaymentMethodId = Annotated[str, StringConstraints(pattern=r"^pm_[A-Za-z0-9_]{6,100}$")]
CaptchaToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-.:+/=~]{1,4096}$")]
PaymentId = Annotated[str, StringConstraints(pattern=r"^pay_[0-9a-f]{24}$")]

CardResultStatus = Literal["succeeded", "requires_action", "failed", "pending"]


class CardReviewRequest(Strict):
    amount_minor: StrictInt = Field(gt=0, le=MAXIMUM_AMOUNT_MINOR, description="The amount to pay, in minor units.")
    payment_method_id: PaymentMethodId = Field(description="The card, as Stripe.js created it (pm_...).")
    billing: BillingDetails
    captcha_token: CaptchaToken | None = Field(default=None, description="Only when asked (429 captcha_required).")


class CardReviewResponse(ReviewResponse):
    currency: str
    card_brand: str
    card_last4: str
    billing_name: str


class CardSubmitRequest(Strict):
    review_id: EntityId
    store_method: StrictBool = False
    captcha_token: CaptchaToken | None = None


class CardCompleteRequest(Strict):
    payment_id: PaymentId


class CardResultResponse(PaymentResultResponse):
    status: CardResultStatus
    decline_code: str | None = Field(
        default=None,
        description="card_declined, insufficient_funds, expired_card, incorrect_cvc, processing_error, "
        "authentication_failed or canceled; only when status is failed.",
    )


class StripeEventData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    object: dict[str, Any]


class StripeEvent(BaseModel):
    """The part of a Stripe webhook event we read (after the signature check)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    type: str
    created: int | None = None
    livemode: bool | None = None
    data: StripeEventData


class WebhookAnswer(Strict):
    received: bool = True
    outcome: str
