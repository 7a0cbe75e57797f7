"""Demo data for `make dev`: two firms (a New York firm in USD and English, a Quebec firm in CAD and
French), each with a client, a bill and a trust request, created through the real use cases;
returns one `pay link: <url>` line per payable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from firmpay.config import get_settings
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.ledger import Client, DepositAccount, Firm, LineItem, Payable, new_id
from firmpay.payments.links import issue_pay_link

DEMO_FIRMS: list[dict[str, Any]] = [
    {
        "firm": {
            "name": "Hartley & Vance LLP",
            "country": "US",
            "region": "NY",
            "currency": "USD",
            "operating_account": DepositAccount(name="Operating (Chase)", last4="6789"),
            "trust_account": DepositAccount(name="IOLTA Trust (Chase)", last4="4321"),
            "reply_to_email": "billing@hartleyvance.example",
            "principals": ["arn:aws:iam::000000000000:user/firm-us"],
        },
        "client": {"name": "Jordan Ellis", "email": "jordan.ellis@example.com"},
        "bill": (
            "B-1042",
            [
                ("Contract review and negotiation, 6.5 h", 211_250),
                ("Court filing fees", 43_500),
                ("Document preparation", 95_300),
            ],
        ),
        "trust": ("TR-2087", 500_000, "Retainer deposit for the Ellis v. Marlow litigation"),
    },
    {
        "firm": {
            "name": "Tremblay Avocats s.e.n.c.r.l.",
            "country": "CA",
            "region": "QC",
            "currency": "CAD",
            "language": "fr",
            "operating_account": DepositAccount(name="Opérations (Desjardins)", last4="1188"),
            "trust_account": DepositAccount(name="Compte en fidéicommis (Desjardins)", last4="7702"),
            "reply_to_email": "facturation@tremblayavocats.example",
            "principals": ["arn:aws:iam::000000000000:user/firm-ca"],
        },
        "client": {"name": "Camille Gagnon", "email": "camille.gagnon@example.com"},
        # A Quebec firm writes its bills in French (its page is in French, with a switch to English).
        "bill": ("F-3310", [("Clôture d'une transaction immobilière, 4 h", 132_000), ("Recherche de titres", 28_575)]),
        "trust": ("FID-118", 250_000, "Dépôt pour l'achat du 12, rue des Érables"),
    },
]


def seed_demo(stack: Any = None, ledger: Ledger | None = None, today: date | None = None) -> list[str]:
    """Create the demo firms and return their pay-link lines."""
    ledger = ledger or default_ledger()
    settings = get_settings()
    now = datetime.now(UTC)
    today = today or now.date()
    lines: list[str] = []
    for demo in DEMO_FIRMS:
        spec = demo["firm"]
        firm = Firm(firm_id=new_id("firm"), **spec)
        ledger.create_firm(firm)
        client = Client(client_id=new_id("cli"), firm_id=firm.firm_id, **demo["client"])
        ledger.create_client(client)
        number, items = demo["bill"]
        trust_number, trust_amount, memo = demo["trust"]
        payables = [
            Payable(
                payable_id=new_id("pbl"),
                firm_id=firm.firm_id,
                client_id=client.client_id,
                kind="bill",
                number=number,
                issued_on=today - timedelta(days=3),
                due_on=today + timedelta(days=27),
                currency=firm.currency,
                line_items=[LineItem(description=d, amount_minor=a) for d, a in items],
                total_minor=sum(a for _, a in items),
                balance_minor=sum(a for _, a in items),
            ),
            Payable(
                payable_id=new_id("pbl"),
                firm_id=firm.firm_id,
                client_id=client.client_id,
                kind="trust_request",
                number=trust_number,
                issued_on=today - timedelta(days=1),
                due_on=today + timedelta(days=14),
                currency=firm.currency,
                memo=memo,
                total_minor=trust_amount,
                balance_minor=trust_amount,
            ),
        ]
        for payable in payables:
            ledger.create_payable(payable)
            url, _ = issue_pay_link(ledger, payable, settings.public_base_url, now, settings.pay_link_days)
            lines.append(f"pay link: {url}")
    seed_event_fixtures(ledger, today)
    if stack is not None:
        seed_event_method(ledger, stack.urls["stripe"], now)
    return lines


# The ids events/firm_api_*.json refer to, so `make invoke` works on a fresh stack (no output lines).
EVENTS_FIRM_ID = "firm_events_us"
EVENTS_CLIENT_ID = "cli_events_us"
EVENTS_BILL_ID = "pbl_events_us_bill"
EVENTS_TRUST_REQUEST_ID = "pbl_events_us_trust"
EVENTS_METHOD_ID = "mth_events_us_card"  # events/autopay_charge_*.json charge it


def seed_event_fixtures(ledger: Ledger, today: date) -> None:
    """A US firm (principal ``firm-us``) with fixed ids, a client, a bill and a trust request; once."""
    if ledger.get_firm(EVENTS_FIRM_ID) is not None:
        return
    firm = Firm(firm_id=EVENTS_FIRM_ID, **(DEMO_FIRMS[0]["firm"] | {"name": "Okafor & Lin LLP"}))
    ledger.create_firm(firm)
    client = Client(client_id=EVENTS_CLIENT_ID, firm_id=firm.firm_id, name="Ada Park", email="ada.park@example.com")
    ledger.create_client(client)
    common: dict[str, Any] = {"firm_id": firm.firm_id, "client_id": client.client_id, "currency": firm.currency}
    ledger.create_payable(
        Payable(
            payable_id=EVENTS_BILL_ID,
            kind="bill",
            number="B-EV-1",
            issued_on=today,
            due_on=today + timedelta(days=30),
            line_items=[LineItem(description="Contract review, 2 h", amount_minor=65_000)],
            total_minor=65_000,
            balance_minor=65_000,
            **common,
        )
    )
    ledger.create_payable(
        Payable(
            payable_id=EVENTS_TRUST_REQUEST_ID,
            kind="trust_request",
            number="TR-EV-1",
            issued_on=today,
            due_on=today + timedelta(days=14),
            memo="Retainer deposit",
            total_minor=300_000,
            balance_minor=300_000,
            **common,
        )
    )


def seed_event_method(ledger: Ledger, stripe_base: str, now: datetime) -> None:
    """A Visa the events client stored with consent (attached to its customer at the Stripe emulator); once."""
    if ledger.get_method(EVENTS_FIRM_ID, EVENTS_CLIENT_ID, EVENTS_METHOD_ID) is not None:
        return
    import stripe

    from firmpay.models.ledger import Consent, MethodSummary, StoredMethod
    from firmpay.payments.checkout import STORE_METHOD_TEXT, STORE_METHOD_TEXT_VERSION, sha256_hex
    from local.stack import STRIPE_SECRET

    client = ledger.get_client(EVENTS_FIRM_ID, EVENTS_CLIENT_ID)
    assert client is not None
    sdk = stripe.StripeClient(STRIPE_SECRET, base_addresses={"api": stripe_base})
    customer = client.processor_customer_id or ledger.set_client_customer(
        client, str(sdk.v1.customers.create(params={"name": client.name, "email": client.email}).id)
    )
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": now.year + 5, "cvc": "123"}
    method = sdk.v1.payment_methods.create(params={"type": "card", "card": card})
    sdk.v1.payment_methods.attach(method.id, params={"customer": customer})
    ledger.put_method(
        StoredMethod(
            method_id=EVENTS_METHOD_ID,
            firm_id=EVENTS_FIRM_ID,
            client_id=EVENTS_CLIENT_ID,
            summary=MethodSummary(type="card", brand="visa", last4="4242", exp_month=12, exp_year=now.year + 5),
            processor_customer_id=customer,
            processor_method_id=str(method.id),
            consent=Consent(
                text_version=STORE_METHOD_TEXT_VERSION,
                text_sha256=sha256_hex(STORE_METHOD_TEXT.format(firm="Okafor & Lin LLP")),
                accepted_at=now,
                ip_address="203.0.113.7",
                user_agent="local seed",
            ),
            created_at=now,
        )
    )
