"""The firm API's use cases: firms, clients, bills, trust requests, links; access by IAM principal.

Authorization: the caller's IAM ARN must be one of the firm's principals. An unknown firm is a
404; someone else's firm is a 403; a client or payable of another firm is a 404 (it does not
exist *for this firm*).
"""

from __future__ import annotations

from datetime import datetime

from firmpay.errors import CurrencyNotAccepted, Forbidden, NotFound, PayableClosed
from firmpay.ledger import Ledger
from firmpay.models.api import (
    CreateBillRequest,
    CreateClientRequest,
    CreateFirmRequest,
    CreateTrustRequestRequest,
    LinkOut,
    MoneyOut,
    PayableOut,
    PaymentOut,
)
from firmpay.models.ledger import Client, DepositAccount, Firm, LineItem, Payable, Payment, new_id
from firmpay.payments.links import PayLinkMailer, issue_pay_link


def create_firm(ledger: Ledger, request: CreateFirmRequest, caller: str, now: datetime) -> Firm:
    firm = Firm(
        firm_id=new_id("firm"),
        name=request.name,
        country=request.country,
        currency=request.currency,
        language=request.language,
        operating_account=DepositAccount(**request.operating_account.model_dump()),
        trust_account=DepositAccount(**request.trust_account.model_dump()),
        reply_to_email=request.reply_to_email,
        principals=[caller],
        echeck_max_minor=request.echeck_max_minor,
        echeck_daily_limit=request.echeck_daily_limit,
        created_at=now,
    )
    ledger.create_firm(firm)
    return firm


def firm_for(ledger: Ledger, firm_id: str, caller: str) -> Firm:
    """The firm, if the caller may manage it."""
    firm = ledger.get_firm(firm_id) if len(firm_id) <= 80 else None
    if firm is None:
        raise NotFound("No such firm.")
    if caller not in firm.principals:
        raise Forbidden("Your IAM principal is not allowed to manage this firm.")
    return firm


def create_client(ledger: Ledger, firm: Firm, request: CreateClientRequest, now: datetime) -> Client:
    client = Client(
        client_id=new_id("cli"), firm_id=firm.firm_id, name=request.name, email=request.email, created_at=now
    )
    ledger.create_client(client)
    return client


def client_of(ledger: Ledger, firm: Firm, client_id: str) -> Client:
    client = ledger.get_client(firm.firm_id, client_id) if len(client_id) <= 80 else None
    if client is None:
        raise NotFound("No such client at this firm.")
    return client


def create_bill(ledger: Ledger, firm: Firm, request: CreateBillRequest, now: datetime) -> Payable:
    client = client_of(ledger, firm, request.client_id)
    if request.currency != firm.currency:
        raise CurrencyNotAccepted(f"{firm.name} bills in {firm.currency}.")
    items = [LineItem(description=i.description, amount_minor=i.amount_minor) for i in request.line_items]
    total = sum(i.amount_minor for i in items)
    payable = Payable(
        payable_id=new_id("pbl"),
        firm_id=firm.firm_id,
        client_id=client.client_id,
        kind="bill",
        number=request.number,
        issued_on=request.issued_on,
        due_on=request.due_on,
        currency=firm.currency,
        line_items=items,
        memo=request.memo,
        total_minor=total,
        balance_minor=total,
        created_at=now,
    )
    ledger.create_payable(payable)
    return payable


def create_trust_request(ledger: Ledger, firm: Firm, request: CreateTrustRequestRequest, now: datetime) -> Payable:
    client = client_of(ledger, firm, request.client_id)
    if request.currency != firm.currency:
        raise CurrencyNotAccepted(f"{firm.name} bills in {firm.currency}.")
    payable = Payable(
        payable_id=new_id("pbl"),
        firm_id=firm.firm_id,
        client_id=client.client_id,
        kind="trust_request",
        number=request.number,
        issued_on=request.issued_on,
        due_on=request.due_on,
        currency=firm.currency,
        memo=request.memo,
        total_minor=request.amount_minor,
        balance_minor=request.amount_minor,
        created_at=now,
    )
    ledger.create_payable(payable)
    return payable


def payable_of(ledger: Ledger, firm: Firm, payable_id: str) -> tuple[Payable, list[Payment]]:
    if len(payable_id) > 80:
        raise NotFound("No such bill or trust request at this firm.")
    try:
        payable, payments = ledger.get_payable_with_payments(payable_id)
    except NotFound:
        raise NotFound("No such bill or trust request at this firm.") from None
    if payable.firm_id != firm.firm_id:
        raise NotFound("No such bill or trust request at this firm.")
    return payable, payments


def payable_out(payable: Payable, payments: list[Payment] | None = None) -> PayableOut:
    def money(amount: int) -> MoneyOut:
        return MoneyOut(amount_minor=amount, currency=payable.currency)

    return PayableOut(
        payable_id=payable.payable_id,
        firm_id=payable.firm_id,
        client_id=payable.client_id,
        kind=payable.kind,
        number=payable.number,
        issued_on=payable.issued_on,
        due_on=payable.due_on,
        currency=payable.currency,
        line_items=[i.model_dump() for i in payable.line_items],
        memo=payable.memo,
        total=money(payable.total_minor),
        paid=money(payable.paid_minor),
        pending=money(payable.pending_minor),
        balance=money(payable.balance_minor),
        status=payable.status.value,
        has_active_link=payable.current_link_hash is not None,
        payments=[
            PaymentOut(
                payment_id=p.payment_id,
                reference=p.reference,
                amount=money(p.amount_minor),
                status=p.status.value,
                method=p.method.label(),
                destination=p.destination,
                fee_minor=p.fee_minor,
                failure_code=p.failure_code,
                return_code=p.return_code,
                origin=p.origin,
                created_at=p.created_at,
            )
            for p in payments or []
        ],
    )


def issue_link(ledger: Ledger, payable: Payable, base_url: str, now: datetime, days: int) -> LinkOut:
    if not payable.open_for_payment:
        raise PayableClosed("This payable is void or paid; it needs no pay link.")
    url, link = issue_pay_link(ledger, payable, base_url, now, days)
    return LinkOut(url=url, expires_at=link.expires_at)


def send_to_client(
    ledger: Ledger, mailer: PayLinkMailer, firm: Firm, payable: Payable, base_url: str, now: datetime, days: int
) -> LinkOut:
    """Email the payable to its client with a fresh "Pay online now" link (re-sending re-issues)."""
    client = client_of(ledger, firm, payable.client_id)
    link = issue_link(ledger, payable, base_url, now, days)
    current = ledger.get_payable(payable.payable_id) or payable
    mailer.send_payable(firm, client, current, link.url)
    return link
