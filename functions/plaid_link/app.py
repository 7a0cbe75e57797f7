"""plaid_link: Plaid Link token and public-token exchange for eCheck payments (US firms)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import json_response, make_resolver
from firmpay.gateways.kms import KmsVault
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.echeck import BankConnectionResponse, ExchangeRequest, LinkTokenRequest, LinkTokenResponse
from firmpay.observability import logger
from firmpay.payments import echeck
from firmpay.payments.links import resolve_link
from firmpay.payments.ports import BankLinker

app = make_resolver()


# Built once per container, at init (Lambda's init phase runs at full CPU).
_LEDGER = default_ledger()


def _ledger() -> Ledger:
    return _LEDGER


@lru_cache(maxsize=1)
def _linker() -> BankLinker:
    from firmpay.gateways.plaid_gateway import PlaidGateway  # plaid-python: imported only here, on use

    return PlaidGateway()


@app.post("/api/pay/<token>/echeck/link-token")
def create_link_token(token: str, request: LinkTokenRequest) -> Any:
    context = resolve_link(_ledger(), token, datetime.now(UTC))
    echeck.ensure_echeck_offered(context.firm)
    link = echeck.start_bank_link(_linker(), context.firm, context.client.client_id)
    return json_response(
        200, LinkTokenResponse(link_token=link.link_token, expiration=str(link.expiration)).model_dump()
    )


@app.post("/api/pay/<token>/echeck/exchange")
def exchange_public_token(token: str, request: ExchangeRequest) -> Any:
    now = datetime.now(UTC)
    context = resolve_link(_ledger(), token, now)
    echeck.ensure_echeck_offered(context.firm)
    connection = echeck.connect_bank_account(
        _ledger(),
        _linker(),
        StripeGateway(),
        KmsVault(),
        context,
        request.public_token,
        request.account_id,
        request.holder_name,
        now,
    )
    label = f"{connection.bank_name} \u2022\u2022\u2022\u2022{connection.last4}"
    body = BankConnectionResponse(
        connection_id=connection.connection_id,
        bank_name=connection.bank_name,
        last4=connection.last4,
        account_subtype=connection.account_subtype,
        label=label,
    )
    return json_response(200, body.model_dump())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
