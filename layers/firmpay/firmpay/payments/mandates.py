"""The NACHA WEB debit authorization of an eCheck payment, as the firm hands it to a client or a bank.

Every eCheck payment keeps its mandate (the exact text the client accepted, its version and
SHA-256, amount, time, IP address, user agent, account last 4 and how Plaid validated the account)
on the payment item, which is never deleted: NACHA asks for two years after the last debit, the
ledger keeps it for the life of the table (docs/operations.md says how to archive).
"""

from __future__ import annotations

from firmpay.errors import NotFound
from firmpay.ledger import Ledger
from firmpay.models.echeck import MandateOut
from firmpay.models.ledger import Firm
from firmpay.money import Money
from firmpay.payments.checkout import sha256_hex
from firmpay.payments.firm_admin import is_resource_id, payable_of


def mandate_of(ledger: Ledger, firm: Firm, payable_id: str, payment_id: str) -> MandateOut:
    """The mandate of one eCheck payment of this firm; 404 alike for another firm's or a card payment."""
    missing = NotFound("No eCheck authorization for this payment at this firm.")
    if not is_resource_id(payment_id):
        raise missing
    payable, payments = payable_of(ledger, firm, payable_id)
    payment = next((p for p in payments if p.payment_id == payment_id), None)
    if payment is None or payment.mandate is None:
        raise missing
    mandate = payment.mandate
    amount = Money(amount_minor=mandate.amount_minor, currency=mandate.currency)
    return MandateOut(
        firm_name=firm.name,
        payable_kind=payable.kind,
        payable_number=payable.number,
        payment_id=payment.payment_id,
        reference=payment.reference,
        payment_status=payment.status.value,
        return_code=payment.return_code,
        account_holder=payment.method.holder_name,
        bank_name=payment.method.bank_name,
        account_last4=mandate.account_last4,
        account_validation=mandate.account_validation,
        amount_minor=mandate.amount_minor,
        currency=mandate.currency,
        amount_formatted=amount.format(firm.locale),
        text=mandate.text,
        text_version=mandate.text_version,
        text_sha256=mandate.text_sha256,
        text_intact=sha256_hex(mandate.text) == mandate.text_sha256,
        accepted_at=mandate.accepted_at.isoformat(),
        ip_address=mandate.ip_address,
        user_agent=mandate.user_agent,
    )
