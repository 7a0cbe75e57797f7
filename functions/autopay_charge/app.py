"""autopay_charge: charge a stored method (direct invoke or ``POST /firm/autopay``) and, on the
schedule, the payment-plan installments that are due.

- direct invoke (``lambda:InvokeFunction``, already authorized by IAM): the payload is an
  ``AutopayRequest``; the answer is ``{"statusCode", "body"}`` like the route's;
- API Gateway event: the IAM-signed route (``firmpay.routes.autopay``); the caller must be a
  principal of the firm;
- ``{"action": "run_due_installments"}`` (EventBridge Scheduler, every 15 minutes).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import make_resolver
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.observability import logger
from firmpay.payments import autopay
from firmpay.routes import autopay as autopay_route
from firmpay.routes.shared import ledger, now

app = make_resolver()
app.include_router(autopay_route.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def resolve_route(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


@logger.inject_lambda_context
def _direct(event: Any, context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("action") == "run_due_installments":
        from firmpay.payments.plans import run_due_installments  # the schedule's work only

        time_left = context.get_remaining_time_in_millis
        return run_due_installments(ledger(), StripeGateway(), now(), lambda: time_left() / 1000).as_dict()
    return autopay.direct_invoke(ledger(), StripeGateway(), event, now())


def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and "requestContext" in event and "httpMethod" in event:
        return resolve_route(event, context)
    return _direct(event, context)
