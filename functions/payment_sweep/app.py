"""payment_sweep (EventBridge, every 5 minutes): settle, release or cancel payments left reserved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.config import get_settings
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import default_ledger
from firmpay.observability import logger
from firmpay.payments.sweep import sweep_pending


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep_pending(
        default_ledger(),
        StripeGateway(),
        datetime.now(UTC),
        abandon_after=timedelta(seconds=get_settings().review_ttl_seconds),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return report.as_dict()
