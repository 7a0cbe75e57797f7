"""card_payment: review, submit and complete (after 3-D Secure) a card payment from a pay link;
the client's "Remove it" link for a stored method (it needs the Stripe layer to detach it).

The routes are in ``firmpay.routes.pay.card`` and ``firmpay.routes.pay.method_removal``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import make_resolver
from firmpay.observability import logger
from firmpay.routes.pay import card, method_removal

app = make_resolver()
app.include_router(card.router)
app.include_router(method_removal.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
