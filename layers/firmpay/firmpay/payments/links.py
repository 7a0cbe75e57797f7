"""Pay links: issue, resolve, revoke, and the client's "Email me a new link".

A token is 256 random bits, URL-safe; only its SHA-256 is stored, so a leaked table does not
leak usable links, and a lookup by hash is a constant-time operation on our side (no comparison
of secrets in Python).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from firmpay.errors import PayLinkExpired, PayLinkNotFound
from firmpay.ledger import Ledger, LinkContext
from firmpay.models.ledger import Payable, PayLink
from firmpay.payments.ports import PayLinkMailer

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def pay_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/pay/{token}"


def issue_pay_link(
    ledger: Ledger, payable: Payable, base_url: str, now: datetime, days: int = 90
) -> tuple[str, PayLink]:
    """Create the payable's new link (revoking the previous one); return its URL, shown once."""
    token = new_token()
    link = PayLink(
        token_hash=hash_token(token),
        payable_id=payable.payable_id,
        firm_id=payable.firm_id,
        client_id=payable.client_id,
        expires_at=now + timedelta(days=days),
        created_at=now,
    )
    ledger.issue_link(link, payable)
    return pay_url(base_url, token), link


def find_link(ledger: Ledger, token: str) -> PayLink:
    """The stored link for ``token``; malformed and unknown tokens are the same 404."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise PayLinkNotFound()
    link = ledger.get_link(hash_token(token))
    if link is None:
        raise PayLinkNotFound()
    return link


def usable_link(ledger: Ledger, token: str, now: datetime) -> PayLink:
    """The stored link for ``token`` if a client may still pay through it (one GetItem): 404
    ``link_not_found`` for a malformed or unknown token, 410 ``link_expired`` for an expired or
    revoked link. Whether the payable is still open is the use case's to check."""
    link = find_link(ledger, token)
    if not link.is_usable(now):
        raise PayLinkExpired()
    return link


def resolve_link(ledger: Ledger, token: str, now: datetime) -> LinkContext:
    """The payable, firm and client behind a usable link (2 DynamoDB requests)."""
    return ledger.load_link_context(usable_link(ledger, token, now))


def send_new_link(
    ledger: Ledger, mailer: PayLinkMailer, token: str, base_url: str, now: datetime, days: int = 90
) -> None:
    """Email a fresh link to the address on file, for an *expired* link that is still current.

    Unknown, revoked or replaced links are ignored silently: the answer never tells whether a
    token exists or to which address anything was sent.
    """
    try:
        link = find_link(ledger, token)
    except PayLinkNotFound:
        return
    if link.revoked_at is not None or link.is_usable(now):
        return
    context = ledger.load_link_context(link)
    if context.payable.current_link_hash != link.token_hash or not context.payable.open_for_payment:
        return
    url, _ = issue_pay_link(ledger, context.payable, base_url, now, days)
    mailer.send_payable(context.firm, context.client, context.payable, url)
