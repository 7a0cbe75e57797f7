"""Which emails a payment's state change produces, decided from the stream's old and new images.

One email per (payment, kind), whatever the number of times the stream delivers the change:

| change (old -> new status)                         | client                  | firm              |
|----------------------------------------------------|-------------------------|-------------------|
| card (a method that settles at once) -> succeeded  | payment received        | payment received  |
| debit (eCheck: ``settles_later``) -> processing    | payment submitted       |                   |
| debit processing -> succeeded (settled)            |                         | payment received  |
| debit processing -> failed (returned, R-code)      | payment returned + link | payment returned  |
| autopay / plan (origin != pay_page) -> failed      | payment failed + link   | charge failed     |
| pay-page payment -> failed before processing       |                         |                   |
| anything -> canceled; an unchanged status          |                         |                   |
| a refund of the payment -> succeeded (any status)  | refund issued           |                   |
| ... when it was made outside FirmPay (Stripe)      | refund issued           | outside refund    |

The last row is decided apart from the others, from the payment's ``last_refund``: a refund never
changes the payment's own status (it stays succeeded), and each refund that succeeds (partial
refunds one by one) sends its own email, once per ``refund_id`` (the marker is
``client_payment_refunded#<refund_id>``). A pending, failed or canceled refund sends nothing.
A refund made outside FirmPay (in Stripe's Dashboard, booked from Stripe's events) also tells the
firm (``firm_refund_outside#<refund_id>``): nobody at the firm asked FirmPay for it.

Whether a method is a debit that settles later is its policy's (``payments.methods``).
Choices: an eCheck client hears "submitted" when the debit goes to the bank, and nothing more when
it settles days later (the money was already acknowledged; a second "received" reads like a double
charge); the firm is told when the money actually arrives. A decline on the pay page sends nothing:
the client saw it on screen and is still there. A failure the client did not watch (autopay, plan
installments, an eCheck return) gets an email with a fresh pay link. Kinds only an eCheck can
produce are in English only, since eCheck is offered to US firms only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from firmpay.ledger.codec import from_item
from firmpay.models.ledger import Payment, PaymentStatus, RefundStatus, RefundSummary
from firmpay.payments.methods import method


class EmailKind(StrEnum):
    """The sort key of an email's sent-once marker, and the name of its templates."""

    CLIENT_RECEIVED = "client_payment_received"
    CLIENT_SUBMITTED = "client_payment_submitted"
    CLIENT_FAILED = "client_payment_failed"
    FIRM_RECEIVED = "firm_payment_received"
    FIRM_RETURNED = "firm_payment_returned"
    FIRM_FAILED = "firm_payment_failed"
    CLIENT_REFUNDED = "client_payment_refunded"
    FIRM_REFUNDED_OUTSIDE = "firm_refund_outside"

    @property
    def to_firm(self) -> bool:
        return self.value.startswith("firm_")

    @property
    def needs_pay_link(self) -> bool:
        return self is EmailKind.CLIENT_FAILED


# Emails about one refund of a payment: one marker per refund (``<kind>#<refund_id>``).
REFUND_KINDS = frozenset({EmailKind.CLIENT_REFUNDED, EmailKind.FIRM_REFUNDED_OUTSIDE})


@dataclass(frozen=True)
class PaymentChange:
    """A payment as the stream shows it now, its status before (None for an insert), and the
    refund the old image showed last (None if none)."""

    old_status: PaymentStatus | None
    payment: Payment
    old_refund: RefundSummary | None = None


_KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk", "entity")


def _payment(image: Mapping[str, Any]) -> Payment:
    values = {k: v for k, v in from_item(image).items() if k not in _KEY_ATTRIBUTES}
    return Payment.model_validate(values)


def payment_change(record: Mapping[str, Any]) -> PaymentChange | None:
    """The change a DynamoDB stream record (Lambda's shape) carries; None if it is not a payment's.

    Raises pydantic's ``ValidationError`` for a payment image that is not a valid payment: such a
    record is reported as failed and ends in the dead-letter queue, never silently dropped.
    """
    stream = record.get("dynamodb") or {}
    new_image = stream.get("NewImage")
    if record.get("eventName") not in ("INSERT", "MODIFY") or not new_image:
        return None
    if new_image.get("entity") != {"S": "payment"}:
        return None
    old_image = stream.get("OldImage") or {}
    old_status = None
    if "status" in old_image:
        old_status = PaymentStatus(from_item({"status": old_image["status"]})["status"])
    old_refund = None
    if "last_refund" in old_image:
        old_refund = RefundSummary.model_validate(from_item({"last_refund": old_image["last_refund"]})["last_refund"])
    return PaymentChange(old_status=old_status, payment=_payment(new_image), old_refund=old_refund)


def refund_succeeded(change: PaymentChange) -> RefundSummary | None:
    """The refund this change shows succeeding, if any: succeeded now, and not already before."""
    new, old = change.payment.last_refund, change.old_refund
    if new is None or new.status is not RefundStatus.SUCCEEDED:
        return None
    if old is not None and old.refund_id == new.refund_id and old.status is RefundStatus.SUCCEEDED:
        return None
    return new


def marker_key(kind: EmailKind, payment: Payment) -> str:
    """The sort key of the sent-once marker of ``kind`` about ``payment``: one per refund for refunds."""
    if kind in REFUND_KINDS:
        if payment.last_refund is None:
            raise ValueError(f"payment {payment.payment_id} has no refund to email about")
        return f"{kind}#{payment.last_refund.refund_id}"
    return str(kind)


def emails_for(change: PaymentChange) -> list[EmailKind]:
    """The emails ``change`` produces, client first (see the table in this module's docstring)."""
    kinds = _status_emails(change)
    refund = refund_succeeded(change)
    if refund is not None:
        kinds.append(EmailKind.CLIENT_REFUNDED)
        if refund.origin == "outside":
            kinds.append(EmailKind.FIRM_REFUNDED_OUTSIDE)
    return kinds


def _status_emails(change: PaymentChange) -> list[EmailKind]:
    payment, old = change.payment, change.old_status
    new = payment.status
    if old is new:
        return []
    debit = method(payment.method.type).settles_later
    if new is PaymentStatus.SUCCEEDED:
        if debit and old is PaymentStatus.PROCESSING:
            return [EmailKind.FIRM_RECEIVED]
        return [EmailKind.CLIENT_RECEIVED, EmailKind.FIRM_RECEIVED]
    if new is PaymentStatus.PROCESSING and debit:
        return [EmailKind.CLIENT_SUBMITTED]
    if new is PaymentStatus.FAILED:
        if debit and old is PaymentStatus.PROCESSING:
            return [EmailKind.CLIENT_FAILED, EmailKind.FIRM_RETURNED]
        if payment.origin != "pay_page":
            return [EmailKind.CLIENT_FAILED, EmailKind.FIRM_FAILED]
    return []


def return_reason(payment: Payment, lang: str = "en") -> str:
    """Why a payment failed, as a person would say it: a returned debit's code in the method's own
    words (``PaymentMethodPolicy.return_reason``), or plain words. The processor's own failure
    message never reaches a client."""
    reason = method(payment.method.type).return_reason(payment.return_code, lang)
    if reason:
        return reason
    return (
        "votre banque ou l'émetteur de votre carte l'a refusé"
        if lang == "fr"
        else "your bank or card issuer declined it"
    )
