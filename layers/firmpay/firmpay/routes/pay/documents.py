"""What the pay page loads besides itself: its static assets, and the API's OpenAPI document."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from firmpay.api import error_response, make_router, security_headers
from firmpay.errors import NotFound, ServiceUnavailable

router = make_router()


@router.get("/api/openapi.json")
def openapi_document() -> Response[str]:
    from firmpay.web.pages import WEB

    document = WEB / "openapi.json"
    if document.is_file():
        return Response(200, "application/json", document.read_text(), security_headers())
    return error_response(ServiceUnavailable("The API document is not available."))


@router.get("/assets/<name>")
def asset(name: str) -> Response[Any]:
    from firmpay.web.pages import read_asset

    found = read_asset(name)
    if found is None:
        raise NotFound("No such asset.")
    body, content_type = found
    headers = security_headers() | {"Cache-Control": "public, max-age=31536000, immutable"}
    return Response(200, content_type, body.decode("utf-8"), headers)
