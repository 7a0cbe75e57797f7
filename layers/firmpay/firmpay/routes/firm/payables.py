"""Bills and trust requests: create, read, void, and email to the client with a new pay link."""

from __future__ import annotations

from firmpay.api import make_router
from firmpay.config import get_settings
from firmpay.models.api import CreateBillRequest, CreateTrustRequestRequest, LinkOut, PayableOut
from firmpay.payments import firm_admin as admin
from firmpay.routes.firm.access import ACCESS, FIRM, PAYABLE, authorized_firm, ledger, now

router = make_router()


@router.post(f"{FIRM}/bills", status_code=201, tags=["firm"], summary="Create a bill", description=ACCESS)
def create_bill(firm_id: str, request: CreateBillRequest) -> PayableOut:
    return admin.create_bill(ledger(), authorized_firm(router, firm_id), request, now())


@router.post(
    f"{FIRM}/trust-requests", status_code=201, tags=["firm"], summary="Create a trust request", description=ACCESS
)
def create_trust_request(firm_id: str, request: CreateTrustRequestRequest) -> PayableOut:
    return admin.create_trust_request(ledger(), authorized_firm(router, firm_id), request, now())


@router.get(PAYABLE, tags=["firm"], summary="Read a bill or trust request with its payments", description=ACCESS)
def get_payable(firm_id: str, payable_id: str) -> PayableOut:
    return admin.get_payable(ledger(), authorized_firm(router, firm_id), payable_id)


@router.post(f"{PAYABLE}/void", tags=["firm"], summary="Void a bill or trust request", description=ACCESS)
def void_payable(firm_id: str, payable_id: str) -> PayableOut:
    return admin.void_payable(ledger(), authorized_firm(router, firm_id), payable_id, now())


@router.post(f"{PAYABLE}/send", tags=["firm"], summary="Email the payable with a new pay link", description=ACCESS)
def send_payable(firm_id: str, payable_id: str) -> LinkOut:
    from firmpay.emails.mailer import SesMailer  # SES is loaded by the first send only

    settings = get_settings()
    firm = authorized_firm(router, firm_id)
    days = settings.pay_link_days
    return admin.send_payable(ledger(), SesMailer(), firm, payable_id, settings.public_base_url, now(), days)
