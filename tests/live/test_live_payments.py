"""The payment scenarios of the integration tests against Stripe test mode and Plaid sandbox.

Never run on the machines that wrote them (they cannot reach Stripe or Plaid): run with
``make test-live`` and the four keys of tests/live/conftest.py. Each scenario uses Stripe's test
PaymentMethods (Stripe docs, "Testing": ``pm_card_visa``, ``pm_card_chargeDeclined``,
``pm_card_authenticationRequired`` = 4000 0027 6000 3184, which always asks for 3-D Secure) and
Plaid's sandbox Item (``/sandbox/public_token/create``, First Platypus Bank, user_good/pass_good).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import plaid
import pytest
import stripe
from plaid.api.plaid_api import PlaidApi
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.item_public_token_create_request import ItemPublicTokenCreateRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.products import Products
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest

from firmpay.payments.links import issue_pay_link
from tests.integration.conftest import FirmClient
from tests.live.conftest import PLAID_SANDBOX, deliver_events, wait_for_event
from tests.support.card_stack import CARD_3DS, CARD_OK
from tests.support.echeck_stack import PLATYPUS, EcheckLink, LinkedBank
from tests.support.factories import create_billed

pytestmark = pytest.mark.live

CARD_DECLINED = "4000000000000002"
# Stripe's test PaymentMethods for the card numbers the integration tests use (test mode refuses
# raw card numbers from servers unless the account is allowed to send them).
TEST_PAYMENT_METHODS = {
    CARD_OK: "pm_card_visa",
    CARD_DECLINED: "pm_card_chargeDeclined",
    CARD_3DS: "pm_card_authenticationRequired",
}


@dataclass
class LiveLink(EcheckLink):
    """The integration tests' pay link, with Stripe test mode and Plaid sandbox behind it."""

    @property
    def stripe(self) -> stripe.StripeClient:
        return stripe.StripeClient(os.environ["STRIPE_TEST_SECRET_KEY"], max_network_retries=2)

    def card(self, number: str = CARD_OK) -> str:
        return TEST_PAYMENT_METHODS[number]

    def link_bank(self, institution: str = PLATYPUS, mask: str = "0000") -> LinkedBank:
        """What Link's onSuccess hands the page: a public token and the chosen account's id.

        Without Link, the account ids of a sandbox Item are only known after an exchange, so the
        test exchanges one public token itself and asks Plaid for a fresh public token of the same
        Item (``/item/public_token/create``), which the pay page's exchange route then uses.
        """
        api = plaid_sandbox()
        created = api.sandbox_public_token_create(
            SandboxPublicTokenCreateRequest(institution_id=institution, initial_products=[Products("auth")])
        )
        exchanged = api.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=created.public_token))
        accounts = api.accounts_get(AccountsGetRequest(access_token=exchanged.access_token)).accounts
        chosen = next(a for a in accounts if a.mask == mask)
        fresh = api.item_create_public_token(ItemPublicTokenCreateRequest(access_token=exchanged.access_token))
        listed = [{"id": a.account_id, "mask": a.mask, "name": a.name} for a in accounts]
        return LinkedBank(fresh.public_token, chosen.account_id, institution, listed)


def plaid_sandbox() -> PlaidApi:
    configuration = plaid.Configuration(
        host=PLAID_SANDBOX,
        api_key={"clientId": os.environ["PLAID_SANDBOX_CLIENT_ID"], "secret": os.environ["PLAID_SANDBOX_SECRET"]},
    )
    return PlaidApi(plaid.ApiClient(configuration))


def open_live_link(stack: Any, **billed: Any) -> LiveLink:
    made = create_billed(stack.ledger, **billed)
    url, _ = issue_pay_link(stack.ledger, made.payable, stack.urls["gateway"], datetime.now(UTC))
    return LiveLink(stack, made, url.rsplit("/", 1)[1])


def about(intent_id: str) -> Any:
    """Whether a Stripe object (an intent, a charge, a refund) belongs to ``intent_id``."""
    return lambda obj: intent_id in (obj.get("id"), obj.get("payment_intent"))


def intent_of(link: LiveLink, payment_id: str) -> Any:
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert payment is not None
    assert payment.processor_intent_id
    return link.stripe.v1.payment_intents.retrieve(payment.processor_intent_id)


def test_a_card_payment_is_charged_at_stripe_and_its_webhook_reconciles(live: Any) -> None:
    since = int(time.time()) - 5
    link = open_live_link(live)

    result = link.pay(CARD_OK)

    assert result["status"] == "succeeded", result
    intent = intent_of(link, result["payment_id"])
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", link.billed.payable.total_minor, "usd")
    wait_for_event(link.stripe, since, "payment_intent.succeeded", about(intent.id), 60)
    delivered = deliver_events(live, link.stripe, since, about(intent.id))
    assert ("payment_intent.succeeded", 200) in delivered
    assert all(status == 200 for _, status in delivered), delivered
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor) == (link.billed.payable.total_minor, 0)


def test_a_declined_card_charges_nothing_and_keeps_the_balance(live: Any) -> None:
    link = open_live_link(live)

    result = link.pay(CARD_DECLINED)

    assert result["status"] == "failed", result
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor) == (0, 0)


def test_a_3d_secure_card_waits_for_the_client_s_bank(live: Any) -> None:
    """Stripe asks for the challenge; the page hands the intent to Stripe.js. The challenge itself
    runs in the browser against Stripe's test 3-D Secure page: test_live_browser.py."""
    link = open_live_link(live)
    reviewed = link.review(CARD_3DS)
    assert reviewed.status_code == 200, reviewed.text

    asked = link.submit(reviewed.json()["review_id"]).json()

    assert asked["status"] == "requires_action", asked
    intent = intent_of(link, asked["payment_id"])
    assert intent.status == "requires_action"
    assert asked["client_secret"] == intent.client_secret
    payable = link.invariant()
    assert payable.paid_minor == 0


def test_an_echeck_is_debited_through_plaid_and_settles(live: Any) -> None:
    since = int(time.time()) - 5
    link = open_live_link(live, amounts=(2_500,))

    result = link.pay_echeck()

    assert result["status"] == "processing", result
    intent = intent_of(link, result["payment_id"])
    assert intent.amount == 2_500
    # Test-mode ACH debits settle on their own after a while (Stripe docs, "ACH Direct Debit", testing).
    wait_for_event(link.stripe, since, "payment_intent.succeeded", about(intent.id), 300)
    delivered = deliver_events(live, link.stripe, since, about(intent.id))
    assert all(status == 200 for _, status in delivered), delivered
    link.wait_for_status(result["payment_id"], "succeeded", timeout=30)
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (2_500, 0, 0)


def test_autopay_charges_the_card_the_client_stored(live: Any) -> None:
    link = open_live_link(live, amounts=(30_000,))
    first = link.pay(CARD_OK, amount=10_000, store=True)
    assert first["status"] == "succeeded", first
    [method] = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)

    answer = live.invoke(
        "autopay_charge",
        {
            "firm_id": link.billed.firm.firm_id,
            "payable_id": link.payable_id,
            "method_id": method.method_id,
            "amount_minor": 5_000,
            "idempotency_key": f"live-{uuid.uuid4().hex}",
        },
    )

    assert answer["statusCode"] == 200, answer
    assert answer["body"]["status"] == "succeeded", answer
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor) == (15_000, 15_000)


def test_a_refund_reaches_stripe_and_its_events_reconcile(live: Any) -> None:
    link = open_live_link(live)
    result = link.pay(CARD_OK)
    assert result["status"] == "succeeded", result
    since = int(time.time()) - 5
    path = f"/firm/firms/{link.billed.firm.firm_id}/payables/{link.payable_id}/payments/{result['payment_id']}/refunds"

    answer = FirmClient(live.urls["gateway"]).call(
        "POST", path, {"reason": "requested_by_customer", "idempotency_key": uuid.uuid4().hex, "amount_minor": 1_000}
    )

    assert answer.status_code == 201, answer.text
    intent = intent_of(link, result["payment_id"])
    refunds = link.stripe.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.amount for r in refunds.data] == [1_000]
    wait_for_event(link.stripe, since, "charge.refunded", about(intent.id), 60)
    delivered = deliver_events(live, link.stripe, since, about(intent.id))
    assert all(status == 200 for _, status in delivered), delivered
    payable = link.invariant()
    assert payable.refunded_minor == 1_000
