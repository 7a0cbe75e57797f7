"""The Plaid side of a bank account the client links on the pay page (eCheck): errors, the
encrypted access token, and what happens to the Plaid item and the Stripe bank account after the
debit (kept with a stored method, otherwise removed) or after a stored method is revoked.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from firmpay.errors import BankAccountRefused, BankLinkFailed, FirmPayError, InvalidRequest, ServiceUnavailable
from firmpay.ledger import Ledger
from firmpay.models.ledger import BankConnection, Payment, PaymentStatus, StoredMethod, new_id
from firmpay.observability import logger
from firmpay.payments.ports import BankLinker, BankLinkError, PaymentProcessor, TokenVault
from firmpay.payments.processor import ProcessorUnavailable
from firmpay.payments.stored_methods import stored_method_of


def bank_error(error: BankLinkError) -> FirmPayError:
    """Plaid's failure as a client-facing error; provider messages never reach the client."""
    if error.retryable:
        return ServiceUnavailable()
    if error.code in ("INVALID_PUBLIC_TOKEN", "INVALID_ACCESS_TOKEN", "ITEM_NOT_FOUND"):
        return InvalidRequest("The bank connection expired or was already used; please select your bank again.")
    if error.code == "INVALID_ACCOUNT_ID":
        return BankAccountRefused("That account does not belong to the bank connection you made.")
    return BankLinkFailed()


def plaid_user_id(firm_id: str, client_id: str) -> str:
    """Plaid's client_user_id: stable per client and firm, revealing neither."""
    return hashlib.sha256(f"firmpay:{firm_id}:{client_id}".encode()).hexdigest()


def vault_context(firm_id: str, client_id: str) -> dict[str, str]:
    """The KMS encryption context of a client's Plaid access token."""
    return {"firm_id": firm_id, "client_id": client_id, "purpose": "plaid-access-token"}


def remove_quietly(linker: BankLinker, access_token: str) -> bool:
    """Remove a Plaid item; an item Plaid cannot remove now expires unused."""
    try:
        linker.remove_item(access_token)
    except BankLinkError:
        logger.warning("could not remove a Plaid item; it expires unused")
        return False
    return True


def remove_stored_bank_item(linker: BankLinker, vault: TokenVault, method: StoredMethod) -> None:
    """Remove the Plaid item behind a stored bank account that will never be debited again
    (revoked by the firm or the client): Plaid's ``/item/remove`` ends our access to the account.
    A method without a Plaid token (a card) has nothing to remove."""
    if not method.encrypted_access_token:
        return
    access_token = vault.decrypt(method.encrypted_access_token, vault_context(method.firm_id, method.client_id))
    if remove_quietly(linker, access_token):
        logger.info("Plaid item of a revoked bank method removed", extra={"method_id": method.method_id})


def keep_or_forget_bank(
    ledger: Ledger,
    processor: PaymentProcessor,
    linker: BankLinker | None,
    vault: TokenVault,
    connection: BankConnection,
    payment: Payment,
    now: datetime,
) -> Payment:
    """Store the bank method (consent given, debit accepted), or remove the Plaid item and the
    Stripe bank account (unless a stored method of this client uses that account)."""
    store = payment.store_method and payment.store_consent is not None and payment.status is PaymentStatus.PROCESSING
    if store:
        # The payment names the connection's customer and bank account (its review was made from it).
        method = stored_method_of(payment, new_id("mth"), now, connection.encrypted_access_token)
        ledger.put_method(method)
        payment = ledger.update_reserved_payment(payment, stored_method_id=method.method_id) or payment
    # The debit is under way: the clean-up below moves no money and is best effort. A failure is
    # logged, never answered as an error (the client would read "failed" while the debit is
    # processing); what remains expires on its own (the connection row by TTL, an unused Plaid
    # item and ba_ source).
    try:
        if not store and linker is not None:
            access_token = vault.decrypt(
                connection.encrypted_access_token, vault_context(connection.firm_id, connection.client_id)
            )
            remove_quietly(linker, access_token)
        if not payment.stored_method_id:
            _delete_unstored_source(ledger, processor, connection)
        ledger.forget_bank_connection(connection)
    except Exception:
        logger.exception(
            "bank link not cleaned up after the debit; it expires on its own",
            extra={"payment_id": payment.payment_id, "connection_id": connection.connection_id},
        )
    return payment


def _delete_unstored_source(ledger: Ledger, processor: PaymentProcessor, connection: BankConnection) -> None:
    """Delete the ``ba_`` source of a method the client did not store: the debit already under way
    goes on (its charge names the account), and a later attach of the same account makes a new one
    instead of meeting ``bank_account_exists``. A source a stored method uses stays."""
    for method in ledger.list_methods(connection.firm_id, connection.client_id):
        if method.status == "active" and method.processor_method_id == connection.processor_method_id:
            return
    try:
        processor.detach_method(connection.processor_customer_id, connection.processor_method_id)
    except ProcessorUnavailable:
        logger.warning("unstored bank account not deleted at Stripe", extra={"source": connection.processor_method_id})
