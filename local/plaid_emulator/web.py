"""Plumbing shared by the API and Link routes: app keys, request ids, JSON bodies, Plaid-shaped errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from local.plaid_emulator import errors
from local.plaid_emulator.state import EmulatorState, request_id

log = logging.getLogger("local.plaid_emulator")


@dataclass(frozen=True)
class Config:
    stripe_url: str
    stripe_key: str
    client_id: str | None  # None: any non-empty client_id / secret pair is accepted
    secret: str | None


STATE = web.AppKey("state", EmulatorState)
CONFIG = web.AppKey("config", Config)
HTTP = web.AppKey("http", aiohttp.ClientSession)
REQUEST_ID = web.RequestKey("plaid_request_id", str)


def error_response(error: errors.PlaidError, rid: str) -> web.Response:
    return web.json_response(error.body(rid), status=error.status)


@web.middleware
async def plaid_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer gets a request id; every failure Plaid's error shape (404 and 405 included)."""
    rid = request_id()
    request[REQUEST_ID] = rid
    try:
        return await handler(request)
    except errors.PlaidError as error:
        return error_response(error, rid)
    except web.HTTPNotFound:
        return error_response(errors.not_found(request.path), rid)
    except web.HTTPMethodNotAllowed:
        return error_response(errors.method_not_allowed(request.method), rid)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error on %s", request.path)
        return error_response(errors.internal_error(), rid)


class Body:
    """A request's JSON object, with typed getters that raise Plaid's INVALID_REQUEST errors."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def _name(self, name: str) -> str:
        return self.prefix + name

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def string(self, name: str) -> str:
        value = self.optional_string(name)
        if not value:
            raise errors.missing_fields(self._name(name))
        return value

    def optional_string(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise errors.invalid_field(f"{self._name(name)} must be a string")
        return value

    def strings(self, name: str, required: bool = True) -> list[str]:
        value = self.data.get(name)
        if value is None:
            if required:
                raise errors.missing_fields(self._name(name))
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.invalid_field(f"{self._name(name)} must be a list of strings")
        if required and not value:
            raise errors.invalid_field(f"{self._name(name)} must not be empty")
        return value

    def boolean(self, name: str) -> bool:
        value = self.data.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise errors.invalid_field(f"{self._name(name)} must be a boolean")
        return value

    def obj(self, name: str, required: bool = False) -> Body:
        value = self.data.get(name)
        if value is None:
            if required:
                raise errors.missing_fields(self._name(name))
            return Body({}, f"{self._name(name)}.")
        if not isinstance(value, dict):
            raise errors.invalid_field(f"{self._name(name)} must be an object")
        return Body(value, f"{self._name(name)}.")


async def read_body(request: web.Request) -> Body:
    raw = await request.read()
    try:
        data = json.loads(raw or b"{}")
    except ValueError as error:
        raise errors.invalid_body() from error
    if not isinstance(data, dict):
        raise errors.invalid_body()
    return Body(data)


def answer(request: web.Request, body: dict[str, Any]) -> web.Response:
    return web.json_response({**body, "request_id": request[REQUEST_ID]})
