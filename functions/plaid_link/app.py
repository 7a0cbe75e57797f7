"""plaid_link: Plaid Link token and public-token exchange for eCheck payments (US firms).

The routes are in ``firmpay.routes.pay.bank_link``; plaid-python loads on their first call. The
DynamoDB client is built at init.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import make_resolver
from firmpay.observability import logger
from firmpay.routes.pay import bank_link
from firmpay.routes.shared import ledger

app = make_resolver()
app.include_router(bank_link.router)
ledger()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
