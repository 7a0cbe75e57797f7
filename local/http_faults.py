"""HTTP-level fault injection for the local emulators (Stripe, Plaid): the next requests matching
a method and path prefix get an error status, or are held back for a while first (a slow or silent
service, which the caller's read timeout turns into a timeout).

    POST   /_test/faults  {"path": "/v1/payment_intents", "method": "POST", "status": 500,
                           "times": 3, "delay": 0, "body": {...}}
    GET    /_test/faults  the faults still armed
    DELETE /_test/faults  disarm them all

``status`` null with a ``delay`` forwards the request after the delay. ``body`` defaults to the
emulated service's own error shape (``default_body(status)``). Test controls only: the real
services have no such route, and FirmPay's code never calls it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    path: str
    method: str = "*"
    status: int | None = 500
    times: int = 1
    delay: float = 0.0
    body: Any = None


def install(app: web.Application, default_body: Callable[[int], Any]) -> None:
    faults: list[Fault] = []

    def take(request: web.Request) -> Fault | None:
        for fault in faults:
            if request.path.startswith(fault.path) and fault.method in ("*", request.method):
                fault.times -= 1
                if fault.times <= 0:
                    faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = None if request.path.startswith("/_test/faults") else take(request)
        if fault is None:
            return await handler(request)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return await handler(request)
        body = fault.body if fault.body is not None else default_body(fault.status)
        return web.Response(status=fault.status, text=json.dumps(body), content_type="application/json")

    async def arm(request: web.Request) -> web.Response:
        try:
            spec = json.loads(await request.text())
            fault = Fault(**spec)
        except (ValueError, TypeError) as error:
            return web.json_response({"error": f"bad fault: {error}"}, status=400)
        if fault.status is None and fault.delay <= 0:
            return web.json_response({"error": "a fault needs a status, a delay, or both"}, status=400)
        faults.append(fault)
        return web.json_response(asdict(fault))

    async def listed(request: web.Request) -> web.Response:
        return web.json_response([asdict(f) for f in faults])

    async def disarm(request: web.Request) -> web.Response:
        faults.clear()
        return web.json_response([])

    app.middlewares.insert(0, inject)
    app.router.add_post("/_test/faults", arm)
    app.router.add_get("/_test/faults", listed)
    app.router.add_delete("/_test/faults", disarm)
