"""Builders of ledger items for tests: one call gives a firm, a client and a payable."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from firmpay.ledger import Ledger
from firmpay.models.ledger import Client, DepositAccount, Firm, LineItem, MethodSummary, Payable, Payment, new_id

US_FIRM_PRINCIPAL = "arn:aws:iam::000000000000:user/firm-us"
CA_FIRM_PRINCIPAL = "arn:aws:iam::000000000000:user/firm-ca"


@dataclass(frozen=True)
class Billed:
    firm: Firm
    client: Client
    payable: Payable


def make_firm(country: str = "US", principal: str = US_FIRM_PRINCIPAL, language: str = "en") -> Firm:
    return Firm(
        firm_id=new_id("firm"),
        name="Hartley & Vance LLP" if country == "US" else "Tremblay Avocats",
        country=country,  # type: ignore[arg-type]
        region="NY" if country == "US" else "QC",
        currency="USD" if country == "US" else "CAD",
        language=language,  # type: ignore[arg-type]
        operating_account=DepositAccount(name="Operating", last4="6789"),
        trust_account=DepositAccount(name="IOLTA Trust", last4="4321"),
        reply_to_email="billing@hartleyvance.example",
        principals=[principal],
    )


def create_billed(
    ledger: Ledger,
    country: str = "US",
    kind: str = "bill",
    amounts: tuple[int, ...] = (120_000, 30_050),
    client_name: str = "Jordan Client",
    language: str = "en",
    firm_settings: dict[str, object] | None = None,
) -> Billed:
    """Store a firm, a client and a payable totalling ``sum(amounts)`` minor units."""
    firm = make_firm(country, language=language).model_copy(update=firm_settings or {})
    ledger.create_firm(firm)
    client = Client(client_id=new_id("cli"), firm_id=firm.firm_id, name=client_name, email="jordan@example.com")
    ledger.create_client(client)
    total = sum(amounts)
    payable = Payable(
        payable_id=new_id("pbl"),
        firm_id=firm.firm_id,
        client_id=client.client_id,
        kind=kind,  # type: ignore[arg-type]
        number=f"{'B' if kind == 'bill' else 'TR'}-{secrets.randbelow(10**6):06d}",
        issued_on=date(2026, 11, 2),
        due_on=date(2026, 12, 2),
        currency=firm.currency,
        line_items=[LineItem(description=f"Legal services {i + 1}", amount_minor=a) for i, a in enumerate(amounts)]
        if kind == "bill"
        else [],
        memo="Retainer deposit for litigation" if kind == "trust_request" else "",
        total_minor=total,
        balance_minor=total,
    )
    ledger.create_payable(payable)
    return Billed(firm, client, payable)


def card_payment(billed: Billed, amount: int, payment_id: str | None = None) -> Payment:
    """A card payment of ``amount`` minor units for the billed payable, not yet stored."""
    payment_id = payment_id or new_id("pay")
    return Payment(
        payment_id=payment_id,
        payable_id=billed.payable.payable_id,
        firm_id=billed.firm.firm_id,
        client_id=billed.client.client_id,
        reference="FP-TEST-0001",
        amount_minor=amount,
        currency=billed.payable.currency,
        method=MethodSummary(type="card", brand="visa", last4="4242"),
        idempotency_key=f"fp-confirm-{payment_id}",
        destination=billed.payable.destination,
        destination_account=billed.firm.operating_account,
    )
