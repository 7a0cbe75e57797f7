"""Firms: create one (the caller becomes its principal) and read it."""

from __future__ import annotations

from firmpay.api import caller_arn, make_router
from firmpay.models.api import CreateFirmRequest, FirmOut
from firmpay.payments import firm_admin as admin
from firmpay.routes.firm.access import ACCESS, FIRM, authorized_firm, ledger, now

router = make_router()


@router.post("/firm/firms", status_code=201, tags=["firm"], summary="Create a firm managed by the caller")
def create_firm(request: CreateFirmRequest) -> FirmOut:
    return admin.create_firm(ledger(), request, caller_arn(router), now())


@router.get(FIRM, tags=["firm"], summary="Read a firm", description=ACCESS)
def get_firm(firm_id: str) -> FirmOut:
    return FirmOut.of(authorized_firm(router, firm_id))
