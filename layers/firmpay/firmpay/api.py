"""The HTTP edge shared by every API function: resolver, error mapping, security headers.

Handlers build their resolver with ``make_resolver()``; every domain error, validation error and
unknown route then answers ``{"code": ..., "message": ...}`` with a stable code, and every answer
carries the security headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from firmpay.config import get_settings
from firmpay.errors import FirmPayError, Forbidden, InvalidRequest, MalformedJson, NotFound, ServiceUnavailable
from firmpay.i18n import N_, Preferences, gettext, request_preferences
from firmpay.observability import logger

JSON = "application/json"
HTML = "text/html; charset=utf-8"


# A REST API resolver or one of its routers: where a route reads its request (``current_event``).
type RestRoutes = APIGatewayRestResolver | APIGatewayRouter


_SAFE_BASE_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)*")


def base_path(event: Mapping[str, Any]) -> str:
    """The prefix in front of the API's routes in the browser's address bar: ``/{stage}`` on the
    execute-api URL, ``""`` on a custom domain mapped at its root.

    API Gateway REST events carry the path the browser asked for in ``requestContext.path`` and the
    path the API routes on in ``path``: on the execute-api URL ``path`` lacks the stage, on a custom
    domain the two are the same (AWS, "Use API mappings to connect API stages to a custom domain
    name for REST APIs"; event shapes as recorded in gist GREsau/444c7d4d0bb9e8c82dd1a585931028bd).
    The prefix is what ``requestContext.path`` has in front of ``path``; anything but plain path
    segments gives ``""`` (it goes into pages and scripts).
    """
    context = event.get("requestContext")
    full = str(context.get("path") or "") if isinstance(context, Mapping) else ""
    routed = str(event.get("path") or "")
    if not routed or not full.endswith(routed):
        return ""
    prefix = full[: len(full) - len(routed)]
    return prefix if _SAFE_BASE_PATH.fullmatch(prefix) else ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@lru_cache(maxsize=1)
def security_headers() -> dict[str, str]:
    """Headers on every answer. The pay link token is in the URL: no referrer, no caching."""
    settings = get_settings()
    stripe = _origin(settings.stripe_js_url)
    stripe_api = _origin(settings.stripe_api_base)
    plaid = _origin(settings.plaid_link_js_url)
    captcha = _origin(settings.recaptcha_js_url)
    scripts = " ".join(dict.fromkeys(["'self'", stripe, plaid, captcha]))
    frames = " ".join(dict.fromkeys([stripe, plaid, captcha, "https://www.gstatic.com"]))
    connect = " ".join(dict.fromkeys(["'self'", stripe, stripe_api, plaid]))
    csp = (
        f"default-src 'self'; script-src {scripts}; frame-src {frames}; connect-src {connect}; "
        "img-src 'self' data:; style-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(self)",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":"), default=str),
        headers=security_headers() | (headers or {}),
    )


def html_response(status: int, html: str, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type=HTML, body=html, headers=security_headers() | (headers or {}))


def error_response(error: FirmPayError) -> Response[str]:
    extra = {"Retry-After": "2"} if isinstance(error, ServiceUnavailable) else {}
    if error.status == 429:
        extra = {"Retry-After": "60"}
    return json_response(error.status, error.body(), extra)


def _validation_error(error: RequestValidationError) -> Response[str]:
    problems = error.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(MalformedJson())
    fields = [
        {"field": ".".join(str(part) for part in p.get("loc", ())), "problem": str(p.get("msg", "invalid"))}
        for p in problems
    ]
    return error_response(InvalidRequest(fields=fields))


def language_preferences(app: APIGatewayRestResolver) -> Preferences:
    """The request's ``Accept-Language`` header and ``lang`` query parameter (firmpay.i18n)."""
    event = app.current_event
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    requested = (event.query_string_parameters or {}).get("lang") or ""
    return Preferences(accept_language=str(headers.get("accept-language") or "")[:200], requested=requested[:16])


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Map every failure to a JSON error with a stable code, its message in the request's
    language; never leak provider messages."""

    @app.exception_handler(FirmPayError)
    def _domain(error: FirmPayError) -> Response[str]:
        if error.status >= 500:
            logger.warning("service unavailable", extra={"code": error.code, "cause": repr(error.__cause__)})
        with request_preferences(language_preferences(app)):
            return error_response(error)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[str]:
        with request_preferences(language_preferences(app)):
            return _validation_error(error)

    # A body that is not UTF-8 (API Gateway passes it base64-encoded) fails in Powertools' own
    # body decoding, before validation: it is malformed input, not our failure.
    @app.exception_handler(UnicodeDecodeError)
    def _undecodable(_: UnicodeDecodeError) -> Response[str]:
        return error_response(MalformedJson())

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return error_response(NotFound("No such route."))

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        with request_preferences(language_preferences(app)):
            message = gettext(N_("Something went wrong on our side."))
        return json_response(500, {"code": "internal_error", "message": message})


def _with_security_headers(app: APIGatewayRestResolver, next_middleware: Any) -> Response[Any]:
    response: Response[Any] = next_middleware(app)
    for name, value in security_headers().items():
        response.headers.setdefault(name, value)
    return response


def _in_request_language(app: APIGatewayRestResolver, next_middleware: Any) -> Response[Any]:
    """Pages and messages built by the route are in the request's language (firmpay.i18n)."""
    with request_preferences(language_preferences(app)):
        response: Response[Any] = next_middleware(app)
    return response


def make_resolver(validate_requests: bool = True) -> APIGatewayRestResolver:
    """A REST API resolver validating requests (and responses) with pydantic, with FirmPay's error
    mapping, the security headers and the request's language on every answer.

    ``validate_requests=False`` is for a function whose routes read nothing but path parameters
    (pay_link): Powertools then never loads its validation machinery, ~70 ms of cold start. Its
    routes still return typed models (serialized with ``model_dump(mode="json")``), which the
    OpenAPI document shows all the same."""
    app = APIGatewayRestResolver(enable_validation=validate_requests)
    register_error_handlers(app)
    app.use(middlewares=[_with_security_headers, _in_request_language])
    return app


def make_router() -> APIGatewayRouter:
    """A router of REST routes for ``make_resolver()``'s ``include_router`` (its routes get the same
    validation, error mapping and headers)."""
    return APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools' __init__ is unannotated


def caller_arn(app: RestRoutes) -> str:
    """The IAM principal of a firm API request (API Gateway fills it in for AWS_IAM routes)."""
    identity = app.current_event.request_context.identity
    arn = identity.user_arn or identity.caller
    if not arn:
        raise Forbidden("This route needs an IAM-signed request.")
    return arn


def client_ip(app: RestRoutes) -> str:
    return app.current_event.request_context.identity.source_ip or "0.0.0.0"  # noqa: S104


def user_agent(app: RestRoutes) -> str:
    return (app.current_event.headers or {}).get("User-Agent") or (
        app.current_event.request_context.identity.user_agent or "unknown"
    )
