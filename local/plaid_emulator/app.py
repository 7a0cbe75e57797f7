"""The emulator's aiohttp application: Plaid's API, the stand-in Link, and test controls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from local import http_faults
from local.plaid_emulator import api, errors, link
from local.plaid_emulator.state import EmulatorState
from local.plaid_emulator.stripe_tokens import STRIPE_TIMEOUT
from local.plaid_emulator.web import CONFIG, HTTP, STATE, Config, answer, plaid_errors, read_body

DEFAULT_STRIPE_KEY = "sk_test_plaid_emulator"


async def index(request: web.Request) -> web.Response:
    """What this is (the local stack waits for any answer here)."""
    return web.json_response(
        {
            "service": "plaid-emulator",
            "environment": "sandbox",
            "link_initialize_js": link.SCRIPT_PATH,
            "endpoints": sorted(api.ROUTES),
        }
    )


async def test_reset(request: web.Request) -> web.Response:
    """Forget every token, session and Item."""
    request.app[STATE].reset()
    return answer(request, {"reset": True})


async def test_clock(request: web.Request) -> web.Response:
    """Move the emulator's clock forward by ``advance_seconds`` (to expire link and public tokens)."""
    body = await read_body(request)
    seconds = body.data.get("advance_seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise errors.invalid_field("advance_seconds must be a number >= 0")
    state = request.app[STATE]
    state.clock_offset += float(seconds)
    return answer(request, {"clock_offset": state.clock_offset})


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=STRIPE_TIMEOUT) as session:
        app[HTTP] = session
        yield


def build_app(
    stripe_url: str,
    *,
    client_id: str | None = None,
    secret: str | None = None,
    stripe_key: str = DEFAULT_STRIPE_KEY,
) -> web.Application:
    """The emulator. ``client_id``/``secret``: require exactly that pair (default: any non-empty pair)."""
    if (client_id is None) != (secret is None):
        raise ValueError("give both client_id and secret, or neither")
    app = web.Application(middlewares=[plaid_errors], client_max_size=256 * 1024)
    app[STATE] = EmulatorState()
    app[CONFIG] = Config(stripe_url=stripe_url.rstrip("/"), stripe_key=stripe_key, client_id=client_id, secret=secret)
    app.cleanup_ctx.append(_http_client)
    app.router.add_get("/", index)
    for path, handler in api.ROUTES.items():
        app.router.add_post(path, handler)
    link.add_routes(app)
    app.router.add_post("/_test/reset", test_reset)
    app.router.add_post("/_test/clock", test_clock)
    http_faults.install(app, _plaid_error)  # 5xx and slow answers on demand (POST /_test/faults)
    return app


def _plaid_error(status: int) -> dict[str, object]:
    return {
        "error_type": "RATE_LIMIT_EXCEEDED" if status == 429 else "API_ERROR",
        "error_code": "RATE_LIMIT" if status == 429 else "INTERNAL_SERVER_ERROR",
        "error_message": f"injected by the local Plaid emulator (HTTP {status})",
        "display_message": None,
        "request_id": "injected",
    }
