"""A firm's clients."""

from __future__ import annotations

from firmpay.api import make_router
from firmpay.models.api import ClientOut, CreateClientRequest
from firmpay.payments import firm_admin as admin
from firmpay.routes.firm.access import ACCESS, FIRM, authorized_firm, ledger, now

router = make_router()


@router.post(f"{FIRM}/clients", status_code=201, tags=["firm"], summary="Add a client", description=ACCESS)
def create_client(firm_id: str, request: CreateClientRequest) -> ClientOut:
    return admin.create_client(ledger(), authorized_firm(router, firm_id), request, now())


@router.get(f"{FIRM}/clients/<client_id>", tags=["firm"], summary="Read a client", description=ACCESS)
def get_client(firm_id: str, client_id: str) -> ClientOut:
    return admin.get_client(ledger(), authorized_firm(router, firm_id), client_id)
