"""pay_link: the hosted pay page behind a pay link, its JSON, new-link requests, OpenAPI, assets.

Its routes read only a path parameter, so the resolver validates nothing (no pydantic validation
at cold start); jinja2, the mailer and SES load on first use. The DynamoDB client is built at
init (Lambda's init phase runs at full CPU): the cold start stays close to "python + a client".
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import make_resolver
from firmpay.observability import logger
from firmpay.routes.pay import documents, link
from firmpay.routes.shared import ledger

app = make_resolver(validate_requests=False)
app.include_router(link.router)
app.include_router(documents.router)
ledger()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
