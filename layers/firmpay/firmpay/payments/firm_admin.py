"""The firm API's use cases: firms, clients, bills, trust requests and their pay links.

Who may do what: API Gateway lets only SigV4-signed requests in (``AWS_IAM``), and hands us the
caller's IAM ARN. A firm is managed by the principals recorded on it (the creator's, to begin
with). For a firm id:

- unknown (or malformed): 404 ``not_found``;
- known, but the caller is not one of its principals: 403 ``forbidden``;
- a client or payable id that belongs to another firm: 404 ``not_found`` (it does not exist *for
  this firm*, and the answer does not tell whether it exists elsewhere).

Telling "unknown" from "not yours" only helps someone who can already sign requests as an IAM
principal of our account, and firm ids are 96-bit random; the distinction saves firms' engineers
real debugging time.

Every refusal happens before the first write, and every write is a single conditional request
or transaction, so a refused request changes nothing in the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from firmpay.errors import CurrencyNotAccepted, Forbidden, NotFound, PayableClosed, ServiceUnavailable
from firmpay.ledger import Ledger
from firmpay.ledger.repository import PayableHistory
from firmpay.models.api import (
    ClientOut,
    CreateBillRequest,
    CreateClientRequest,
    CreateFirmRequest,
    CreateTrustRequestRequest,
    FirmOut,
    LinkOut,
    PayableOut,
    StoredMethodOut,
    StoredMethodsOut,
)
from firmpay.models.ledger import (
    Client,
    DepositAccount,
    Firm,
    LineItem,
    Payable,
    PayableStatus,
    Payment,
    StoredMethod,
    new_id,
)
from firmpay.payments.links import issue_pay_link
from firmpay.payments.ports import PayLinkMailer, PaymentProcessor
from firmpay.payments.processor import ProcessorUnavailable

_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# arn:aws:sts::123456789012:assumed-role/BillingSync/i-0abc... -> one principal for every session.
_ASSUMED_ROLE = re.compile(r"^(arn:[a-z0-9-]+:sts::\d{12}:assumed-role/[^/]+)/.+$")


def is_resource_id(value: str) -> bool:
    """Whether ``value`` looks like one of our ids (anything else is "not found" without a read)."""
    return _ID.fullmatch(value) is not None


def principal_of(caller_arn: str) -> str:
    """The principal a firm records for a caller: the ARN, without an assumed role's session name.

    A role's session name changes with every ``AssumeRole``; the firm trusts the role.
    """
    found = _ASSUMED_ROLE.fullmatch(caller_arn)
    return found.group(1) if found else caller_arn


# -- firms ---------------------------------------------------------------------------------------


def create_firm(ledger: Ledger, request: CreateFirmRequest, caller_arn: str, now: datetime) -> FirmOut:
    """Store a new firm managed by the caller's principal."""
    firm = Firm(
        firm_id=new_id("firm"),
        name=request.name,
        country=request.country,
        region=request.region,
        currency=request.currency,
        language=request.language,
        operating_account=DepositAccount(name=request.operating_account.name, last4=request.operating_account.last4),
        trust_account=DepositAccount(name=request.trust_account.name, last4=request.trust_account.last4),
        reply_to_email=request.reply_to_email,
        principals=[principal_of(caller_arn)],
        echeck_max_minor=request.echeck_max_minor,
        echeck_daily_limit=request.echeck_daily_limit,
        created_at=now,
    )
    ledger.create_firm(firm)
    return FirmOut.of(firm)


def authorized_firm(ledger: Ledger, firm_id: str, caller_arn: str) -> Firm:
    """The firm, if the caller may manage it: 404 when unknown, 403 when it is someone else's."""
    firm = ledger.get_firm(firm_id) if _ID.fullmatch(firm_id) else None
    if firm is None:
        raise NotFound("No such firm.")
    if principal_of(caller_arn) not in firm.principals:
        raise Forbidden("Your IAM principal is not allowed to manage this firm.")
    return firm


# -- clients -------------------------------------------------------------------------------------


def create_client(ledger: Ledger, firm: Firm, request: CreateClientRequest, now: datetime) -> ClientOut:
    client = Client(
        client_id=new_id("cli"), firm_id=firm.firm_id, name=request.name, email=request.email, created_at=now
    )
    ledger.create_client(client)
    return ClientOut.of(client)


def client_of(ledger: Ledger, firm: Firm, client_id: str) -> Client:
    """A client of this firm; 404 for an unknown id or another firm's client."""
    client = ledger.get_client(firm.firm_id, client_id) if _ID.fullmatch(client_id) else None
    if client is None:
        raise NotFound("No such client at this firm.")
    return client


def get_client(ledger: Ledger, firm: Firm, client_id: str) -> ClientOut:
    return ClientOut.of(client_of(ledger, firm, client_id))


# -- bills and trust requests --------------------------------------------------------------------


def _check_currency(firm: Firm, currency: str) -> None:
    if currency != firm.currency:
        raise CurrencyNotAccepted(f"{firm.name} bills in {firm.currency}, not {currency}.")


def create_bill(ledger: Ledger, firm: Firm, request: CreateBillRequest, now: datetime) -> PayableOut:
    """A bill for one of the firm's clients; its total (and opening balance) is the sum of its items.

    A bill number already used by the firm is a 409 ``conflict``, unless this is the same request
    again (a retry after a lost answer): then the bill it made is the answer.
    """
    _check_currency(firm, request.currency)
    client = client_of(ledger, firm, request.client_id)
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
    return PayableOut.of(ledger.create_payable(payable))


def create_trust_request(ledger: Ledger, firm: Firm, request: CreateTrustRequestRequest, now: datetime) -> PayableOut:
    """A request to deposit ``amount_minor`` into the firm's trust account (numbers unique per firm)."""
    _check_currency(firm, request.currency)
    client = client_of(ledger, firm, request.client_id)
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
    return PayableOut.of(ledger.create_payable(payable))


def payable_of(ledger: Ledger, firm: Firm, payable_id: str) -> tuple[Payable, list[Payment]]:
    """A payable of this firm with its payments (one query); 404 for another firm's."""
    history = history_of(ledger, firm, payable_id)
    return history.payable, history.payments


def history_of(ledger: Ledger, firm: Firm, payable_id: str) -> PayableHistory:
    """A payable of this firm with its payments and refunds (one query); 404 for another firm's."""
    missing = NotFound("No such bill or trust request at this firm.")
    if not _ID.fullmatch(payable_id):
        raise missing
    try:
        history = ledger.get_payable_history(payable_id)
    except NotFound:
        raise missing from None
    if history.payable.firm_id != firm.firm_id:
        raise missing
    return history


def get_payable(ledger: Ledger, firm: Firm, payable_id: str) -> PayableOut:
    history = history_of(ledger, firm, payable_id)
    return PayableOut.of(history.payable, history.payments, history.refunds)


def void_payable(ledger: Ledger, firm: Firm, payable_id: str, now: datetime) -> PayableOut:
    """Void a payable so it can no longer be paid. Voiding twice is harmless.

    Refused (409) while a payment is in flight (``conflict``: the ledger's condition, so a payment
    reserving at the same moment cannot slip through) and for a bill paid in full
    (``payable_closed``: there is nothing left to void).
    """
    history = history_of(ledger, firm, payable_id)
    if history.payable.status is PayableStatus.PAID:
        raise PayableClosed("This payable has been paid in full; there is nothing left to void.")
    return PayableOut.of(ledger.void_payable(payable_id, now), history.payments, history.refunds)


# -- pay links -----------------------------------------------------------------------------------


def _refuse_closed(payable: Payable) -> None:
    if payable.voided_at is not None:
        raise PayableClosed("This payable is void; it cannot get a pay link.")
    if payable.balance_minor == 0:
        raise PayableClosed(
            "This payable has been paid in full; it needs no pay link."
            if payable.pending_minor == 0
            else "A payment for the whole balance is in progress; no pay link is needed."
        )


def issue_link(ledger: Ledger, firm: Firm, payable_id: str, base_url: str, now: datetime, days: int) -> LinkOut:
    """A new pay link for an open payable; the previous link stops working at the same moment.

    The token is in the returned URL only: the ledger keeps its SHA-256.
    """
    payable, _ = payable_of(ledger, firm, payable_id)
    _refuse_closed(payable)
    url, link = issue_pay_link(ledger, payable, base_url, now, days)
    return LinkOut(url=url, expires_at=link.expires_at)


def revoke_link(ledger: Ledger, firm: Firm, payable_id: str, now: datetime) -> PayableOut:
    """Revoke the payable's current pay link; 404 when it has none."""
    history = history_of(ledger, firm, payable_id)
    if not ledger.revoke_current_link(history.payable, now):
        raise NotFound("This payable has no active pay link.")
    payable = history.payable.model_copy(update={"current_link_hash": None})
    return PayableOut.of(payable, history.payments, history.refunds)


def send_payable(
    ledger: Ledger,
    mailer: PayLinkMailer,
    firm: Firm,
    payable_id: str,
    base_url: str,
    now: datetime,
    days: int,
) -> LinkOut:
    """Email the payable to its client with a fresh "Pay online now" link (sending again re-issues)."""
    payable, _ = payable_of(ledger, firm, payable_id)
    _refuse_closed(payable)
    client = client_of(ledger, firm, payable.client_id)
    url, link = issue_pay_link(ledger, payable, base_url, now, days)
    mailer.send_payable(firm, client, payable, url)
    return LinkOut(url=url, expires_at=link.expires_at)


# -- stored methods ------------------------------------------------------------------------------


def list_methods(ledger: Ledger, firm: Firm, client_id: str) -> StoredMethodsOut:
    """The methods the client stored at this firm (revoked ones too, with their status)."""
    client = client_of(ledger, firm, client_id)
    methods = sorted(ledger.list_methods(firm.firm_id, client.client_id), key=lambda m: m.created_at)
    return StoredMethodsOut(methods=[StoredMethodOut.of(m) for m in methods])


def method_of(ledger: Ledger, firm: Firm, client_id: str, method_id: str) -> StoredMethod:
    """A stored method of this firm's client; 404 for an unknown id or someone else's method."""
    client = client_of(ledger, firm, client_id)
    method = ledger.get_method(firm.firm_id, client.client_id, method_id) if _ID.fullmatch(method_id) else None
    if method is None:
        raise NotFound("No such stored payment method for this client.")
    return method


def revoke_method(
    ledger: Ledger,
    processor: PaymentProcessor,
    method: StoredMethod,
    forget_bank_item: Callable[[StoredMethod], None] | None = None,
) -> StoredMethod:
    """Never charge ``method`` again: revoked in the ledger first (autopay and plans check it),
    then detached from the client's customer at Stripe and, for a bank account linked through
    Plaid (one stored with its access token), its Plaid item removed (``forget_bank_item``).
    Revoking again retries the detach and the removal.
    """
    if method.status != "revoked":
        ledger.set_method_status(method, "revoked")
    try:
        processor.detach_method(method.processor_customer_id, method.processor_method_id)
    except ProcessorUnavailable as error:
        raise ServiceUnavailable("The method is revoked; removing it at the processor failed, try again.") from error
    if forget_bank_item is not None and method.encrypted_access_token:
        forget_bank_item(method)
    return method.model_copy(update={"status": "revoked"})
