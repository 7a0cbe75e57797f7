"""The client's "Remove it" link for a stored payment method, from their confirmation email.

A client who stored a card or a bank account while paying finds, in that payment's confirmation
email, a link that removes it without signing in anywhere: the link is the credential. Like a pay
link, its token is 256 random bits and only its SHA-256 is stored (``REMOVE#<sha256>``), so a
leaked table leaks no usable link; it works for 400 days, then DynamoDB's TTL deletes it. The email
issues it after its sent-once claim, so a redelivered stream record never issues a second one for
an email already sent.

Removing is the firm's revoke (``firm_admin.revoke_method``): the ledger first (autopay and plans
refuse the method from that moment), then the detach at Stripe. Removing again retries the detach
and says it was already removed. Unknown, malformed and expired tokens are the same 404, after the
same single read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from firmpay.errors import NotFound, ServiceUnavailable
from firmpay.ledger import Ledger
from firmpay.models.ledger import Firm, MethodRemovalLink, Payment, StoredMethod
from firmpay.payments.links import TOKEN_PATTERN, hash_token, new_token
from firmpay.payments.ports import PaymentProcessor

REMOVAL_LINK_DAYS = 400

RemovalResult = Literal["removed", "already_removed", "retry"]


class RemovalLinkNotFound(NotFound):
    default_message = "This link is not valid or has expired."


@dataclass(frozen=True)
class RemovalOffer:
    """What a confirmation email shows: the stored method's label and the link that removes it."""

    url: str
    method_label: str


@dataclass(frozen=True)
class RemovalView:
    """What the removal page shows: whose method, and whether it is still stored."""

    firm: Firm
    method: StoredMethod

    @property
    def removed(self) -> bool:
        return self.method.status == "revoked"


def removal_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/methods/remove/{token}"


def removable_method(ledger: Ledger, payment: Payment) -> StoredMethod | None:
    """The method the client stored with ``payment``, while it is active (None if never stored).

    A method the pipeline stores has its id written with the payment (drawn at reserve); one its
    own submit stores (``Storage.stored_by``, an eCheck's) is recorded on the payment just after
    the debit is submitted, so the stream image announcing the debit may predate it: the ledger's
    copy of the payment has it.
    """
    if not payment.store_method:
        return None
    method_id = payment.stored_method_id
    if method_id is None:
        current = ledger.get_payment(payment.payable_id, payment.payment_id)
        method_id = current.stored_method_id if current is not None else None
    if method_id is None:
        return None
    method = ledger.get_method(payment.firm_id, payment.client_id, method_id)
    return method if method is not None and method.status == "active" else None


def issue_removal_link(
    ledger: Ledger, method: StoredMethod, payment_id: str, base_url: str, now: datetime, days: int = REMOVAL_LINK_DAYS
) -> RemovalOffer:
    """Store a new removal link for ``method``; its URL (the only place the token is) is shown once."""
    token = new_token()
    ledger.put_removal_link(
        MethodRemovalLink(
            token_hash=hash_token(token),
            firm_id=method.firm_id,
            client_id=method.client_id,
            method_id=method.method_id,
            payment_id=payment_id,
            expires_at=now + timedelta(days=days),
            created_at=now,
        )
    )
    return RemovalOffer(url=removal_url(base_url, token), method_label=method.summary.label())


def find_removal(ledger: Ledger, token: str, now: datetime) -> RemovalView:
    """The method and firm behind a usable removal link; ``RemovalLinkNotFound`` otherwise."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise RemovalLinkNotFound()
    link = ledger.get_removal_link(hash_token(token))
    if link is None or link.expires_at <= now:
        raise RemovalLinkNotFound()
    method = ledger.get_method(link.firm_id, link.client_id, link.method_id)
    firm = ledger.get_firm(link.firm_id)
    if method is None or firm is None:
        raise RemovalLinkNotFound()
    return RemovalView(firm=firm, method=method)


def plaid_item_remover() -> Callable[[StoredMethod], None]:
    """Removes a revoked bank method's Plaid item with the production gateways (Plaid, KMS);
    plaid-python is imported only when a bank method is revoked."""

    def forget(method: StoredMethod) -> None:
        from firmpay.gateways.kms import KmsVault
        from firmpay.gateways.plaid_gateway import PlaidGateway
        from firmpay.payments.bank_link import remove_stored_bank_item

        remove_stored_bank_item(PlaidGateway(), KmsVault(), method)

    return forget


def remove_method(
    ledger: Ledger,
    processor: PaymentProcessor,
    token: str,
    now: datetime,
    forget_bank_item: Callable[[StoredMethod], None] | None = None,
) -> tuple[RemovalView, RemovalResult]:
    """Revoke the link's method (ledger, then Stripe). ``already_removed`` when it was revoked
    before (by the client or the firm); ``retry`` when it is revoked but the detach at Stripe failed.
    """
    from firmpay.payments.firm_admin import revoke_method

    view = find_removal(ledger, token, now)
    result: RemovalResult = "already_removed" if view.removed else "removed"
    try:
        revoked = revoke_method(ledger, processor, view.method, forget_bank_item)
    except ServiceUnavailable:
        revoked, result = view.method.model_copy(update={"status": "revoked"}), "retry"
    return RemovalView(firm=view.firm, method=revoked), result
