"""stripe_webhook: Stripe's signed events, verified on the raw body, reconciled with the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import make_resolver
from firmpay.config import get_settings
from firmpay.gateways.stripe_gateway import StripeGateway, webhook_signature_valid
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.card import WebhookAnswer
from firmpay.observability import logger
from firmpay.payments import webhooks
from firmpay.secrets import get_secret

app = make_resolver()


@lru_cache(maxsize=1)
def _ledger() -> Ledger:
    return default_ledger()


@app.post("/webhooks/stripe")
def stripe_webhook() -> WebhookAnswer:
    event = webhooks.read_event(
        app.current_event.decoded_body or "",
        app.current_event.headers.get("Stripe-Signature"),  # case-insensitive in Powertools 3
        get_secret(get_settings().stripe_webhook_secret_param),
        webhook_signature_valid,
    )
    outcome = webhooks.reconcile_event(_ledger(), StripeGateway(), event, datetime.now(UTC))
    return WebhookAnswer(outcome=outcome)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
