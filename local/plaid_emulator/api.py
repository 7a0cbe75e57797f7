"""Plaid's server API (the endpoints FirmPay calls, plus the sandbox and institution ones), answers parsing
with plaid-python's own models."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.auth_get_request import AuthGetRequest
from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest
from plaid.model.institutions_search_request import InstitutionsSearchRequest
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.item_remove_request import ItemRemoveRequest
from plaid.model.link_token_create_request import LinkTokenCreateRequest
from plaid.model.processor_stripe_bank_account_token_create_request import (
    ProcessorStripeBankAccountTokenCreateRequest,
)
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest
from plaid.model_utils import ModelNormal

from local.plaid_emulator import contract, errors, institutions
from local.plaid_emulator.institutions import SANDBOX_PASSWORD, SANDBOX_USERNAME, Institution
from local.plaid_emulator.state import (
    LINK_TOKEN_TTL,
    Account,
    EmulatorState,
    Item,
    LinkToken,
    access_token,
    link_token,
    new_item,
)
from local.plaid_emulator.stripe_tokens import create_bank_account_token
from local.plaid_emulator.web import CONFIG, HTTP, STATE, Body, answer, read_body

# Languages Link is offered in.
LANGUAGES = frozenset(
    {"da", "de", "en", "es", "et", "fr", "hi", "it", "ja", "lt", "lv", "nl", "no", "pl", "pt", "ro", "sv", "vi", "zh"}
)
# Link shows this instead of a client_name longer than 30 characters.
LONG_CLIENT_NAME = "This Application"


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- request plumbing -----------------------------------------------------------------------------

Endpoint = Callable[[web.Request, Body, str], Awaitable[dict[str, Any]]]


def authenticate(request: web.Request, body: Body) -> str:
    """The caller's client_id: from the body or plaid-python's PLAID-CLIENT-ID / PLAID-SECRET headers."""
    client_id = body.optional_string("client_id") or str(request.headers.get("PLAID-CLIENT-ID") or "")
    secret = body.optional_string("secret") or str(request.headers.get("PLAID-SECRET") or "")
    missing = [name for name, value in (("client_id", client_id), ("secret", secret)) if not value]
    if missing:
        raise errors.missing_fields(*missing)
    config = request.app[CONFIG]
    if config.client_id is not None and not (
        hmac.compare_digest(client_id.encode(), config.client_id.encode())
        and hmac.compare_digest(secret.encode(), (config.secret or "").encode())
    ):
        raise errors.invalid_api_keys()
    return client_id


Handler = Callable[[web.Request], Awaitable[web.Response]]


def endpoint(model: type[ModelNormal]) -> Callable[[Endpoint], Handler]:
    """An endpoint whose body must parse as plaid-python's ``model`` (the request type the SDK sends)."""

    def wrap(fn: Endpoint) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            body = await read_body(request)
            client_id = authenticate(request, body)
            contract.parse_request(model, body.data)
            return answer(request, await fn(request, body, client_id))

        return handle

    return wrap


def state_of(request: web.Request) -> EmulatorState:
    return request.app[STATE]


def item_for(request: web.Request, body: Body, client_id: str) -> Item:
    """The live Item behind the request's access_token (INVALID_ACCESS_TOKEN otherwise, removed ones included)."""
    token = body.string("access_token")
    if not token.startswith("access-"):
        raise errors.invalid_access_token(malformed=True)
    state = state_of(request)
    item = state.items.get(state.access_tokens.get(token, ""))
    if item is None or item.removed or item.client_id != client_id:
        raise errors.invalid_access_token()
    return item


def country_codes(body: Body) -> list[str]:
    codes = body.strings("country_codes")
    if codes != ["US"]:
        raise errors.invalid_field('country_codes must be ["US"]: the emulator\'s institutions are all in the US')
    return codes


def institution_by_id(body: Body) -> Institution:
    institution = institutions.BY_ID.get(body.string("institution_id"))
    if institution is None:
        raise errors.invalid_institution()
    return institution


def products_of(body: Body, name: str) -> list[str]:
    # Products outside plaid-python's ``Products`` enum were refused by the contract already.
    return body.strings(name)


def selected_accounts(item: Item, options: Body) -> list[Account]:
    wanted = options.strings("account_ids", required=False)
    if not options.has("account_ids"):
        return item.accounts
    chosen = [item.account(account_id) for account_id in wanted]
    if any(a is None for a in chosen):
        raise errors.invalid_account_id()
    return [a for a in chosen if a is not None]


# -- serialisation (the shapes of plaid-python's models) ------------------------------------------


def account_json(account: Account) -> dict[str, Any]:
    spec = account.spec
    return {
        "account_id": account.account_id,
        "balances": {
            "available": spec.available,
            "current": spec.current,
            "limit": None,
            "iso_currency_code": "USD",
            "unofficial_currency_code": None,
        },
        "mask": spec.mask,
        "name": spec.name,
        "official_name": spec.official_name,
        "type": "depository",
        "subtype": spec.subtype,
        "holder_category": "personal",
    }


def item_json(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "institution_id": item.institution.institution_id,
        "institution_name": item.institution.name,
        "webhook": item.webhook or "",
        "error": None,
        "available_products": sorted(set(institutions.INSTITUTION_PRODUCTS) - set(item.products)),
        "billed_products": sorted(item.products),
        "products": sorted(item.products),
        "consented_products": sorted(item.products),
        "consent_expiration_time": None,
        "update_type": "background",
        "auth_method": "INSTANT_AUTH",
    }


def institution_json(institution: Institution, optional_metadata: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "institution_id": institution.institution_id,
        "name": institution.name,
        "products": list(institutions.INSTITUTION_PRODUCTS),
        "country_codes": ["US"],
        "routing_numbers": [institution.routing_number],
        "dtc_numbers": [],
        "oauth": False,
        "connection_availability": "SUPPORTED",
    }
    if optional_metadata:
        body |= {"url": institution.url, "primary_color": institution.primary_color, "logo": None}
    return body


# -- endpoints ------------------------------------------------------------------------------------


@endpoint(LinkTokenCreateRequest)
async def link_token_create(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    client_name = body.string("client_name")
    language = body.string("language")
    if language not in LANGUAGES:
        raise errors.invalid_field(f"language must be one of {', '.join(sorted(LANGUAGES))}")
    country_codes(body)
    user = body.obj("user", required=True)
    client_user_id = user.string("client_user_id")
    products = products_of(body, "products")
    if "auth" not in products:
        raise errors.invalid_field("products must include auth: the emulator serves Auth (eCheck) only")
    state = state_of(request)
    now = state.now()
    token = LinkToken(
        token=link_token(),
        client_id=client_id,
        client_name=client_name if len(client_name) <= 30 else LONG_CLIENT_NAME,
        language=language,
        products=products,
        client_user_id=client_user_id,
        webhook=body.optional_string("webhook"),
        created_at=now,
        expires_at=now + LINK_TOKEN_TTL,
    )
    state.link_tokens[token.token] = token
    return {"link_token": token.token, "expiration": iso(token.expires_at)}


@endpoint(SandboxPublicTokenCreateRequest)
async def sandbox_public_token_create(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    institution = institution_by_id(body)
    products = products_of(body, "initial_products")
    options = body.obj("options")
    username = options.optional_string("override_username") or SANDBOX_USERNAME
    password = options.optional_string("override_password") or SANDBOX_PASSWORD
    check_credentials(username, password)
    state = state_of(request)
    item = new_item(client_id, institution, products, options.optional_string("webhook"))
    return {"public_token": state.issue_public_token(item).token}


def check_credentials(username: str, password: str) -> None:
    """Plaid's sandbox sign-in: user_good / pass_good; password ``error_<CODE>`` fails with that code."""
    if password.startswith("error_") and password[6:] in errors.SANDBOX_ERRORS:
        raise errors.SANDBOX_ERRORS[password[6:]]
    if username != SANDBOX_USERNAME or password != SANDBOX_PASSWORD:
        raise errors.invalid_credentials()


@endpoint(ItemPublicTokenExchangeRequest)
async def item_public_token_exchange(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    token = body.string("public_token")
    state = state_of(request)
    public = state.public_tokens.get(token)
    if public is None or public.used or public.client_id != client_id:
        raise errors.invalid_public_token()
    if state.now() >= public.expires_at:
        raise errors.invalid_public_token(expired=True)
    item = state.items.get(public.item_id)
    if item is None or item.removed:
        raise errors.invalid_public_token()
    public.used = True
    access = access_token()
    state.access_tokens[access] = item.item_id
    return {"access_token": access, "item_id": item.item_id}


@endpoint(AccountsGetRequest)
async def accounts_get(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    item = item_for(request, body, client_id)
    accounts = selected_accounts(item, body.obj("options"))
    return {"accounts": [account_json(a) for a in accounts], "item": item_json(item)}


@endpoint(AuthGetRequest)
async def auth_get(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    item = item_for(request, body, client_id)
    accounts = selected_accounts(item, body.obj("options"))
    ach = [
        {
            "account_id": a.account_id,
            "account": a.spec.account_number,
            "routing": item.institution.routing_number,
            "wire_routing": item.institution.routing_number,
            "is_tokenized_account_number": False,
        }
        for a in accounts
    ]
    return {
        "accounts": [account_json(a) for a in accounts],
        "numbers": {"ach": ach, "eft": [], "international": [], "bacs": []},
        "item": item_json(item),
    }


@endpoint(ItemGetRequest)
async def item_get(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    return {"item": item_json(item_for(request, body, client_id))}


@endpoint(ItemRemoveRequest)
async def item_remove(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    item = item_for(request, body, client_id)
    item.removed = True
    state = state_of(request)
    for token in [t for t, item_id in state.access_tokens.items() if item_id == item.item_id]:
        del state.access_tokens[token]
    return {}


@endpoint(InstitutionsSearchRequest)
async def institutions_search(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    query = body.string("query")
    codes = body.strings("country_codes")
    products = set(body.strings("products", required=False)) if body.has("products") else set()
    options = body.obj("options")
    found = [
        i for i in institutions.search(query) if "US" in codes and products <= set(institutions.INSTITUTION_PRODUCTS)
    ]
    metadata = options.boolean("include_optional_metadata")
    return {"institutions": [institution_json(i, metadata) for i in found]}


@endpoint(InstitutionsGetByIdRequest)
async def institutions_get_by_id(request: web.Request, body: Body, client_id: str) -> dict[str, Any]:
    institution = institution_by_id(body)
    if "US" not in body.strings("country_codes"):
        raise errors.invalid_institution()
    metadata = body.obj("options").boolean("include_optional_metadata")
    return {"institution": institution_json(institution, metadata)}


@endpoint(ProcessorStripeBankAccountTokenCreateRequest)
async def processor_stripe_bank_account_token_create(
    request: web.Request, body: Body, client_id: str
) -> dict[str, Any]:
    item = item_for(request, body, client_id)
    account = item.account(body.string("account_id"))
    if account is None:
        raise errors.invalid_account_id()
    config = request.app[CONFIG]
    token = await create_bank_account_token(
        request.app[HTTP], config.stripe_url, config.stripe_key, item.institution, account
    )
    return {"stripe_bank_account_token": token}


ROUTES: dict[str, Handler] = {
    "/link/token/create": link_token_create,
    "/sandbox/public_token/create": sandbox_public_token_create,
    "/item/public_token/exchange": item_public_token_exchange,
    "/accounts/get": accounts_get,
    "/auth/get": auth_get,
    "/item/get": item_get,
    "/item/remove": item_remove,
    "/institutions/search": institutions_search,
    "/institutions/get_by_id": institutions_get_by_id,
    "/processor/stripe/bank_account_token/create": processor_stripe_bank_account_token_create,
}
