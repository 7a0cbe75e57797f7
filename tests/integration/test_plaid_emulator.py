"""The Plaid emulator through plaid-python (every answer parses with Plaid's own models, every error
arrives as ``plaid.ApiException`` whose body parses as ``PlaidError``), its Stripe bank account
tokens through a stand-in Stripe API, and its stand-in Link in chromium under a strict CSP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import plaid
import pytest
import requests
from aiohttp import web
from plaid.api.plaid_api import PlaidApi
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.accounts_get_request_options import AccountsGetRequestOptions
from plaid.model.auth_get_request import AuthGetRequest
from plaid.model.country_code import CountryCode
from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest
from plaid.model.institutions_get_by_id_request_options import InstitutionsGetByIdRequestOptions
from plaid.model.institutions_search_request import InstitutionsSearchRequest
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
from plaid.model.plaid_error import PlaidError
from plaid.model.processor_stripe_bank_account_token_create_request import (
    ProcessorStripeBankAccountTokenCreateRequest,
)
from plaid.model.products import Products
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model.sandbox_public_token_create_request_options import SandboxPublicTokenCreateRequestOptions

from local.plaid_emulator import build_app
from local.plaid_emulator.institutions import INSTITUTIONS, aba_checksum_ok

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
US = [CountryCode("US")]
AUTH = [Products("auth")]


# -- servers: the emulator, a stand-in Stripe API and the test page, in one background event loop --


class Servers:
    """aiohttp apps served on free 127.0.0.1 ports from one event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.runners: list[web.AppRunner] = []
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-servers", daemon=True)
        self.thread.start()

    def serve(self, app: web.Application) -> str:
        async def start() -> str:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.runners.append(runner)
            port = runner.addresses[0][1]
            return f"http://127.0.0.1:{port}"

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def close(self) -> None:
        async def stop() -> None:
            for runner in reversed(self.runners):
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class FakeStripe:
    """Answers ``POST /v1/tokens`` for a bank account like Stripe, and the emulator's ``/_test/bank_names``."""

    def __init__(self) -> None:
        self.token_requests: list[dict[str, Any]] = []
        self.bank_names: dict[str, str] = {}

    async def tokens(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({"form": form, "authorization": request.headers.get("Authorization", "")})
        number = str(form.get("bank_account[account_number]", ""))
        routing = str(form.get("bank_account[routing_number]", ""))
        return web.json_response(
            {
                "id": f"btok_{uuid.uuid4().hex[:24]}",
                "object": "token",
                "type": "bank_account",
                "bank_account": {
                    "object": "bank_account",
                    "routing_number": routing,
                    "last4": number[-4:],
                    "bank_name": self.bank_names.get(routing, "STRIPE TEST BANK"),
                },
            }
        )

    async def register_bank_name(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bank_names[body["routing_number"]] = body["bank_name"]
        return web.json_response({"ok": True})


PAGE_JS = """
window.__events = [];
window.__result = null;
var handler = Plaid.create({
  token: new URLSearchParams(window.location.search).get('token'),
  onLoad: function () { window.__loaded = true; },
  onEvent: function (name, metadata) { window.__events.push({ name: name, metadata: metadata }); },
  onSuccess: function (publicToken, metadata) {
    window.__result = { kind: 'success', public_token: publicToken, metadata: metadata };
  },
  onExit: function (error, metadata) { window.__result = { kind: 'exit', error: error, metadata: metadata }; }
});
document.getElementById('connect').addEventListener('click', function () {
  window.__result = null;
  handler.open();
});
"""


def page_app(stripe: FakeStripe, urls: dict[str, str]) -> web.Application:
    """The stand-in Stripe API, plus a pay-page-like page that opens Link under a strict CSP."""

    async def page(request: web.Request) -> web.Response:
        link = urls["emulator"]
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Pay</title>'
            f'<script src="{link}/link/v2/stable/link-initialize.js"></script>'
            '<script src="/page.js" defer></script></head>'
            '<body><main><h1>Pay your bill</h1><button id="connect" type="button">Select your bank</button>'
            "</main></body></html>"
        )
        csp = (
            f"default-src 'self'; script-src 'self' {link}; frame-src {link}; connect-src 'self'; "
            "style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        )
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                "Content-Security-Policy": csp,
                "Referrer-Policy": "no-referrer",
                "Cross-Origin-Opener-Policy": "same-origin",
                "X-Frame-Options": "DENY",
            },
        )

    async def script(request: web.Request) -> web.Response:
        return web.Response(text=PAGE_JS, content_type="application/javascript")

    app = web.Application()
    app.router.add_post("/v1/tokens", stripe.tokens)
    app.router.add_post("/_test/bank_names", stripe.register_bank_name)
    app.router.add_get("/page", page)
    app.router.add_get("/page.js", script)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    servers = Servers()
    stripe = FakeStripe()
    urls: dict[str, str] = {}
    urls["helper"] = servers.serve(page_app(stripe, urls))
    urls["emulator"] = servers.serve(build_app(urls["helper"]))
    urls["emulator_no_stripe"] = servers.serve(build_app(f"http://127.0.0.1:{free_port()}"))
    yield {"urls": urls, "stripe": stripe}
    servers.close()


@pytest.fixture
def emulator(world: dict[str, Any]) -> str:
    url = world["urls"]["emulator"]
    requests.post(f"{url}/_test/reset", json={}, timeout=5).raise_for_status()
    world["stripe"].token_requests.clear()
    world["stripe"].bank_names.clear()
    return str(url)


def plaid_client(host: str, client_id: str = "firmpay-test", secret: str = "sandbox-secret") -> PlaidApi:  # noqa: S107
    configuration = plaid.Configuration(host=host, api_key={"clientId": client_id, "secret": secret})
    return PlaidApi(plaid.ApiClient(configuration))


@pytest.fixture
def api(emulator: str) -> PlaidApi:
    return plaid_client(emulator)


def plaid_error(call: Any, *args: Any) -> tuple[int, PlaidError]:
    """Call the SDK expecting a Plaid error; the status and the body parsed as plaid-python's PlaidError."""
    with pytest.raises(plaid.ApiException) as caught:
        call(*args)

    class Raw:
        data = caught.value.body

    error = plaid.ApiClient().deserialize(Raw, (PlaidError,), True)
    assert isinstance(error, PlaidError)
    assert error.request_id
    return int(caught.value.status), error


def link_token_request(**overrides: Any) -> LinkTokenCreateRequest:
    fields: dict[str, Any] = {
        "client_name": "FirmPay",
        "language": "en",
        "country_codes": US,
        "products": AUTH,
        "user": LinkTokenCreateRequestUser(client_user_id="client-123"),
    } | overrides
    return LinkTokenCreateRequest(**{k: v for k, v in fields.items() if v is not None})


def linked_item(api: PlaidApi, institution_id: str = "ins_109508") -> tuple[str, Any]:
    """An access token and the accounts of a sandbox Item at ``institution_id``."""
    public = api.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(institution_id=institution_id, initial_products=AUTH)
    )
    exchanged = api.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=public.public_token))
    accounts = api.accounts_get(AccountsGetRequest(access_token=exchanged.access_token))
    return exchanged.access_token, accounts


# -- the API through plaid-python -----------------------------------------------------------------


def test_link_token_create_answers_a_sandbox_link_token_valid_for_four_hours(api: PlaidApi) -> None:
    answer = api.link_token_create(link_token_request())

    assert answer.link_token.startswith("link-sandbox-")
    uuid.UUID(answer.link_token.removeprefix("link-sandbox-"))
    assert abs(answer.expiration - (datetime.now(UTC) + timedelta(hours=4))) < timedelta(minutes=1)
    assert answer.request_id


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"user": None}, "MISSING_FIELDS", "user"),
        ({"country_codes": [CountryCode("CA")]}, "INVALID_FIELD", "country_codes"),
        ({"products": [Products("transactions")]}, "INVALID_FIELD", "auth"),
        ({"language": "xx"}, "INVALID_FIELD", "language"),
    ],
)
def test_link_token_create_refuses_a_request_plaid_would_refuse(
    api: PlaidApi, overrides: dict[str, Any], code: str, field: str
) -> None:
    status, error = plaid_error(api.link_token_create, link_token_request(**overrides))

    assert status == 400
    assert (error.error_type.value, error.error_code) == ("INVALID_REQUEST", code)
    assert field in error.error_message


def test_a_public_token_exchanges_once_for_an_access_token(api: PlaidApi) -> None:
    public = api.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(institution_id="ins_109511", initial_products=AUTH)
    )
    assert public.public_token.startswith("public-sandbox-")

    exchanged = api.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=public.public_token))
    assert exchanged.access_token.startswith("access-sandbox-")
    assert exchanged.item_id

    status, error = plaid_error(
        api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=public.public_token)
    )
    assert (status, error.error_type.value, error.error_code) == (400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN")


def test_an_unknown_or_expired_public_token_is_refused(api: PlaidApi, emulator: str) -> None:
    _, unknown = plaid_error(
        api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=f"public-sandbox-{uuid.uuid4()}")
    )
    assert unknown.error_code == "INVALID_PUBLIC_TOKEN"

    public = api.sandbox_public_token_create(
        SandboxPublicTokenCreateRequest(institution_id="ins_109508", initial_products=AUTH)
    )
    requests.post(f"{emulator}/_test/clock", json={"advance_seconds": 31 * 60}, timeout=5).raise_for_status()
    _, expired = plaid_error(
        api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=public.public_token)
    )
    assert expired.error_code == "INVALID_PUBLIC_TOKEN"
    assert "expired" in expired.error_message


def test_accounts_and_auth_describe_the_items_checking_and_savings_accounts(api: PlaidApi) -> None:
    access_token, answer = linked_item(api, "ins_109508")

    assert answer.item.institution_id == "ins_109508"
    assert [(a.name, a.mask, a.type.value, a.subtype.value) for a in answer.accounts] == [
        ("Plaid Checking", "0000", "depository", "checking"),
        ("Plaid Saving", "1111", "depository", "savings"),
    ]
    assert answer.accounts[0].balances.available == 100.0
    assert answer.accounts[0].balances.iso_currency_code == "USD"

    auth = api.auth_get(AuthGetRequest(access_token=access_token))
    ach = {n.account_id: (n.routing, n.account) for n in auth.numbers.ach}
    assert ach[answer.accounts[0].account_id] == ("011401533", "1111222233330000")
    assert ach[answer.accounts[1].account_id] == ("011401533", "1111222233331111")

    only_saving = api.accounts_get(
        AccountsGetRequest(
            access_token=access_token, options=AccountsGetRequestOptions(account_ids=[answer.accounts[1].account_id])
        )
    )
    assert [a.name for a in only_saving.accounts] == ["Plaid Saving"]
    assert api.item_get(ItemGetRequest(access_token=access_token)).item.item_id == answer.item.item_id


def test_a_removed_item_s_access_token_no_longer_works(api: PlaidApi) -> None:
    access_token, _ = linked_item(api)

    assert api.item_remove(ItemRemoveRequest(access_token=access_token)).request_id

    for call, request in [
        (api.accounts_get, AccountsGetRequest(access_token=access_token)),
        (api.auth_get, AuthGetRequest(access_token=access_token)),
        (api.item_remove, ItemRemoveRequest(access_token=access_token)),
    ]:
        status, error = plaid_error(call, request)
        assert (status, error.error_type.value, error.error_code) == (400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN")


def test_an_unknown_or_malformed_access_token_is_refused(api: PlaidApi) -> None:
    _, unknown = plaid_error(api.accounts_get, AccountsGetRequest(access_token=f"access-sandbox-{uuid.uuid4()}"))
    _, malformed = plaid_error(api.accounts_get, AccountsGetRequest(access_token="not-a-token"))

    assert unknown.error_code == malformed.error_code == "INVALID_ACCESS_TOKEN"
    assert "invalid format" in malformed.error_message


def test_another_client_id_cannot_use_an_access_token(api: PlaidApi, emulator: str) -> None:
    access_token, _ = linked_item(api)

    _, error = plaid_error(
        plaid_client(emulator, "other-client").accounts_get, AccountsGetRequest(access_token=access_token)
    )

    assert error.error_code == "INVALID_ACCESS_TOKEN"


def test_institution_search_filters_by_name_and_get_by_id_gives_optional_metadata(api: PlaidApi) -> None:
    found = api.institutions_search(InstitutionsSearchRequest(query="hound", products=AUTH, country_codes=US))
    assert [(i.institution_id, i.name) for i in found.institutions] == [("ins_109512", "Houndstooth Bank")]

    plain = api.institutions_get_by_id(InstitutionsGetByIdRequest(institution_id="ins_109508", country_codes=US))
    assert plain.institution.name == "First Platypus Bank"
    assert plain.institution.routing_numbers == ["011401533"]
    assert "primary_color" not in plain.institution

    rich = api.institutions_get_by_id(
        InstitutionsGetByIdRequest(
            institution_id="ins_109511",
            country_codes=US,
            options=InstitutionsGetByIdRequestOptions(include_optional_metadata=True),
        )
    )
    assert (rich.institution.name, rich.institution.logo) == ("Tartan Bank", None)
    assert rich.institution.primary_color.startswith("#")
    assert rich.institution.url


def test_an_unknown_institution_is_refused(api: PlaidApi) -> None:
    _, by_id = plaid_error(
        api.institutions_get_by_id, InstitutionsGetByIdRequest(institution_id="ins_1", country_codes=US)
    )
    _, sandbox = plaid_error(
        api.sandbox_public_token_create, SandboxPublicTokenCreateRequest(institution_id="ins_1", initial_products=AUTH)
    )

    assert by_id.error_code == sandbox.error_code == "INVALID_INSTITUTION"
    assert by_id.error_type.value == "INVALID_INPUT"


@pytest.mark.parametrize(("password", "code"), [("wrong", "INVALID_CREDENTIALS"), ("error_ITEM_LOCKED", "ITEM_LOCKED")])
def test_sandbox_sign_in_fails_with_the_item_error_plaid_gives(api: PlaidApi, password: str, code: str) -> None:
    request = SandboxPublicTokenCreateRequest(
        institution_id="ins_109508",
        initial_products=AUTH,
        options=SandboxPublicTokenCreateRequestOptions(override_username="user_good", override_password=password),
    )

    status, error = plaid_error(api.sandbox_public_token_create, request)

    assert (status, error.error_type.value, error.error_code) == (400, "ITEM_ERROR", code)
    assert error.display_message


def test_the_stripe_token_is_made_through_stripe_s_api_with_the_account_s_numbers(
    api: PlaidApi, world: dict[str, Any]
) -> None:
    access_token, accounts = linked_item(api, "ins_109512")
    checking = accounts.accounts[0]

    answer = api.processor_stripe_bank_account_token_create(
        ProcessorStripeBankAccountTokenCreateRequest(access_token=access_token, account_id=checking.account_id)
    )

    stripe: FakeStripe = world["stripe"]
    assert answer.stripe_bank_account_token.startswith("btok_")
    [sent] = stripe.token_requests
    assert sent["authorization"].startswith("Bearer sk_test_")
    assert sent["form"] == {
        "bank_account[country]": "US",
        "bank_account[currency]": "usd",
        "bank_account[routing_number]": "061000159",
        "bank_account[account_number]": "1111222233330000",
        "bank_account[account_holder_name]": "Alberta Bobbeth Charleson",
        "bank_account[account_holder_type]": "individual",
    }
    assert stripe.bank_names == {"061000159": "Houndstooth Bank"}


def test_a_stripe_token_for_an_account_of_another_item_is_refused(api: PlaidApi) -> None:
    access_token, _ = linked_item(api)
    _, other = linked_item(api)

    status, error = plaid_error(
        api.processor_stripe_bank_account_token_create,
        ProcessorStripeBankAccountTokenCreateRequest(
            access_token=access_token, account_id=other.accounts[0].account_id
        ),
    )

    assert (status, error.error_type.value, error.error_code) == (400, "INVALID_INPUT", "INVALID_ACCOUNT_ID")


def test_an_unreachable_stripe_is_a_plaid_api_error(world: dict[str, Any]) -> None:
    api = plaid_client(world["urls"]["emulator_no_stripe"])
    access_token, accounts = linked_item(api)

    status, error = plaid_error(
        api.processor_stripe_bank_account_token_create,
        ProcessorStripeBankAccountTokenCreateRequest(
            access_token=access_token, account_id=accounts.accounts[0].account_id
        ),
    )

    assert (status, error.error_type.value, error.error_code) == (500, "API_ERROR", "INTERNAL_SERVER_ERROR")


def test_raw_requests_get_plaid_shaped_errors(emulator: str) -> None:
    no_keys = requests.post(f"{emulator}/accounts/get", json={"access_token": "access-sandbox-x"}, timeout=5)
    not_json = requests.post(f"{emulator}/accounts/get", data=b"{", timeout=5)
    no_route = requests.post(f"{emulator}/transactions/sync", json={}, timeout=5)

    assert (no_keys.status_code, no_keys.json()["error_code"]) == (400, "MISSING_FIELDS")
    assert "client_id, secret" in no_keys.json()["error_message"]
    assert (not_json.status_code, not_json.json()["error_code"]) == (400, "INVALID_BODY")
    assert (no_route.status_code, no_route.json()["error_code"]) == (404, "NOT_FOUND")

    keys_in_body = requests.post(
        f"{emulator}/institutions/get_by_id",
        json={"client_id": "a", "secret": "b", "institution_id": "ins_109508", "country_codes": ["US"]},
        timeout=5,
    )
    assert keys_in_body.json()["institution"]["name"] == "First Platypus Bank"

    no_user_id = requests.post(
        f"{emulator}/link/token/create",
        json={"client_id": "a", "secret": "b", "client_name": "FirmPay", "language": "en"}
        | {"country_codes": ["US"], "products": ["auth"], "user": {}},
        timeout=5,
    )
    assert (no_user_id.status_code, no_user_id.json()["error_code"]) == (400, "MISSING_FIELDS")
    assert no_user_id.json()["error_message"].endswith("user.client_user_id")


def raw_plaid(emulator: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = requests.post(f"{emulator}{path}", json={"client_id": "a", "secret": "b"} | body, timeout=5)
    return answer.status_code, answer.json()


def test_a_field_the_request_model_lacks_is_refused_as_plaid_does(api: PlaidApi, emulator: str) -> None:
    """Plaid's docs: UNKNOWN_FIELDS "the following fields are not recognized by this endpoint: {fields}"."""
    access_token, _ = linked_item(api)
    # plaid-python's models take extra keyword arguments and send them: a typo reaches Plaid.
    status, error = plaid_error(api.item_remove, ItemRemoveRequest(access_token=access_token, reason="duplicate"))
    assert (status, error.error_type.value, error.error_code) == (400, "INVALID_REQUEST", "UNKNOWN_FIELDS")
    assert error.error_message == "the following fields are not recognized by this endpoint: reason"

    status, nested = raw_plaid(
        emulator,
        "/link/token/create",
        {"client_name": "FirmPay", "language": "en", "country_codes": ["US"], "products": ["auth"]}
        | {"user": {"client_user_id": "c-1", "email": "x@example.com"}},
    )
    assert (status, nested["error_code"]) == (400, "UNKNOWN_FIELDS")
    assert nested["error_message"].endswith(": user.email")
    assert nested["display_message"] is None
    assert nested["request_id"]
    # The Item survived the refused removal.
    assert api.item_get(ItemGetRequest(access_token=access_token)).item.item_id


@pytest.mark.parametrize(
    ("path", "body", "code", "field"),
    [
        ("/item/public_token/exchange", {}, "MISSING_FIELDS", "public_token"),
        (
            "/processor/stripe/bank_account_token/create",
            {"access_token": "access-sandbox-x"},
            "MISSING_FIELDS",
            "account_id",
        ),
        ("/sandbox/public_token/create", {"institution_id": "ins_109508"}, "MISSING_FIELDS", "initial_products"),
        ("/item/remove", {"access_token": 42}, "INVALID_FIELD", "access_token"),
        (
            "/sandbox/public_token/create",
            {"institution_id": "ins_109508", "initial_products": ["checking"]},
            "INVALID_FIELD",
            "initial_products[0]",
        ),
        (
            "/institutions/get_by_id",
            {"institution_id": "ins_109508", "country_codes": ["ZZ"]},
            "INVALID_FIELD",
            "country_codes[0]",
        ),
        (
            "/accounts/get",
            {"access_token": "access-sandbox-x", "options": {"account_ids": "acc"}},
            "INVALID_FIELD",
            "options.account_ids",
        ),
    ],
)
def test_a_request_outside_the_request_model_is_refused_before_anything_happens(
    emulator: str, path: str, body: dict[str, Any], code: str, field: str
) -> None:
    status, error = raw_plaid(emulator, path, body)

    assert (status, error["error_type"], error["error_code"]) == (400, "INVALID_REQUEST", code)
    assert field in error["error_message"]


def test_reset_forgets_every_token(api: PlaidApi, emulator: str) -> None:
    access_token, _ = linked_item(api)

    requests.post(f"{emulator}/_test/reset", json={}, timeout=5).raise_for_status()

    _, error = plaid_error(api.accounts_get, AccountsGetRequest(access_token=access_token))
    assert error.error_code == "INVALID_ACCESS_TOKEN"


def test_institutions_have_valid_routing_numbers_and_depository_accounts() -> None:
    assert {i.institution_id for i in INSTITUTIONS} >= {"ins_109508", "ins_109511", "ins_109512"}
    for institution in INSTITUTIONS:
        assert aba_checksum_ok(institution.routing_number), institution.name
        assert all(a.account_number.endswith(a.mask) for a in institution.accounts)
        assert {a.subtype for a in institution.accounts} <= {"checking", "savings"}


def test_the_cli_requires_its_keys_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "local.plaid_emulator", "--port", str(port)),
            *("--stripe-url", "http://127.0.0.1:9", "--client-id", "cid", "--secret", "sec"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.05)

        status, error = plaid_error(plaid_client(url, "cid", "wrong").link_token_create, link_token_request())
        assert (status, error.error_type.value, error.error_code) == (400, "INVALID_INPUT", "INVALID_API_KEYS")
        assert plaid_client(url, "cid", "sec").link_token_create(link_token_request()).link_token
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10)[0]
    assert process.returncode == 0, output


# -- the stand-in Link in chromium ----------------------------------------------------------------


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    page.set_default_timeout(5000)
    page.csp_violations = []
    page.on(
        "console",
        lambda m: (
            page.csp_violations.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text
            else None
        ),
    )
    yield page
    context.close()


def wait_for(page: Any, expression: str, timeout: float = 5.0) -> Any:
    """Poll ``expression`` from Python: page.wait_for_function would need eval, which the page's CSP forbids."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(expression)):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.03)
    return value


def open_link(page: Any, world: dict[str, Any], token: str) -> Any:
    page.goto(f"{world['urls']['helper']}/page?token={token}")
    wait_for(page, "() => window.__loaded === true")
    page.get_by_role("button", name="Select your bank").click()
    return page.frame_locator('iframe[title="Plaid Link"]')


def result(page: Any) -> dict[str, Any]:
    return dict(wait_for(page, "() => window.__result"))


@pytest.mark.e2e
def test_link_connects_a_houndstooth_account_after_recaptcha_and_a_wrong_password(
    page: Any, api: PlaidApi, world: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    token = api.link_token_create(link_token_request()).link_token
    link = open_link(page, world, token)

    expect(link.get_by_role("heading", name="Connect your bank account")).to_be_visible()
    link.get_by_role("button", name="Continue").click()
    link.get_by_role("textbox", name="Search for your bank").fill("Houndstooth")
    expect(link.get_by_role("button", name="Tartan Bank")).to_have_count(0)
    link.get_by_role("button", name="Houndstooth Bank").click()

    link.get_by_role("checkbox", name="I'm not a robot").check()
    link.get_by_role("button", name="Continue").click()

    link.get_by_role("textbox", name="Username").fill("user_good")
    link.get_by_role("textbox", name="Password").fill("wrong")
    link.get_by_role("button", name="Submit").click()
    expect(link.get_by_role("alert")).to_contain_text("The credentials you provided were incorrect")
    link.get_by_role("textbox", name="Password").fill("pass_good")
    link.get_by_role("button", name="Submit").click()

    link.get_by_role("radio", name="Plaid Saving ••••1111").check()
    link.get_by_role("button", name="Continue").click()

    outcome = result(page)
    metadata = outcome["metadata"]
    assert outcome["kind"] == "success"
    assert metadata["institution"] == {"name": "Houndstooth Bank", "institution_id": "ins_109512"}
    assert metadata["accounts"] == [metadata["account"]]
    assert metadata["account"] | {"id": "*"} == {
        "id": "*",
        "name": "Plaid Saving",
        "mask": "1111",
        "type": "depository",
        "subtype": "savings",
        "verification_status": None,
        "class_type": None,
    }
    assert metadata["account_id"] == metadata["account"]["id"]
    assert metadata["public_token"] == outcome["public_token"]
    assert metadata["link_session_id"]
    expect(page.locator('iframe[title="Plaid Link"]')).to_be_hidden()

    events = [e["name"] for e in page.evaluate("() => window.__events")]
    assert events[0] == "OPEN"
    assert {"SEARCH_INSTITUTION", "SELECT_INSTITUTION", "SUBMIT_CREDENTIALS", "ERROR"} <= set(events)
    assert events[-1] == "HANDOFF"

    # The public token is bound to the bank and the chosen account.
    exchanged = api.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=outcome["public_token"]))
    accounts = api.accounts_get(AccountsGetRequest(access_token=exchanged.access_token))
    assert accounts.item.institution_id == "ins_109512"
    assert [a.account_id for a in accounts.accounts] == [metadata["account_id"]]

    # Like Plaid's, a link token that ended in success cannot open Link again.
    page.get_by_role("button", name="Select your bank").click()
    expect(link.get_by_role("heading", name="Something went wrong")).to_be_visible()
    link.get_by_role("button", name="Exit").click()
    assert result(page)["error"]["error_code"] == "INVALID_LINK_TOKEN"
    assert page.csp_violations == []


@pytest.mark.e2e
def test_link_speaks_the_language_of_its_link_token(page: Any, api: PlaidApi, world: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    # Given a link token created for a French page
    token = api.link_token_create(link_token_request(language="fr")).link_token
    link = open_link(page, world, token)

    # Then Link's screens are in French, its security check naming its audio alternative
    expect(link.get_by_role("heading", name="Connectez votre compte bancaire")).to_be_visible()
    link.get_by_role("button", name="Continuer").click()
    link.get_by_role("textbox", name="Recherchez votre banque").fill("Houndstooth")
    link.get_by_role("button", name="Houndstooth Bank").click()
    expect(link.get_by_role("heading", name="Confirmez que vous êtes une personne")).to_be_visible()
    expect(link.locator("#captcha-audio")).to_contain_text("défi audio")
    assert link.locator("html").get_attribute("lang") == "fr"
    link.get_by_role("button", name="Quitter").click()
    assert result(page)["kind"] == "exit"


@pytest.mark.e2e
def test_exiting_link_reports_where_the_user_left_and_the_last_error(
    page: Any, api: PlaidApi, world: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    token = api.link_token_create(link_token_request()).link_token
    link = open_link(page, world, token)
    link.get_by_role("button", name="Continue").click()
    link.get_by_role("textbox", name="Search for your bank").fill("tartan")
    link.get_by_role("button", name="Tartan Bank").click()
    link.get_by_role("textbox", name="Username").fill("user_good")
    link.get_by_role("textbox", name="Password").fill("nope")
    link.get_by_role("button", name="Submit").click()
    expect(link.get_by_role("alert")).to_contain_text("The credentials you provided were incorrect")
    link.get_by_role("button", name="Exit").click()

    outcome = result(page)
    assert outcome["kind"] == "exit"
    assert outcome["error"]["error_code"] == "INVALID_CREDENTIALS"
    assert outcome["metadata"]["status"] == "requires_credentials"
    assert outcome["metadata"]["institution"] == {"name": "Tartan Bank", "institution_id": "ins_109511"}
    assert outcome["metadata"]["link_session_id"]
    expect(page.locator('iframe[title="Plaid Link"]')).to_be_hidden()

    # Opened again, Link starts over; leaving at once is an exit without error.
    page.get_by_role("button", name="Select your bank").click()
    expect(link.get_by_role("heading", name="Connect your bank account")).to_be_visible()
    link.get_by_role("button", name="Exit").click()
    again = result(page)
    assert (again["error"], again["metadata"]["institution"]) == (None, None)
    assert page.csp_violations == []


@pytest.mark.e2e
def test_an_unknown_link_token_exits_with_invalid_link_token(page: Any, world: dict[str, Any], emulator: str) -> None:
    from playwright.sync_api import expect

    link = open_link(page, world, f"link-sandbox-{uuid.uuid4()}")

    expect(link.get_by_role("heading", name="Something went wrong")).to_be_visible()
    link.get_by_role("button", name="Exit").click()

    outcome = result(page)
    assert outcome["kind"] == "exit"
    assert outcome["error"]["error_type"] == "INVALID_INPUT"
    assert outcome["error"]["error_code"] == "INVALID_LINK_TOKEN"
    assert json.dumps(outcome["metadata"])


@pytest.mark.e2e
def test_three_wrong_passwords_lock_a_tattersall_sign_in(page: Any, api: PlaidApi, world: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    link = open_link(page, world, api.link_token_create(link_token_request()).link_token)
    link.get_by_role("button", name="Continue").click()
    link.get_by_role("button", name="Tattersall Federal Credit Union").click()
    link.get_by_role("textbox", name="Username").fill("user_good")
    for attempt in range(2):
        link.get_by_role("textbox", name="Password").fill(f"wrong-{attempt}")
        link.get_by_role("button", name="Submit").click()
        expect(link.get_by_role("alert")).to_contain_text("The credentials you provided were incorrect")
        expect(link.get_by_role("button", name="Submit")).to_be_enabled()
    link.get_by_role("textbox", name="Password").fill("wrong-2")
    link.get_by_role("button", name="Submit").click()

    expect(link.get_by_role("heading", name="Your account is locked")).to_be_visible()
    link.get_by_role("button", name="Exit").click()
    outcome = result(page)
    assert (outcome["error"]["error_type"], outcome["error"]["error_code"]) == ("ITEM_ERROR", "ITEM_LOCKED")
    assert outcome["metadata"]["status"] == "requires_credentials"
