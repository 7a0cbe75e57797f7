"""Helpers for the autopay and plan tests: stored methods on the Stripe emulator, autopay calls
through the IAM route (SigV4) or a direct invoke, and what Stripe holds for a payable."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from firmpay.models.ledger import Consent, MethodSummary, StoredMethod, new_id
from firmpay.payments.checkout import STORE_METHOD_TEXT, STORE_METHOD_TEXT_VERSION, sha256_hex
from local.stack import STRIPE_SECRET, LocalStack
from tests.integration.conftest import US_KEY, FirmClient
from tests.support.card_stack import CARD_OK, StackLink, open_link, stripe_client

_keys = itertools.count(1)


def new_key(prefix: str = "inv") -> str:
    """A fresh idempotency key, as a firm's billing system would make one per charge."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%d%H%M%S}-{next(_keys)}-{new_id('k')[2:]}"


def store_consent(version: str = STORE_METHOD_TEXT_VERSION) -> Consent:
    return Consent(
        text_version=version,
        text_sha256=sha256_hex(STORE_METHOD_TEXT),
        accepted_at=datetime.now(UTC),
        ip_address="203.0.113.7",
        user_agent="autopay-tests/1.0",
    )


def customer_of(link: StackLink) -> str:
    """The client's Stripe customer, created (and recorded on the client) once."""
    client = link.ledger.get_client(link.billed.firm.firm_id, link.billed.client.client_id)
    assert client is not None
    if client.processor_customer_id:
        return client.processor_customer_id
    customer = link.stripe.v1.customers.create(params={"name": client.name, "email": client.email})
    return link.ledger.set_client_customer(client, str(customer.id))  # type: ignore[no-any-return]


def store_card(link: StackLink, number: str = CARD_OK, **changes: Any) -> StoredMethod:
    """A card attached to the client's Stripe customer and stored with consent (as the pay page does)."""
    customer = customer_of(link)
    method = link.stripe.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    link.stripe.v1.payment_methods.attach(method.id, params={"customer": customer})
    stored = StoredMethod(
        method_id=new_id("mth"),
        firm_id=link.billed.firm.firm_id,
        client_id=link.billed.client.client_id,
        summary=MethodSummary(type="card", brand="visa", last4=number[-4:], exp_month=12, exp_year=2034),
        processor_customer_id=customer,
        processor_method_id=str(method.id),
        consent=store_consent(),
        created_at=datetime.now(UTC),
    ).model_copy(update=changes)
    link.ledger.put_method(stored)
    return stored


@dataclass
class Autopay:
    """Autopay calls for one payable and method, by the IAM route or a direct invoke."""

    stack: LocalStack
    link: StackLink
    method: StoredMethod

    def payload(self, amount: int, key: str | None = None, **changes: Any) -> dict[str, Any]:
        return {
            "firm_id": self.link.billed.firm.firm_id,
            "payable_id": self.link.payable_id,
            "method_id": self.method.method_id,
            "amount_minor": amount,
            "idempotency_key": key or new_key(),
            **changes,
        }

    def route(self, body: Any, access_key: str = US_KEY) -> requests.Response:
        return FirmClient(self.stack.urls["gateway"], access_key).call("POST", "/firm/autopay", body)

    def invoke(self, payload: Any) -> dict[str, Any]:
        return self.stack.invoke("autopay_charge", payload)  # type: ignore[no-any-return]


def autopay_for(stack: LocalStack, number: str = CARD_OK, **billed: Any) -> Autopay:
    link = open_link(stack, **billed)
    return Autopay(stack, link, store_card(link, number))


def decline_next(stack: LocalStack, payment_method: str, code: str = "insufficient_funds") -> None:
    """The emulator's test control: the next confirmation on this card declines with ``code``."""
    requests.post(
        f"{stack.urls['stripe']}/_test/payment_methods/{payment_method}/decline_next",
        data={"decline_code": code},
        headers={"Authorization": f"Bearer {STRIPE_SECRET}"},
        timeout=5,
    ).raise_for_status()


def intents_by_payable(stack: LocalStack) -> dict[str, list[Any]]:
    """Every PaymentIntent at the emulator, by the payable in its metadata."""
    found: dict[str, list[Any]] = {}
    listing = stripe_client(stack.urls["stripe"]).v1.payment_intents.list(params={"limit": 100})
    for intent in listing.auto_paging_iter():
        payable = intent.to_dict().get("metadata", {}).get("payable_id")
        if payable:
            found.setdefault(payable, []).append(intent)
    return found


def charged(intents: list[Any]) -> list[Any]:
    return [pi for pi in intents if pi.status == "succeeded"]


__all__ = [
    "Autopay",
    "autopay_for",
    "charged",
    "decline_next",
    "intents_by_payable",
    "new_key",
    "open_link",
    "store_card",
]
