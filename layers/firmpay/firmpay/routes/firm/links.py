"""A payable's pay link: issue a new one, revoke the current one."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from firmpay.api import make_router
from firmpay.config import get_settings
from firmpay.models.api import IssueLinkRequest, LinkOut, PayableOut
from firmpay.payments import firm_admin as admin
from firmpay.routes.firm.access import ACCESS, PAYABLE, authorized_firm, ledger, now

router = make_router()


@router.post(f"{PAYABLE}/links", status_code=201, tags=["firm"], summary="Issue a pay link", description=ACCESS)
def issue_link(firm_id: str, payable_id: str, request: Annotated[IssueLinkRequest | None, Body()] = None) -> LinkOut:
    settings = get_settings()
    days = (request.expires_in_days if request else None) or settings.pay_link_days
    firm = authorized_firm(router, firm_id)
    return admin.issue_link(ledger(), firm, payable_id, settings.public_base_url, now(), days)


@router.delete(
    f"{PAYABLE}/links/current", status_code=204, tags=["firm"], summary="Revoke the pay link", description=ACCESS
)
def delete_link(firm_id: str, payable_id: str) -> Response[None]:
    admin.revoke_link(ledger(), authorized_firm(router, firm_id), payable_id, now())
    return Response(204, None, None)


@router.post(f"{PAYABLE}/links/revoke", tags=["firm"], summary="Revoke the pay link (POST form)", description=ACCESS)
def revoke_link(firm_id: str, payable_id: str) -> PayableOut:
    return admin.revoke_link(ledger(), authorized_firm(router, firm_id), payable_id, now())
