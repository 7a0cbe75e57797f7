"""What the route modules share: the ledger and Plaid (once per container), and the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from firmpay.ledger import Ledger, default_ledger
from firmpay.payments.ports import BankLinker


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    """The ledger of this deployment, built on first use (a handler may call it at init)."""
    return default_ledger()


def now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def bank_linker() -> BankLinker:
    """Plaid, for the routes that sign in to a bank or remove a bank item (plaid-python loads here, on use)."""
    from firmpay.gateways.plaid_gateway import PlaidGateway

    return PlaidGateway()
