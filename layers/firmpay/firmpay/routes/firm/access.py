"""What every firm route shares: its paths, who may call it, the ledger and the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from firmpay.api import RestRoutes, caller_arn
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.ledger import Firm
from firmpay.payments import firm_admin

FIRM = "/firm/firms/<firm_id>"
PAYABLE = f"{FIRM}/payables/<payable_id>"
ACCESS = "403 `forbidden` if the caller is not a principal of the firm, 404 `not_found` for an unknown firm."


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    """The ledger, built on the first request (once per container)."""
    return default_ledger()


def authorized_firm(router: RestRoutes, firm_id: str) -> Firm:
    """The firm of the route, if the request's IAM principal is one of its principals (else 403/404)."""
    return firm_admin.authorized_firm(ledger(), firm_id, caller_arn(router))


def now() -> datetime:
    return datetime.now(UTC)
