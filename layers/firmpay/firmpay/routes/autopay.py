"""``POST /firm/autopay``: a firm's backend charges a client's stored method (IAM-signed)."""

from __future__ import annotations

from firmpay.api import caller_arn, make_router
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.models.api import AutopayOut, AutopayRequest
from firmpay.payments import autopay
from firmpay.routes.shared import ledger, now

router = make_router()


@router.post(
    "/firm/autopay",
    tags=["autopay"],
    summary="Charge a client's stored payment method",
    description="403 `forbidden` if the caller is not a principal of the firm. A repeated `idempotency_key` "
    "answers with the first result and charges nothing; the same key with another request is a 409.",
)
def charge(request: AutopayRequest) -> AutopayOut:
    outcome = autopay.charge_stored_method(ledger(), StripeGateway(), request, now(), caller_arn(router))
    return autopay.autopay_result(outcome)
