"""card_payment: review, submit and complete (after 3-D Secure) a card payment from a pay link;
the client's "Remove it" link for a stored method (it needs the Stripe layer to detach it)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import base_path, client_ip, html_response, make_resolver, user_agent
from firmpay.config import get_settings
from firmpay.gateways.captcha import RecaptchaVerifier
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.card import (
    CardCompleteRequest,
    CardResultResponse,
    CardReviewRequest,
    CardReviewResponse,
    CardSubmitRequest,
)
from firmpay.models.ledger import PayLink
from firmpay.observability import logger
from firmpay.payments import card, method_removal
from firmpay.payments.links import find_link, resolve_link

app = make_resolver()


@lru_cache(maxsize=1)
def _ledger() -> Ledger:
    return default_ledger()


@lru_cache(maxsize=1)
def _verifier() -> RecaptchaVerifier:
    return RecaptchaVerifier.from_settings()


def _usable_link(token: str, now: datetime) -> PayLink:
    """The link in one GetItem (submit's budget); expired or revoked links get the usual 410."""
    link = find_link(_ledger(), token)
    if not link.is_usable(now):
        resolve_link(_ledger(), token, now)  # raises PayLinkExpired
    return link


@app.post("/api/pay/<token>/card/review")
def review_card(token: str, request: CardReviewRequest) -> CardReviewResponse:
    now = datetime.now(UTC)
    context = resolve_link(_ledger(), token, now)
    review = card.create_card_review(
        _ledger(),
        StripeGateway(),
        _verifier(),
        context,
        request.amount_minor,
        request.payment_method_id,
        request.billing,
        request.captcha_token,
        client_ip(app),
        now,
        get_settings().review_ttl_seconds,
    )
    return card.card_review_response(review, context)


@app.post("/api/pay/<token>/card/submit")
def submit_card(token: str, request: CardSubmitRequest) -> CardResultResponse:
    now = datetime.now(UTC)
    outcome = card.submit_card(
        _ledger(),
        StripeGateway(),
        _verifier(),
        _usable_link(token, now),
        request.review_id,
        request.store_method,
        request.captcha_token,
        client_ip(app),
        user_agent(app),
        now,
    )
    return card.card_result(outcome)


@app.post("/api/pay/<token>/card/complete")
def complete_card(token: str, request: CardCompleteRequest) -> CardResultResponse:
    now = datetime.now(UTC)
    link = _usable_link(token, now)
    outcome = card.complete_card(_ledger(), StripeGateway(), link, request.payment_id, now)
    return card.card_result(outcome)


@app.get("/methods/remove/<token>")
def method_removal_page(token: str) -> Response[str]:
    from firmpay.web.pages import render_method_removal

    base = base_path(app.current_event.raw_event)
    try:
        view = method_removal.find_removal(_ledger(), token, datetime.now(UTC))
    except method_removal.RemovalLinkNotFound:
        return html_response(404, render_method_removal("not_found", base=base))
    return html_response(200, render_method_removal("already_removed" if view.removed else "confirm", view, base))


@app.post("/methods/remove/<token>")
def remove_stored_method(token: str) -> Response[str]:
    from firmpay.web.pages import render_method_removal

    base = base_path(app.current_event.raw_event)
    try:
        view, result = method_removal.remove_method(
            _ledger(), StripeGateway(), token, datetime.now(UTC), method_removal.plaid_item_remover()
        )
    except method_removal.RemovalLinkNotFound:
        return html_response(404, render_method_removal("not_found", base=base))
    return html_response(503 if result == "retry" else 200, render_method_removal(result, view, base))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
