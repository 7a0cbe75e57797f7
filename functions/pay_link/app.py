"""pay_link: the hosted pay page behind a pay link, its JSON, new-link requests, OpenAPI, assets.

Module-level work is kept to the resolver: jinja2, the mailer and SES load on first use, so the
cold start stays close to "python + a DynamoDB client".
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import base_path, error_response, html_response, json_response, make_resolver, security_headers
from firmpay.config import get_settings
from firmpay.errors import FirmPayError, NotFound, PayLinkExpired, PayLinkNotFound, ServiceUnavailable
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.pay import NewLinkResponse, PayLinkResponse
from firmpay.observability import logger
from firmpay.payments import links

app = make_resolver()
NEW_LINK_MESSAGE = "If this link can be renewed, a new one is on its way to the email address the firm has on file."


# Built once per container, at init (Lambda's init phase runs at full CPU).
_LEDGER = default_ledger()


def _ledger() -> Ledger:
    return _LEDGER


@app.get("/pay/<token>")
def pay_page(token: str) -> Response[str]:
    from firmpay.web import pages

    base = base_path(app.current_event.raw_event)
    try:
        context = links.resolve_link(_ledger(), token, datetime.now(UTC))
    except (PayLinkNotFound, PayLinkExpired) as error:
        page = pages.render_link_error(error.status, isinstance(error, PayLinkExpired), base)
        return html_response(error.status, page)
    return html_response(200, pages.render_pay_page(context, base))


@app.get("/api/pay/<token>")
def pay_json(token: str) -> PayLinkResponse:
    from firmpay.web.pages import pay_view

    context = links.resolve_link(_ledger(), token, datetime.now(UTC))
    return pay_view(context)


@app.post("/api/pay/<token>/new-link")
def new_link(token: str) -> Response[str]:
    from firmpay.emails.mailer import SesMailer

    now = datetime.now(UTC)
    settings = get_settings()
    window = now.strftime("%Y%m%d%H") + str(now.minute // 10)
    if _ledger().take_rate_slot(f"newlink#{links.hash_token(token)[:32]}", window, 1, int(now.timestamp()) + 3600):
        try:
            links.send_new_link(_ledger(), SesMailer(), token, settings.public_base_url, now, settings.pay_link_days)
        except FirmPayError as error:  # the answer never says whether a link exists, nor whether mail failed
            logger.warning("could not email a new pay link", extra={"code": error.code})
    return json_response(202, NewLinkResponse(code="new_link_requested", message=NEW_LINK_MESSAGE).model_dump())


@app.get("/api/openapi.json")
def openapi_document() -> Response[str]:
    document = Path(__file__).resolve().parent / "openapi.json"
    from firmpay.web.pages import WEB

    for candidate in (WEB / "openapi.json", document):
        if candidate.is_file():
            return Response(200, "application/json", candidate.read_text(), security_headers())
    return error_response(ServiceUnavailable("The API document is not available."))


@app.get("/assets/<name>")
def asset(name: str) -> Response[Any]:
    from firmpay.web.pages import read_asset

    found = read_asset(name)
    if found is None:
        raise NotFound("No such asset.")
    body, content_type = found
    headers = security_headers() | {"Cache-Control": "public, max-age=31536000, immutable"}
    return Response(200, content_type, body.decode("utf-8"), headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["FirmPayError", "app", "lambda_handler"]
