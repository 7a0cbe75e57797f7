"""firm_api: the IAM-authorized firm API (firms, clients, bills, trust requests, pay links, stored
methods, mandates, refunds, payment plans).

A thin adapter: the routes live in ``firmpay.routes.firm``, one Powertools ``Router`` per resource;
Powertools validates each request against the models (which also make the OpenAPI document), and
``firmpay.payments`` does the work and decides who may do it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import make_resolver
from firmpay.observability import logger
from firmpay.routes.firm import ROUTERS

app = make_resolver()
for router in ROUTERS:
    app.include_router(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
