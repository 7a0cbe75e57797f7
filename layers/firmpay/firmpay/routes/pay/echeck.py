"""eCheck (ACH debit) payments from a pay link: review, then submit with the debit authorization."""

from __future__ import annotations

from firmpay.api import client_ip, make_router, user_agent
from firmpay.config import get_settings
from firmpay.gateways.kms import KmsVault
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.models.echeck import EcheckReviewRequest, EcheckSubmitRequest, PaymentResultResponse, ReviewResponse
from firmpay.payments import echeck
from firmpay.payments.links import resolve_link, usable_link
from firmpay.payments.presenters import payment_result, review_response
from firmpay.routes.shared import bank_linker, ledger, now

router = make_router()


@router.post("/api/pay/<token>/echeck/review")
def review_echeck(token: str, request: EcheckReviewRequest) -> ReviewResponse:
    at = now()
    context = resolve_link(ledger(), token, at)
    ttl = get_settings().review_ttl_seconds
    review = echeck.create_echeck_review(
        ledger(), StripeGateway(), context, request.amount_minor, request.connection_id, at, ttl
    )
    payable, firm = context.payable, context.firm
    return review_response(review, payable.kind, payable.number, firm.name, firm.locale)


@router.post("/api/pay/<token>/echeck/submit")
def submit_echeck(token: str, request: EcheckSubmitRequest) -> PaymentResultResponse:
    at = now()
    outcome = echeck.submit_echeck(
        ledger(),
        StripeGateway(),
        None if request.store_method else bank_linker(),  # Plaid only to remove an unstored item
        KmsVault(),
        usable_link(ledger(), token, at),
        request.review_id,
        request.authorize_debit,
        request.store_method,
        client_ip(router),
        user_agent(router),
        at,
    )
    return payment_result(outcome.payment, outcome.balance_minor, outcome.locale)
