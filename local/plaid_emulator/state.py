"""The emulator's in-memory state (per run; ``POST /_test/reset`` empties it) and its identifiers."""

from __future__ import annotations

import secrets
import string
import time
import uuid
from dataclasses import dataclass, field

from local.plaid_emulator.institutions import AccountSpec, Institution

LINK_TOKEN_TTL = 4 * 3600
PUBLIC_TOKEN_TTL = 30 * 60
ENVIRONMENT = "sandbox"

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_id(length: int) -> str:
    """An identifier shaped like Plaid's item and account ids (case-sensitive alphanumerics)."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def request_id() -> str:
    return random_id(15)


def link_token() -> str:
    return f"link-{ENVIRONMENT}-{uuid.uuid4()}"


def public_token() -> str:
    return f"public-{ENVIRONMENT}-{uuid.uuid4()}"


def access_token() -> str:
    return f"access-{ENVIRONMENT}-{uuid.uuid4()}"


@dataclass
class Account:
    account_id: str
    spec: AccountSpec


@dataclass
class Item:
    item_id: str
    client_id: str
    institution: Institution
    accounts: list[Account]
    products: list[str]
    webhook: str | None = None
    removed: bool = False

    def account(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


def new_item(client_id: str, institution: Institution, products: list[str], webhook: str | None = None) -> Item:
    return Item(
        item_id=random_id(37),
        client_id=client_id,
        institution=institution,
        accounts=[Account(random_id(37), spec) for spec in institution.accounts],
        products=products,
        webhook=webhook,
    )


@dataclass
class LinkToken:
    token: str
    client_id: str
    client_name: str
    language: str
    products: list[str]
    client_user_id: str
    webhook: str | None
    created_at: float
    expires_at: float
    used: bool = False  # a Link session ended in success with it: Plaid takes it only once


@dataclass
class PublicToken:
    token: str
    client_id: str
    item_id: str
    expires_at: float
    used: bool = False


@dataclass
class LinkSession:
    """One opening of Link: which steps the user has passed (the server enforces their order)."""

    link_session_id: str
    link_token: str
    institution: Institution | None = None
    recaptcha_passed: bool = False
    failed_sign_ins: int = 0
    locked: bool = False
    pending_item: Item | None = None  # after a good sign-in, until an account is chosen
    finished: bool = False


@dataclass
class EmulatorState:
    link_tokens: dict[str, LinkToken] = field(default_factory=dict)
    link_sessions: dict[str, LinkSession] = field(default_factory=dict)
    public_tokens: dict[str, PublicToken] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # access token -> item id
    clock_offset: float = 0.0  # moved forward by POST /_test/clock to test expiry

    def now(self) -> float:
        return time.time() + self.clock_offset

    def reset(self) -> None:
        self.link_tokens.clear()
        self.link_sessions.clear()
        self.public_tokens.clear()
        self.items.clear()
        self.access_tokens.clear()
        self.clock_offset = 0.0

    def issue_public_token(self, item: Item) -> PublicToken:
        self.items[item.item_id] = item
        token = PublicToken(public_token(), item.client_id, item.item_id, self.now() + PUBLIC_TOKEN_TTL)
        self.public_tokens[token.token] = token
        return token
