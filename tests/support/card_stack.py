"""Helpers for the card integration tests: pay links on the local stack, cards at the Stripe
emulator (through the real stripe SDK), the card routes over HTTP, and what Stripe holds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import requests
import stripe

from firmpay.ledger import Ledger, keys
from firmpay.payments.card_testing import DEFAULT_LIMITS, attempt_counters
from firmpay.payments.links import issue_pay_link
from local.stack import STRIPE_SECRET, WEBHOOK_SECRET, LocalStack
from tests.integration.conftest import table_snapshot
from tests.support.factories import Billed, create_billed

BILLING = {
    "name": "Jordan Client",
    "line1": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "US",
}
CARD_OK = "4242424242424242"
CARD_3DS = "4000002760003184"
DECLINE_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
    "4000000000000341": "card_declined",
}


@lru_cache(maxsize=4)
def stripe_client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_SECRET, base_addresses={"api": base}, max_network_retries=0)


@dataclass
class StackLink:
    """A seeded payable and its pay link on the running stack."""

    stack: LocalStack
    billed: Billed
    token: str

    @property
    def payable_id(self) -> str:
        return self.billed.payable.payable_id

    @property
    def ledger(self) -> Ledger:
        return self.stack.ledger  # type: ignore[no-any-return]

    @property
    def stripe(self) -> stripe.StripeClient:
        return stripe_client(self.stack.urls["stripe"])

    def url(self, route: str) -> str:
        return f"{self.stack.urls['gateway']}/api/pay/{self.token}/card/{route}"

    def post(self, route: str, body: Any, **headers: str) -> requests.Response:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return requests.post(
            self.url(route),
            data=data,
            headers={"Content-Type": "application/json", "User-Agent": "card-tests/1.0", **headers},
            timeout=30,
        )

    def card(self, number: str = CARD_OK) -> str:
        """A PaymentMethod for ``number``, as Stripe.js makes it in the browser."""
        method = self.stripe.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
                "billing_details": {"name": BILLING["name"]},
            }
        )
        return str(method.id)

    def review(self, number: str = CARD_OK, amount: int | None = None, **extra: Any) -> requests.Response:
        body = {
            "amount_minor": self.billed.payable.balance_minor if amount is None else amount,
            "payment_method_id": self.card(number),
            "billing": BILLING,
            **extra,
        }
        return self.post("review", body)

    def submit(self, review_id: str, store: bool = False, **extra: Any) -> requests.Response:
        return self.post("submit", {"review_id": review_id, "store_method": store, **extra})

    def pay(self, number: str = CARD_OK, amount: int | None = None, store: bool = False) -> dict[str, Any]:
        reviewed = self.review(number, amount)
        assert reviewed.status_code == 200, reviewed.text
        submitted = self.submit(reviewed.json()["review_id"], store)
        assert submitted.status_code == 200, submitted.text
        return submitted.json()  # type: ignore[no-any-return]

    def intents(self) -> list[Any]:
        """This payable's PaymentIntents at Stripe."""
        found = self.stripe.v1.payment_intents.list(params={"limit": 100})
        return [pi for pi in found.auto_paging_iter() if payable_of(pi) == self.payable_id]

    def charges(self) -> list[Any]:
        """Succeeded charges at Stripe for this payable's intents."""
        intents = {pi.id for pi in self.intents()}
        found = self.stripe.v1.charges.list(params={"limit": 100})
        return [c for c in found.auto_paging_iter() if c.payment_intent in intents and c.status == "succeeded"]

    def invariant(self) -> Any:
        return self.ledger.check_invariant(self.payable_id)

    def wait_for_status(self, payment_id: str, status: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            payment = self.ledger.get_payment(self.payable_id, payment_id)
            if payment is not None and payment.status.value == status:
                return payment
            if time.monotonic() > deadline:
                raise AssertionError(f"payment {payment_id} is {payment and payment.status}, not {status}")
            time.sleep(0.1)


def payable_of(intent: Any) -> str | None:
    """The payable an intent was made for (its metadata), None when it is not ours."""
    return intent.to_dict().get("metadata", {}).get("payable_id")  # type: ignore[no-any-return]


def open_link(stack: LocalStack, **billed: Any) -> StackLink:
    made = create_billed(stack.ledger, **billed)
    url, _ = issue_pay_link(stack.ledger, made.payable, stack.urls["gateway"], datetime.now(UTC))
    return StackLink(stack, made, url.rsplit("/", 1)[1])


def forget_failed_attempts(stack: LocalStack, ip: str = "127.0.0.1") -> None:
    """Every test calls from 127.0.0.1: clear that address's failed-attempt counter between tests."""
    counters = attempt_counters("-", ip, datetime.now(UTC), DEFAULT_LIMITS)
    stack.client("dynamodb").delete_item(TableName=stack.env["LEDGER_TABLE"], Key=keys.counter(*counters.ip))


def signed_event(event_type: str, intent: Any, at: int | None = None, secret: str = WEBHOOK_SECRET) -> tuple[str, str]:
    """A webhook body and its Stripe-Signature, as Stripe sends them."""
    payload = json.dumps(
        {
            "id": f"evt_test_{int(time.time() * 1000)}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": intent.to_dict() if hasattr(intent, "to_dict") else intent},
        }
    )
    return payload, stripe.WebhookSignature.generate_signature_header(payload, secret, at or int(time.time()))


def post_webhook(stack: LocalStack, payload: str, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return requests.post(f"{stack.urls['gateway']}/webhooks/stripe", data=payload, headers=headers, timeout=30)


def set_webhook_delivery(stack: LocalStack, enabled: bool) -> None:
    """Point the emulator's webhook at the gateway, or at nowhere (to test the sweep on its own)."""
    url = f"{stack.urls['gateway']}/webhooks/stripe" if enabled else "http://127.0.0.1:9/nowhere"
    requests.post(
        f"{stack.urls['stripe']}/_config/webhooks/firmpay",
        data={"url": url, "secret": WEBHOOK_SECRET},
        headers={"Authorization": f"Bearer {STRIPE_SECRET}"},
        timeout=5,
    ).raise_for_status()


def quiet_table(stack: LocalStack, settle: float = 1.5, timeout: float = 60) -> list[dict[str, Any]]:
    """The table once webhooks of earlier tests (sent ~1 s after each event) have landed: unchanged
    for ``settle`` seconds, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    before = table_snapshot(stack)
    while True:
        time.sleep(settle)
        after = table_snapshot(stack)
        if after == before:
            return after
        if time.monotonic() > deadline:
            changed = sorted(
                {(i["pk"]["S"], i["sk"]["S"]) for i in after} ^ {(i["pk"]["S"], i["sk"]["S"]) for i in before}
            )
            raise AssertionError(
                f"the ledger table kept changing for {timeout:.0f}s (waited for {settle}s without a write); "
                f"items added or removed in the last interval: {changed[:10]}"
            )
        before = after
