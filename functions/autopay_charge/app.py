"""autopay_charge: charge a stored method (direct invoke or ``POST /firm/autopay``) and, on the
schedule, the payment-plan installments that are due.

- direct invoke (``lambda:InvokeFunction``, already authorized by IAM): the payload is an
  ``AutopayRequest``; the answer is ``{"statusCode", "body"}`` like the route's;
- API Gateway event: the IAM-signed route; the caller must be a principal of the firm;
- ``{"action": "run_due_installments"}`` (EventBridge Scheduler, every 15 minutes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import caller_arn, make_resolver
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.api import AutopayOut, AutopayRequest
from firmpay.observability import logger
from firmpay.payments import autopay

app = make_resolver()


@lru_cache(maxsize=1)
def _ledger() -> Ledger:
    return default_ledger()


@app.post(
    "/firm/autopay",
    tags=["autopay"],
    summary="Charge a client's stored payment method",
    description="403 `forbidden` if the caller is not a principal of the firm. A repeated `idempotency_key` "
    "answers with the first result and charges nothing; the same key with another request is a 409.",
)
def charge(request: AutopayRequest) -> AutopayOut:
    now = datetime.now(UTC)
    outcome = autopay.charge_stored_method(_ledger(), StripeGateway(), request, now, caller_arn(app))
    return autopay.autopay_result(outcome)


def _resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


resolve_route = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)(_resolve)


@logger.inject_lambda_context
def _direct(event: Any, context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("action") == "run_due_installments":
        from firmpay.payments.plans import run_due_installments  # the schedule's work only

        time_left = context.get_remaining_time_in_millis
        return run_due_installments(_ledger(), StripeGateway(), datetime.now(UTC), lambda: time_left() / 1000).as_dict()
    return autopay.direct_invoke(_ledger(), StripeGateway(), event, datetime.now(UTC))


def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and "requestContext" in event and "httpMethod" in event:
        return resolve_route(event, context)
    return _direct(event, context)
