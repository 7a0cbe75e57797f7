"""Card payments from a pay link: review, submit, and complete after 3-D Secure."""

from __future__ import annotations

from functools import lru_cache

from firmpay.api import client_ip, make_router, user_agent
from firmpay.config import get_settings
from firmpay.gateways.captcha import RecaptchaVerifier
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.models.card import (
    CardCompleteRequest,
    CardResultResponse,
    CardReviewRequest,
    CardReviewResponse,
    CardSubmitRequest,
)
from firmpay.payments import card
from firmpay.payments.links import resolve_link, usable_link
from firmpay.routes.shared import ledger, now

router = make_router()


@lru_cache(maxsize=1)
def verifier() -> RecaptchaVerifier:
    return RecaptchaVerifier.from_settings()


@router.post("/api/pay/<token>/card/review")
def review_card(token: str, request: CardReviewRequest) -> CardReviewResponse:
    at = now()
    context = resolve_link(ledger(), token, at)
    review = card.create_card_review(
        ledger(),
        StripeGateway(),
        verifier(),
        context,
        request.amount_minor,
        request.payment_method_id,
        request.billing,
        request.captcha_token,
        client_ip(router),
        at,
        get_settings().review_ttl_seconds,
    )
    return card.card_review_response(review, context)


@router.post("/api/pay/<token>/card/submit")
def submit_card(token: str, request: CardSubmitRequest) -> CardResultResponse:
    at = now()
    outcome = card.submit_card(
        ledger(),
        StripeGateway(),
        verifier(),
        usable_link(ledger(), token, at),  # one GetItem: submit's budget
        request.review_id,
        request.store_method,
        request.captcha_token,
        client_ip(router),
        user_agent(router),
        at,
    )
    return card.card_result(outcome)


@router.post("/api/pay/<token>/card/complete")
def complete_card(token: str, request: CardCompleteRequest) -> CardResultResponse:
    at = now()
    outcome = card.complete_card(ledger(), StripeGateway(), usable_link(ledger(), token, at), request.payment_id, at)
    return card.card_result(outcome)
