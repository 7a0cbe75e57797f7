"""The stand-in for Plaid Link: the SDK script, the Link frame, and the frame's own (internal) API.

The page loads ``/link/v2/stable/link-initialize.js`` (the path Plaid's CDN serves it at, so only the
host changes); ``Plaid.create`` puts an iframe of ``/link/frame`` on the page, which talks back with
``postMessage``. The frame calls ``/link/api/*``, which checks the link token and keeps each step
(institution, reCAPTCHA, sign-in, account) in order on the server.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from local.plaid_emulator import errors, institutions
from local.plaid_emulator.api import check_credentials
from local.plaid_emulator.state import EmulatorState, LinkSession, LinkToken, new_item
from local.plaid_emulator.web import STATE, Body, answer, read_body

STATIC = Path(__file__).parent / "static"
SCRIPT_PATH = "/link/v2/stable/link-initialize.js"
FRAME_PATH = "/link/frame"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:]+\](:\d{1,5})?$")

FRAME_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Plaid Link</title>
<link rel="stylesheet" href="/link/static/link.css">
<script src="/link/static/link.js" defer></script>
</head>
<body>
<div class="backdrop">
<div class="modal" id="modal" role="dialog" aria-modal="true" aria-label="Plaid Link"></div>
</div>
</body>
</html>
"""

STATIC_TYPES = {".js": "application/javascript", ".css": "text/css"}


def _static(name: str, cors: bool = False) -> Callable[[web.Request], Awaitable[web.Response]]:
    path = STATIC / name

    async def serve(request: web.Request) -> web.Response:
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if cors:  # loaded by other origins' pages (script-src), like Plaid's CDN
            headers |= {"Cross-Origin-Resource-Policy": "cross-origin", "Access-Control-Allow-Origin": "*"}
        return web.Response(
            text=path.read_text(encoding="utf-8"),
            content_type=STATIC_TYPES[path.suffix],
            charset="utf-8",
            headers=headers,
        )

    return serve


async def frame(request: web.Request) -> web.Response:
    """The Link frame; it may only be embedded by the origin the SDK script named (``origin``)."""
    origin = request.query.get("origin", "")
    if not _ORIGIN.match(origin):
        raise web.HTTPBadRequest(text="origin must be the embedding page's origin")
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        f"base-uri 'none'; form-action 'none'; frame-ancestors {origin}"
    )
    return web.Response(
        text=FRAME_HTML,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- the frame's API ------------------------------------------------------------------------------

LinkEndpoint = Callable[[web.Request, Body, EmulatorState], Awaitable[dict[str, Any]]]


def link_endpoint(fn: LinkEndpoint) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        body = await read_body(request)
        return answer(request, await fn(request, body, request.app[STATE]))

    return handle


def valid_link_token(state: EmulatorState, token: str) -> LinkToken:
    link = state.link_tokens.get(token)
    if link is None or link.used:
        raise errors.invalid_link_token()
    if state.now() >= link.expires_at:
        raise errors.invalid_link_token(expired=True)
    return link


def session_of(state: EmulatorState, body: Body) -> tuple[LinkSession, LinkToken]:
    session = state.link_sessions.get(body.string("link_session_id"))
    if session is None:
        raise errors.invalid_link_token()
    link = valid_link_token(state, session.link_token)
    if session.finished:
        raise errors.link_flow("this Link session has already finished")
    return session, link


def institution_summary(institution: institutions.Institution) -> dict[str, Any]:
    return {
        "institution_id": institution.institution_id,
        "name": institution.name,
        "primary_color": institution.primary_color,
        "requires_recaptcha": institution.requires_recaptcha,
    }


@link_endpoint
async def start_session(request: web.Request, body: Body, state: EmulatorState) -> dict[str, Any]:
    link = valid_link_token(state, body.string("link_token"))
    session = LinkSession(link_session_id=str(uuid.uuid4()), link_token=link.token)
    state.link_sessions[session.link_session_id] = session
    return {"link_session_id": session.link_session_id, "client_name": link.client_name, "language": link.language}


@link_endpoint
async def search_institutions(request: web.Request, body: Body, state: EmulatorState) -> dict[str, Any]:
    session_of(state, body)
    query = body.optional_string("query") or ""
    return {"institutions": [institution_summary(i) for i in institutions.search(query)]}


@link_endpoint
async def select_institution(request: web.Request, body: Body, state: EmulatorState) -> dict[str, Any]:
    session, _ = session_of(state, body)
    institution = institutions.BY_ID.get(body.string("institution_id"))
    if institution is None:
        raise errors.invalid_institution()
    session.institution = institution
    session.recaptcha_passed = False
    session.pending_item = None
    return {"institution": institution_summary(institution)}


@link_endpoint
async def solve_recaptcha(request: web.Request, body: Body, state: EmulatorState) -> dict[str, Any]:
    session, _ = session_of(state, body)
    if session.institution is None:
        raise errors.link_flow("choose an institution first")
    if not body.boolean("checked"):
        raise errors.recaptcha_bad()
    session.recaptcha_passed = True
    return {}


@link_endpoint
async def sign_in(request: web.Request, body: Body, state: EmulatorState) -> dict[str, Any]:
    session, link = session_of(state, body)
    institution = session.institution
    if institution is None:
        raise errors.link_flow("choose an institution first")
    if institution.requires_recaptcha and not session.recaptcha_passed:
        raise errors.recaptcha_required()
    if session.locked:
        raise errors.item_locked()
    username = body.optional_string("username") or ""
    password = body.optional_string("password") or ""
    try:
        check_credentials(username, password)
    except errors.PlaidError as error:
        if error.error_code == "INVALID_CREDENTIALS":
            session.failed_sign_ins += 1
            if institution.lock_after is not None and session.failed_sign_ins >= institution.lock_after:
                session.locked = True
                raise errors.item_locked() from error
        raise
    item = new_item(link.client_id, institution, link.products, link.webhook)
    session.pending_item = item
    return {
        "accounts": [
            {
                "id": a.account_id,
                "name": a.spec.name,
                "mask": a.spec.mask,
                "type": "depository",
                "subtype": a.spec.subtype,
                "official_name": a.spec.official_name,
                "available": a.spec.available,
            }
            for a in item.accounts
        ]
    }


@link_endpoint
async def choose_account(request: web.Request, body: Body, state: EmulatorState) -> dict[str, Any]:
    """The end of the flow: the Item keeps the chosen account (Account Select), a public token is issued."""
    session, link = session_of(state, body)
    item = session.pending_item
    if item is None or session.institution is None:
        raise errors.link_flow("sign in first")
    account = item.account(body.string("account_id"))
    if account is None:
        raise errors.invalid_account_id()
    item.accounts = [account]
    public = state.issue_public_token(item)
    session.finished = True
    link.used = True
    chosen = {
        "id": account.account_id,
        "name": account.spec.name,
        "mask": account.spec.mask,
        "type": "depository",
        "subtype": account.spec.subtype,
        "verification_status": None,
        "class_type": None,
    }
    metadata = {
        "institution": {"name": session.institution.name, "institution_id": session.institution.institution_id},
        "accounts": [chosen],
        "account": chosen,
        "account_id": account.account_id,
        "link_session_id": session.link_session_id,
        "public_token": public.token,
        "transfer_status": None,
    }
    return {"public_token": public.token, "metadata": metadata}


def add_routes(app: web.Application) -> None:
    app.router.add_get(SCRIPT_PATH, _static("link-initialize.js", cors=True))
    app.router.add_get("/link/static/link.js", _static("link.js"))
    app.router.add_get("/link/static/link.css", _static("link.css"))
    app.router.add_get(FRAME_PATH, frame)
    app.router.add_post("/link/api/session", start_session)
    app.router.add_post("/link/api/institutions/search", search_institutions)
    app.router.add_post("/link/api/institutions/select", select_institution)
    app.router.add_post("/link/api/recaptcha", solve_recaptcha)
    app.router.add_post("/link/api/credentials", sign_in)
    app.router.add_post("/link/api/accounts/select", choose_account)
