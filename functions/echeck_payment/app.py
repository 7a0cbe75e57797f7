"""echeck_payment: review and submit an eCheck (ACH debit) payment from a pay link.

The routes are in ``firmpay.routes.pay.echeck``; plaid-python loads only when a submit must remove
the bank item of a method the client did not store. The DynamoDB client is built at init.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import make_resolver
from firmpay.observability import logger
from firmpay.routes.pay import echeck
from firmpay.routes.shared import ledger

app = make_resolver()
app.include_router(echeck.router)
ledger()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
