"""The client's "Remove it" link for a stored method, from a confirmation email: a page, then the removal."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from firmpay.api import base_path, html_response, make_router
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.payments import method_removal
from firmpay.routes.shared import ledger, now

router = make_router()


@router.get("/methods/remove/<token>")
def method_removal_page(token: str) -> Response[str]:
    from firmpay.web.pages import render_method_removal

    base = base_path(router.current_event.raw_event)
    try:
        view = method_removal.find_removal(ledger(), token, now())
    except method_removal.RemovalLinkNotFound:
        return html_response(404, render_method_removal("not_found", base=base))
    return html_response(200, render_method_removal("already_removed" if view.removed else "confirm", view, base))


@router.post("/methods/remove/<token>")
def remove_stored_method(token: str) -> Response[str]:
    from firmpay.web.pages import render_method_removal

    base = base_path(router.current_event.raw_event)
    remover = method_removal.plaid_item_remover()
    try:
        view, result = method_removal.remove_method(ledger(), StripeGateway(), token, now(), remover)
    except method_removal.RemovalLinkNotFound:
        return html_response(404, render_method_removal("not_found", base=base))
    return html_response(503 if result == "retry" else 200, render_method_removal(result, view, base))
