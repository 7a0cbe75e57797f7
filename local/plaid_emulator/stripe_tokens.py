"""How Plaid makes a Stripe bank account token: Stripe's own API, ``POST /v1/tokens`` with the numbers."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from local.plaid_emulator import errors
from local.plaid_emulator.institutions import ACCOUNT_HOLDER_NAME, Institution
from local.plaid_emulator.state import Account

log = logging.getLogger("local.plaid_emulator")

STRIPE_TIMEOUT = aiohttp.ClientTimeout(total=10)


async def register_bank_name(session: aiohttp.ClientSession, stripe_url: str, institution: Institution) -> None:
    """Tell the Stripe emulator the bank's name for its routing number (test-only; a 404 means it has no such hook)."""
    async with session.post(
        f"{stripe_url}/_test/bank_names",
        json={"routing_number": institution.routing_number, "bank_name": institution.name},
    ) as answer:
        await answer.read()
        if answer.status >= 400 and answer.status != 404:
            log.warning("Stripe emulator answered %s to /_test/bank_names", answer.status)


async def create_bank_account_token(
    session: aiohttp.ClientSession, stripe_url: str, stripe_key: str, institution: Institution, account: Account
) -> str:
    """The ``btok_`` id Stripe gives for this account's routing and account numbers."""
    stripe_url = stripe_url.rstrip("/")
    form = {
        "bank_account[country]": "US",
        "bank_account[currency]": "usd",
        "bank_account[routing_number]": institution.routing_number,
        "bank_account[account_number]": account.spec.account_number,
        "bank_account[account_holder_name]": ACCOUNT_HOLDER_NAME,
        "bank_account[account_holder_type]": "individual",
    }
    try:
        await register_bank_name(session, stripe_url, institution)
        async with session.post(
            f"{stripe_url}/v1/tokens", data=form, headers={"Authorization": f"Bearer {stripe_key}"}
        ) as answer:
            text = await answer.text()
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise errors.internal_error(
            f"could not reach the Stripe API at {stripe_url}: {error or type(error).__name__}"
        ) from error
    body: Any
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if status >= 400 or not isinstance(body, dict) or not isinstance(body.get("id"), str):
        detail = (
            body.get("error", {}).get("message")
            if isinstance(body, dict) and isinstance(body.get("error"), dict)
            else text[:200]
        )
        raise errors.internal_error(f"the Stripe API refused the bank account token (HTTP {status}): {detail}")
    return str(body["id"])
