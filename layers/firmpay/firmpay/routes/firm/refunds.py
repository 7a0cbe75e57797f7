"""Refunds of a payment, in full or in part, idempotent on the firm's key."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header

from firmpay.api import make_router
from firmpay.models.api import CreateRefundRequest, RefundIdempotencyKey, RefundOut
from firmpay.payments import refunds
from firmpay.routes.firm.access import ACCESS, PAYABLE, authorized_firm, ledger, now

router = make_router()


@router.post(
    f"{PAYABLE}/payments/<payment_id>/refunds",
    status_code=201,
    tags=["firm"],
    summary="Refund a payment in full or in part",
    description=f"{ACCESS} 404 `not_found` for an unknown payment; 409 `payment_not_refundable` unless it "
    "succeeded (an eCheck once settled); 422 `refund_exceeds_payment` past what is left to refund; 409 "
    "`idempotency_key_reused` for a key already used with another request. A retry with the same key answers "
    "the same refund and never refunds twice.",
)
def refund_payment(
    firm_id: str,
    payable_id: str,
    payment_id: str,
    request: CreateRefundRequest,
    idempotency_key: Annotated[RefundIdempotencyKey | None, Header()] = None,
) -> RefundOut:
    from firmpay.gateways.stripe_gateway import StripeGateway  # stripe is loaded by refunds only

    firm = authorized_firm(router, firm_id)
    key = refunds.idempotency_key_of(request, idempotency_key)
    refund = refunds.refund_payment(ledger(), StripeGateway(), firm, payable_id, payment_id, request, key, now())
    return RefundOut.of(refund)
