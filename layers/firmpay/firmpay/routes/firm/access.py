"""What every firm route shares: its paths, who may call it, the ledger and the clock."""

from __future__ import annotations

from firmpay.api import RestRoutes, caller_arn
from firmpay.models.ledger import Firm
from firmpay.payments import firm_admin
from firmpay.routes.shared import ledger, now

__all__ = ["ACCESS", "FIRM", "PAYABLE", "authorized_firm", "ledger", "now"]

FIRM = "/firm/firms/<firm_id>"
PAYABLE = f"{FIRM}/payables/<payable_id>"
ACCESS = "403 `forbidden` if the caller is not a principal of the firm, 404 `not_found` for an unknown firm."


def authorized_firm(router: RestRoutes, firm_id: str) -> Firm:
    """The firm of the route, if the request's IAM principal is one of its principals (else 403/404)."""
    return firm_admin.authorized_firm(ledger(), firm_id, caller_arn(router))
