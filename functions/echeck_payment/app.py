"""echeck_payment: review and submit an eCheck (ACH debit) payment from a pay link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import client_ip, json_response, make_resolver, user_agent
from firmpay.config import get_settings
from firmpay.gateways.kms import KmsVault
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.echeck import EcheckReviewRequest, EcheckSubmitRequest
from firmpay.observability import logger
from firmpay.payments import echeck
from firmpay.payments.links import find_link, resolve_link
from firmpay.payments.ports import BankLinker
from firmpay.payments.presenters import payment_result, review_response

app = make_resolver()


# Built once per container, at init (Lambda's init phase runs at full CPU).
_LEDGER = default_ledger()


def _ledger() -> Ledger:
    return _LEDGER


def _linker() -> BankLinker:
    from firmpay.gateways.plaid_gateway import PlaidGateway  # plaid-python: only to remove unstored items

    return PlaidGateway()


@app.post("/api/pay/<token>/echeck/review")
def review_echeck(token: str, request: EcheckReviewRequest) -> Any:
    now = datetime.now(UTC)
    context = resolve_link(_ledger(), token, now)
    review = echeck.create_echeck_review(
        _ledger(),
        StripeGateway(),
        context,
        request.amount_minor,
        request.connection_id,
        now,
        get_settings().review_ttl_seconds,
    )
    payable, firm = context.payable, context.firm
    body = review_response(review, payable.kind, payable.number, firm.name, firm.locale)
    return json_response(200, body.model_dump())


@app.post("/api/pay/<token>/echeck/submit")
def submit_echeck(token: str, request: EcheckSubmitRequest) -> Any:
    now = datetime.now(UTC)
    link = find_link(_ledger(), token)
    if not link.is_usable(now):
        resolve_link(_ledger(), token, now)  # raises the same 410 as every pay route
    outcome = echeck.submit_echeck(
        _ledger(),
        StripeGateway(),
        None if request.store_method else _linker(),
        KmsVault(),
        link,
        request.review_id,
        request.authorize_debit,
        request.store_method,
        client_ip(app),
        user_agent(app),
        now,
    )
    body = payment_result(outcome.payment, outcome.balance_minor, outcome.locale)
    return json_response(200, body.model_dump())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
