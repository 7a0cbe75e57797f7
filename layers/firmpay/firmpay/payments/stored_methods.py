"""Stored methods kept in line with their payments: stored once a payment succeeds (for the
methods the pipeline stores), retired when a return says the account is gone.

Both are deterministic and idempotent, so the submit, the 3-D Secure completion, the webhook and
the sweep can all call them, in any order.
"""

from __future__ import annotations

from datetime import datetime

from firmpay.errors import Conflict
from firmpay.ledger import Ledger
from firmpay.models.ledger import MethodSummary, Payment, PaymentStatus, StoredMethod
from firmpay.observability import logger
from firmpay.payments.methods import method


def stored_by_pipeline(summary: MethodSummary) -> bool:
    return method(summary.type).storage.stored_by == "pipeline"


def _storable_now(payment: Payment) -> bool:
    """The payment went through: it succeeded, or a debit stored ``while_processing`` is processing."""
    storage = method(payment.method.type).storage
    if storage.stored_by != "pipeline":
        return False
    return payment.status is PaymentStatus.SUCCEEDED or (
        storage.while_processing and payment.status is PaymentStatus.PROCESSING
    )


def remember_method(ledger: Ledger, payment: Payment, now: datetime) -> None:
    """Store the method of a payment that went through, whose client consented (with the debit's
    mandate, if any, for off-session reuse); a no-op otherwise, when it is stored already, or for a
    method its own submit stores (``Storage.stored_by``). Deterministic (the id was drawn at
    reserve), so the submit, the webhook and the sweep can all call it."""
    if not _storable_now(payment):
        return
    if not payment.store_method or payment.store_consent is None or payment.processor_customer_id is None:
        return
    if payment.stored_method_id is None or payment.processor_method_id is None:
        return  # written before method ids were drawn at reserve
    stored = stored_method_of(payment, payment.stored_method_id, now)
    try:
        ledger.put_method(stored)
    except Conflict:
        return  # stored already (by the submit, the webhook or the sweep)
    # "card stored for future use" for cards, as operators have always searched for it.
    logger.info(f"{payment.method.type} stored for future use", extra={"method_id": stored.method_id})


def stored_method_of(
    payment: Payment, method_id: str, now: datetime, encrypted_access_token: str | None = None
) -> StoredMethod:
    """The METHOD record of the method ``payment`` was made with, stored under the client's consent
    (and the debit's mandate, for off-session debits later)."""
    if payment.store_consent is None or payment.processor_customer_id is None or payment.processor_method_id is None:
        raise ValueError(f"payment {payment.payment_id} has no method to store")
    return StoredMethod(
        method_id=method_id,
        firm_id=payment.firm_id,
        client_id=payment.client_id,
        summary=payment.method,
        processor_customer_id=payment.processor_customer_id,
        processor_method_id=payment.processor_method_id,
        consent=payment.store_consent,
        mandate_id=payment.processor_mandate_id,
        encrypted_access_token=encrypted_access_token,
        created_from_payment_id=payment.payment_id,
        created_at=now,
    )


def retire_returned_method(ledger: Ledger, payment: Payment) -> int:
    """After a return saying the account is gone (``PaymentMethodPolicy.account_gone``), no stored
    method for that account is debited again.

    Idempotent (the webhook and the sweep may both get here); returns how many methods it retired.
    """
    if payment.status is not PaymentStatus.FAILED or payment.processor_method_id is None:
        return 0
    if not method(payment.method.type).account_gone(payment.return_code):
        return 0
    retired = 0
    for stored in ledger.list_methods(payment.firm_id, payment.client_id):
        same_account = stored.processor_method_id == payment.processor_method_id
        if stored.status == "active" and (same_account or stored.method_id == payment.stored_method_id):
            ledger.set_method_status(stored, "unusable")
            retired += 1
            logger.info(
                "stored method retired after a return",
                extra={"method_id": stored.method_id, "return_code": payment.return_code},
            )
    return retired
