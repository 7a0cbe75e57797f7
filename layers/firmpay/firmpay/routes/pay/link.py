"""The pay link itself: the hosted pay page, its JSON, and "Email me a new link".

These routes read only the token in the path: no request validation, so the function never
loads Powertools' validation (pydantic TypeAdapters, OpenAPI models) at cold start. The page
code (jinja2) and the mailer (SES) load on first use.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from firmpay.api import base_path, html_response, make_router
from firmpay.config import get_settings
from firmpay.errors import FirmPayError, PayLinkExpired, PayLinkNotFound
from firmpay.models.pay import NewLinkResponse, PayLinkResponse
from firmpay.observability import logger
from firmpay.payments import links
from firmpay.routes.shared import ledger, now

router = make_router()
NEW_LINK_MESSAGE = "If this link can be renewed, a new one is on its way to the email address the firm has on file."


@router.get("/pay/<token>")
def pay_page(token: str) -> Response[str]:
    from firmpay.web import pages

    base = base_path(router.current_event.raw_event)
    try:
        context = links.resolve_link(ledger(), token, now())
    except (PayLinkNotFound, PayLinkExpired) as error:
        page = pages.render_link_error(error.status, isinstance(error, PayLinkExpired), base)
        return html_response(error.status, page)
    return html_response(200, pages.render_pay_page(context, base))


@router.get("/api/pay/<token>")
def pay_json(token: str) -> PayLinkResponse:
    from firmpay.web.pages import pay_view

    return pay_view(links.resolve_link(ledger(), token, now()))


@router.post(
    "/api/pay/<token>/new-link",
    status_code=202,
    response_description="Accepted; the answer never says whether a link exists or an email went out.",
)
def new_link(token: str) -> NewLinkResponse:
    from firmpay.emails.mailer import SesMailer

    at, settings = now(), get_settings()
    window = at.strftime("%Y%m%d%H") + str(at.minute // 10)
    if ledger().take_rate_slot(f"newlink#{links.hash_token(token)[:32]}", window, 1, int(at.timestamp()) + 3600):
        try:
            links.send_new_link(ledger(), SesMailer(), token, settings.public_base_url, at, settings.pay_link_days)
        except FirmPayError as error:  # the answer never says whether a link exists, nor whether mail failed
            logger.warning("could not email a new pay link", extra={"code": error.code})
    return NewLinkResponse(code="new_link_requested", message=NEW_LINK_MESSAGE)
