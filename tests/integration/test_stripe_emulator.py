"""The Stripe emulator's extensions behave as Stripe documents, through stripe-python."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import plaid
import pytest
import requests
import stripe
import urllib3
from plaid.api.plaid_api import PlaidApi
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest
from plaid.model.processor_stripe_bank_account_token_create_request import (
    ProcessorStripeBankAccountTokenCreateRequest,
)
from plaid.model.products import Products
from plaid.model.sandbox_public_token_create_request import SandboxPublicTokenCreateRequest

from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.payments.processor import ConfirmRequest, Intent, IntentRequest
from local.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_ach_test"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """The emulator's base URL (one process for the module)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "local.stripe_emulator", "--port", str(port)], cwd=ROOT)
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/js.stripe.com/v3/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def client(emulator: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": emulator})


def card(client: stripe.StripeClient, number: str) -> str:
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    )
    return str(method.id)


def intent(client: stripe.StripeClient, number: str, key: str, **params: object) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "usd",
            "payment_method": card(client, number),
            "description": "Bill B-1",
            "statement_descriptor_suffix": "B-1",
            **params,
        },  # type: ignore[typeddict-item]
        options={"idempotency_key": key},
    )


def test_the_same_idempotency_key_replays_the_first_answer(client: stripe.StripeClient) -> None:
    first = intent(client, "4242424242424242", "key-replay")
    again = client.v1.payment_intents.create(
        params={
            "amount": 1500,
            "currency": "usd",
            "payment_method": first.payment_method,
            "description": "Bill B-1",
            "statement_descriptor_suffix": "B-1",
        },
        options={"idempotency_key": "key-replay"},
    )
    assert again.id == first.id


def test_the_same_key_with_other_parameters_is_an_idempotency_error(client: stripe.StripeClient) -> None:
    intent(client, "4242424242424242", "key-mismatch")
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(
            params={"amount": 999, "currency": "usd"}, options={"idempotency_key": "key-mismatch"}
        )


def test_a_replayed_confirm_charges_once(client: stripe.StripeClient) -> None:
    pi = intent(client, "4242424242424242", "key-confirm-once")
    first = client.v1.payment_intents.confirm(pi.id, options={"idempotency_key": "confirm-once"})
    second = client.v1.payment_intents.confirm(pi.id, options={"idempotency_key": "confirm-once"})
    assert first.status == second.status == "succeeded"
    charges = client.v1.payment_intents.retrieve(pi.id).to_dict()["charges"]["data"]
    assert len(charges) == 1


def test_setup_future_usage_attaches_the_method_to_the_customer(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Jordan"})
    pi = intent(client, "4242424242424242", "key-sfu", customer=customer.id)
    done = client.v1.payment_intents.confirm(pi.id, params={"setup_future_usage": "off_session"})
    assert done.status == "succeeded"
    assert client.v1.payment_methods.retrieve(str(pi.payment_method)).customer == customer.id


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [
        ("4000000000000002", "generic_decline"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
        ("4000000000000119", "processing_error"),
    ],
)
def test_decline_cards_decline_at_confirmation_with_their_codes(
    client: stripe.StripeClient, number: str, decline_code: str
) -> None:
    pi = intent(client, number, f"key-decline-{number}")
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(pi.id)
    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error is not None
    assert after.last_payment_error.decline_code == decline_code


def test_no_pickle_is_left_in_tmp() -> None:
    assert not Path("/tmp/localstripe.pickle").exists()


# -- ACH debits (us_bank_account) with Plaid-made bank accounts ------------------------------------

ONLINE_MANDATE: Any = {
    "customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.9", "user_agent": "Mozilla/5.0"}}
}


def bank_token(client: stripe.StripeClient, account_number: str = "000123456789", routing: str = "110000000") -> str:
    token = client.v1.tokens.create(
        params={
            "bank_account": {
                "country": "US",
                "currency": "usd",
                "routing_number": routing,
                "account_number": account_number,
                "account_holder_name": "Alberta Bobbeth Charleson",
                "account_holder_type": "individual",
            }
        }
    )
    return str(token.id)


def bank_customer(client: stripe.StripeClient, **token: str) -> tuple[str, str]:
    """A customer with an attached (Plaid-verified) bank account: (cus_, ba_)."""
    customer = client.v1.customers.create(params={"name": "Jordan Client"})
    source = client.v1.customers.payment_sources.create(customer.id, params={"source": bank_token(client, **token)})
    return str(customer.id), str(source.id)


def ach_intent(client: stripe.StripeClient, customer: str, bank: str, amount: int = 10_000, **params: Any) -> str:
    pi = client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "customer": customer,
            "payment_method": bank,
            "allowed_payment_method_types": ["us_bank_account"],
            "metadata": {"payable_id": "pay_1", "payment_id": "pmt_1"},
            **params,  # type: ignore[typeddict-item]
        }
    )
    return str(pi.id)


def mandate_of(intent: stripe.PaymentIntent) -> str:
    """The mandate of the intent's debit: Stripe names it on the charge's payment method details."""
    return str(intent.to_dict()["latest_charge"]["payment_method_details"]["us_bank_account"]["mandate"])


def processing_debit(client: stripe.StripeClient, amount: int = 10_000) -> tuple[str, str, str]:
    customer, bank = bank_customer(client)
    pi = ach_intent(client, customer, bank, amount)
    client.v1.payment_intents.confirm(pi, params={"mandate_data": ONLINE_MANDATE})
    return customer, bank, pi


def control(emulator: str, intent_id: str, action: str, **body: str) -> requests.Response:
    return requests.post(f"{emulator}/_test/payment_intents/{intent_id}/{action}", json=body, timeout=5)


def test_a_bank_account_token_names_the_bank_registered_for_its_routing_number(
    client: stripe.StripeClient, emulator: str
) -> None:
    answer = requests.post(
        f"{emulator}/_test/bank_names", json={"routing_number": "061000159", "bank_name": "Houndstooth Bank"}, timeout=5
    )
    assert answer.status_code == 200

    token = client.v1.tokens.retrieve(bank_token(client, account_number="1111222233330000", routing="061000159"))
    other = client.v1.tokens.retrieve(bank_token(client, routing="011401533"))

    assert (token.object, token.type, token.used) == ("token", "bank_account", False)
    assert token.id.startswith("btok_")
    account = token.bank_account
    assert account is not None
    assert account.id.startswith("ba_")
    assert (account.object, account.bank_name, account.last4, account.routing_number, account.status) == (
        "bank_account",
        "Houndstooth Bank",
        "0000",
        "061000159",
        "new",
    )
    assert other.bank_account is not None
    assert other.bank_account.bank_name == "STRIPE TEST BANK"


def test_card_tokens_still_work(client: stripe.StripeClient) -> None:
    token = client.v1.tokens.create(
        params={"card": {"number": "4242424242424242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}}
    )
    assert token.id.startswith("tok_")
    assert token.card is not None
    assert token.card.last4 == "4242"


def test_an_invalid_routing_number_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        bank_token(client, routing="110000001")
    assert refused.value.code == "routing_number_invalid"


def test_a_token_attaches_once_as_the_customer_s_verified_bank_account(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Jordan Client"})
    token = bank_token(client)

    source = client.v1.customers.payment_sources.create(customer.id, params={"source": token})

    assert isinstance(source, stripe.BankAccount)
    assert (source.customer, source.status, source.last4) == (customer.id, "verified", "6789")
    assert client.v1.customers.payment_sources.retrieve(customer.id, source.id).id == source.id
    with pytest.raises(stripe.InvalidRequestError) as reused:
        client.v1.customers.payment_sources.create(customer.id, params={"source": token})
    assert (reused.value.http_status, reused.value.code) == (400, "token_already_used")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.payment_sources.create(customer.id, params={"source": "btok_unknown"})
    assert (unknown.value.http_status, unknown.value.code) == (400, "resource_missing")


def test_a_debit_confirmed_with_a_mandate_is_processing_with_a_pending_charge(client: stripe.StripeClient) -> None:
    customer, bank = bank_customer(client)
    pi = ach_intent(client, customer, bank, 12_345)
    assert client.v1.payment_intents.retrieve(pi).status == "requires_confirmation"

    done = client.v1.payment_intents.confirm(pi, params={"mandate_data": ONLINE_MANDATE})

    assert done.status == "processing"
    charge = done.to_dict()["latest_charge"]
    assert (charge["status"], charge["amount"]) == ("pending", 12_345)
    details = charge["payment_method_details"]["us_bank_account"]
    assert (details["bank_name"], details["last4"], details["routing_number"]) == (
        "STRIPE TEST BANK",
        "6789",
        "110000000",
    )
    assert details["mandate"].startswith("mandate_")
    mandate = client.v1.mandates.retrieve(details["mandate"])
    assert (mandate.status, mandate.type, mandate.payment_method) == ("active", "single_use", bank)
    assert mandate.customer_acceptance.online is not None
    assert mandate.customer_acceptance.online.ip_address == "203.0.113.9"


def test_confirming_without_a_mandate_is_refused_and_changes_nothing(client: stripe.StripeClient) -> None:
    customer, bank = bank_customer(client)
    pi = ach_intent(client, customer, bank)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.confirm(pi)

    assert refused.value.http_status == 400
    assert "mandate_data" in str(refused.value.user_message)
    assert client.v1.payment_intents.retrieve(pi).status == "requires_confirmation"


def test_a_replayed_ach_confirm_debits_once(client: stripe.StripeClient) -> None:
    customer, bank = bank_customer(client)
    pi = ach_intent(client, customer, bank)
    params = {"mandate_data": ONLINE_MANDATE}

    first = client.v1.payment_intents.confirm(pi, params=params, options={"idempotency_key": f"ach-{pi}"})  # type: ignore[arg-type]
    again = client.v1.payment_intents.confirm(pi, params=params, options={"idempotency_key": f"ach-{pi}"})  # type: ignore[arg-type]

    assert first.status == again.status == "processing"
    assert mandate_of(first) == mandate_of(again)
    assert first.to_dict()["latest_charge"]["id"] == again.to_dict()["latest_charge"]["id"]
    with pytest.raises(stripe.InvalidRequestError) as second:
        client.v1.payment_intents.confirm(pi, params=params)  # type: ignore[arg-type]
    assert second.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(("amount", "fee"), [(10_000, 80), (120_000, 500)])
def test_a_settled_debit_succeeds_with_the_ach_fee(
    client: stripe.StripeClient, emulator: str, amount: int, fee: int
) -> None:
    _, _, pi = processing_debit(client, amount)

    assert control(emulator, pi, "settle").status_code == 200

    done = client.v1.payment_intents.retrieve(pi, params={"expand": ["latest_charge.balance_transaction"]})
    charge = done.to_dict()["latest_charge"]
    assert (done.status, charge["status"]) == ("succeeded", "succeeded")
    assert (charge["balance_transaction"]["amount"], charge["balance_transaction"]["fee"]) == (amount, fee)


@pytest.mark.parametrize(
    ("code", "failure", "account_status"),
    [
        ("R01", "insufficient_funds", "verified"),
        ("R02", "bank_account_closed", "errored"),
        ("R04", "bank_account_invalid_details", "errored"),
        ("R29", "debit_not_authorized", "errored"),
    ],
)
def test_a_returned_debit_fails_with_stripe_s_network_and_decline_codes(
    client: stripe.StripeClient, emulator: str, code: str, failure: str, account_status: str
) -> None:
    customer, bank, pi = processing_debit(client)

    answer = requests.post(f"{emulator}/_test/payment_intents/{pi}/return", data={"code": code}, timeout=5)

    assert answer.status_code == 200
    failed = client.v1.payment_intents.retrieve(pi)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error is not None
    error = failed.last_payment_error
    assert (error.network_decline_code, error.decline_code, error.code) == (
        code,
        failure,
        "payment_method_provider_decline",
    )
    charge = failed.to_dict()["latest_charge"]
    assert (charge["status"], charge["failure_code"]) == ("failed", failure)
    assert charge["outcome"]["network_decline_code"] == code
    assert client.v1.customers.payment_sources.retrieve(customer, bank).to_dict()["status"] == account_status


def test_an_errored_account_cannot_be_debited_again(client: stripe.StripeClient, emulator: str) -> None:
    customer, bank, pi = processing_debit(client)
    control(emulator, pi, "return", code="R02")
    again = ach_intent(client, customer, bank)

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.confirm(again, params={"mandate_data": ONLINE_MANDATE})

    assert client.v1.payment_intents.retrieve(again).status == "requires_confirmation"


def test_settling_or_returning_a_debit_that_is_not_processing_is_refused(
    client: stripe.StripeClient, emulator: str
) -> None:
    customer, bank = bank_customer(client)
    unconfirmed = ach_intent(client, customer, bank)
    _, _, settled = processing_debit(client)
    control(emulator, settled, "settle")
    _, _, processing = processing_debit(client)

    answers = [
        control(emulator, unconfirmed, "settle"),
        control(emulator, settled, "return", code="R01"),
        control(emulator, settled, "settle"),
        control(emulator, processing, "return", code="R99"),
    ]

    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert all(a.json()["error"]["type"] == "invalid_request_error" for a in answers)
    assert client.v1.payment_intents.retrieve(settled).status == "succeeded"
    assert client.v1.payment_intents.retrieve(processing).status == "processing"


def test_a_deleted_or_another_customer_s_bank_account_is_refused(client: stripe.StripeClient) -> None:
    customer, bank = bank_customer(client)
    other_customer, _ = bank_customer(client)
    pending = ach_intent(client, customer, bank)

    deleted = client.v1.customers.payment_sources.delete(customer, bank)

    assert deleted.to_dict() == {"id": bank, "object": "bank_account", "deleted": True}
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.customers.payment_sources.retrieve(customer, bank)
    assert gone.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError):
        ach_intent(client, customer, bank)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.confirm(pending, params={"mandate_data": ONLINE_MANDATE})
    assert client.v1.payment_intents.retrieve(pending).status == "requires_confirmation"
    _, foreign = bank_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as not_theirs:
        ach_intent(client, other_customer, foreign)
    assert not_theirs.value.http_status == 400


def test_an_off_session_debit_reuses_the_accepted_multi_use_mandate(client: stripe.StripeClient) -> None:
    customer, bank = bank_customer(client)
    first = ach_intent(client, customer, bank, setup_future_usage="off_session")
    accepted = client.v1.payment_intents.confirm(first, params={"mandate_data": ONLINE_MANDATE})
    mandate = mandate_of(accepted)
    assert client.v1.mandates.retrieve(mandate).type == "multi_use"
    later = ach_intent(client, customer, bank, 5_000)
    autopay = ach_intent(client, customer, bank, 7_000)

    debited = client.v1.payment_intents.confirm(later, params={"mandate": mandate, "off_session": True})
    picked = client.v1.payment_intents.confirm(autopay, params={"off_session": True})

    assert (debited.status, mandate_of(debited)) == ("processing", mandate)
    assert (picked.status, mandate_of(picked)) == ("processing", mandate)


class WebhookReceiver(ThreadingHTTPServer):
    """Collects the (body, Stripe-Signature) of every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers["Content-Length"])).decode()
                self.received.append((body, handler.headers.get("Stripe-Signature", "")))
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def webhooks(emulator: str) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    events = ["payment_intent.processing", "payment_intent.succeeded", "payment_intent.payment_failed"]
    answer = requests.post(
        f"{emulator}/_config/webhooks/ach-test",
        json={"url": f"http://127.0.0.1:{receiver.server_port}/", "secret": WEBHOOK_SECRET, "events": events},
        timeout=5,
    )
    answer.raise_for_status()
    yield receiver
    receiver.shutdown()
    receiver.server_close()


def events_for(receiver: WebhookReceiver, intent_ids: set[str], count: int) -> list[stripe.Event]:
    """The verified events about these intents, waiting (localstripe sends after a second) for ``count``."""
    deadline = time.monotonic() + 10
    while True:
        events = [
            stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET) for body, signature in receiver.received
        ]
        mine = [e for e in events if e.data.object["id"] in intent_ids]
        if len(mine) >= count:
            return mine
        if time.monotonic() > deadline:
            raise AssertionError(
                f"waited 10s for {count} webhook events about {intent_ids}; got {[e.type for e in mine]}"
            )
        time.sleep(0.1)


def test_ach_events_are_signed_webhooks_with_the_intent_and_its_metadata(
    client: stripe.StripeClient, emulator: str, webhooks: WebhookReceiver
) -> None:
    _, _, settled = processing_debit(client)
    _, _, returned = processing_debit(client)
    control(emulator, settled, "settle")
    control(emulator, returned, "return", code="R01")

    events = events_for(webhooks, {settled, returned}, 4)

    seen = sorted((e.type, e.data.object["id"], e.data.object["status"]) for e in events)
    assert seen == sorted(
        [
            ("payment_intent.processing", settled, "processing"),
            ("payment_intent.succeeded", settled, "succeeded"),
            ("payment_intent.processing", returned, "processing"),
            ("payment_intent.payment_failed", returned, "requires_payment_method"),
        ]
    )
    assert all(e.data.object["metadata"].to_dict() == {"payable_id": "pay_1", "payment_id": "pmt_1"} for e in events)
    failed = next(e for e in events if e.type == "payment_intent.payment_failed")
    assert failed.data.object["last_payment_error"]["network_decline_code"] == "R01"
    assert failed.data.object["last_payment_error"]["decline_code"] == "insufficient_funds"
    body, signature = webhooks.received[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_other")


# -- the Plaid emulator's Stripe tokens, and FirmPay's gateway, against this emulator --------------


def test_the_plaid_emulator_s_stripe_token_attaches_here_with_the_bank_s_name(
    client: stripe.StripeClient, emulator: str
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "local.plaid_emulator", "--port", str(port), "--stripe-url", emulator]
    process = subprocess.Popen([*command, "--stripe-key", "sk_test_plaid"], cwd=ROOT)
    try:
        api = PlaidApi(
            plaid.ApiClient(
                plaid.Configuration(host=f"http://127.0.0.1:{port}", api_key={"clientId": "c", "secret": "s"})
            )
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                public = api.sandbox_public_token_create(
                    SandboxPublicTokenCreateRequest(institution_id="ins_109512", initial_products=[Products("auth")])
                )
                break
            except (OSError, urllib3.exceptions.HTTPError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        access = api.item_public_token_exchange(ItemPublicTokenExchangeRequest(public_token=public.public_token))
        accounts = api.accounts_get(AccountsGetRequest(access_token=access.access_token))
        checking = accounts.accounts[0]

        made = api.processor_stripe_bank_account_token_create(
            ProcessorStripeBankAccountTokenCreateRequest(
                access_token=access.access_token, account_id=checking.account_id
            )
        )
    finally:
        process.terminate()
        process.wait(timeout=10)

    customer = client.v1.customers.create(params={"name": "Alberta"})
    source = client.v1.customers.payment_sources.create(customer.id, params={"source": made.stripe_bank_account_token})
    assert isinstance(source, stripe.BankAccount)
    assert (source.bank_name, source.last4, source.status) == ("Houndstooth Bank", checking.mask, "verified")


def test_firmpay_s_stripe_gateway_debits_a_bank_account_on_and_off_session(
    client: stripe.StripeClient, emulator: str
) -> None:
    gateway = StripeGateway(client)
    customer = gateway.ensure_customer("firm_gw", "client_gw", "Jordan Client", "jordan@example.com", None)
    source = gateway.attach_bank_account(customer, bank_token(client))
    assert (source.bank_name, source.last4) == ("STRIPE TEST BANK", "6789")

    def debit(key: str, amount: int) -> Intent:
        return gateway.create_intent(
            IntentRequest(
                amount_minor=amount,
                currency="USD",
                payment_method_id=source.source_id,
                method_type="us_bank_account",
                idempotency_key=f"create-{key}",
                metadata={"payable_id": "pay_gw", "payment_id": key},
                description="Bill B-7",
                customer_id=customer,
                statement_descriptor_suffix="B-7",
            )
        )

    first = debit("gw-1", 120_000)
    assert first.status == "requires_confirmation"
    confirmed = gateway.confirm_intent(
        ConfirmRequest(
            intent_id=first.intent_id,
            idempotency_key="confirm-gw-1",
            setup_future_usage="off_session",
            mandate_ip="203.0.113.9",
            mandate_user_agent="Mozilla/5.0",
        )
    )
    assert (confirmed.status, confirmed.metadata["payment_id"]) == ("processing", "gw-1")
    assert confirmed.mandate_id is not None
    control(emulator, first.intent_id, "settle")
    settled = gateway.retrieve_intent(first.intent_id)
    assert (settled.status, settled.fee_minor, settled.payment_method_id) == ("succeeded", 500, source.source_id)

    later = debit("gw-2", 30_000)
    autopay = gateway.confirm_intent(
        ConfirmRequest(
            intent_id=later.intent_id, idempotency_key="confirm-gw-2", off_session=True, mandate_id=confirmed.mandate_id
        )
    )
    assert (autopay.status, autopay.mandate_id) == ("processing", confirmed.mandate_id)
    control(emulator, later.intent_id, "return", code="R01")
    returned = gateway.retrieve_intent(later.intent_id)
    assert (returned.status, returned.failure_code, returned.network_decline_code) == (
        "requires_payment_method",
        "insufficient_funds",
        "R01",
    )

    gateway.detach_method(customer, source.source_id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.payment_sources.retrieve(customer, source.source_id)


# -- Stripe's contract: the pinned SDK's params on every request, its fields on every object ----------


def refused(call: Any) -> dict[str, Any]:
    """The error body of a request the emulator refuses (as the SDK raised it)."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call()
    assert raised.value.http_status == 400
    body = raised.value.json_body
    assert body is not None
    return body["error"]  # type: ignore[no-any-return]


def test_payment_method_types_on_an_intent_is_no_longer_supported(client: stripe.StripeClient) -> None:
    params: dict[str, Any] = {"amount": 1500, "currency": "usd", "payment_method_types": ["card"]}

    error = refused(lambda: client.v1.payment_intents.create(params=params))  # type: ignore[arg-type]

    assert error["code"] == "payment_method_types_no_longer_supported"
    assert (error["type"], error["param"]) == ("invalid_request_error", "payment_method_types")


def test_an_unknown_parameter_is_refused_as_stripe_refuses_it(client: stripe.StripeClient) -> None:
    params: dict[str, Any] = {"amount": 1500, "currency": "usd", "amount_in_cents": 1500}

    error = refused(lambda: client.v1.payment_intents.create(params=params))  # type: ignore[arg-type]

    assert error == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": "amount_in_cents",
        "message": "Received unknown parameter: amount_in_cents",
        "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
    }


def test_a_nested_unknown_parameter_is_refused_with_its_path(client: stripe.StripeClient) -> None:
    pi = intent(client, "4242424242424242", "contract-nested")
    mandate_data = {"customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.9", "agent": "x"}}}

    error = refused(
        lambda: client.v1.payment_intents.confirm(pi.id, params={"mandate_data": mandate_data})  # type: ignore[typeddict-item]
    )

    assert (error["code"], error["param"]) == ("parameter_unknown", "mandate_data[customer_acceptance][online][agent]")
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_confirmation"  # nothing happened


def test_a_missing_required_parameter_is_refused(client: stripe.StripeClient) -> None:
    error = refused(lambda: client.v1.payment_intents.create(params={"currency": "usd"}))  # type: ignore[typeddict-item]

    assert (error["code"], error["param"]) == ("parameter_missing", "amount")


def test_every_emulated_object_carries_the_sdk_classes_fields(client: stripe.StripeClient, emulator: str) -> None:
    from local.stripe_emulator.contract import OBJECT_CLASSES, sdk_fields

    customer, bank, pi = processing_debit(client)
    card_intent = client.v1.payment_intents.confirm(intent(client, "4242424242424242", "contract-fields").id)
    refund = client.v1.refunds.create(params={"payment_intent": card_intent.id, "amount": 100})
    objects = {
        "payment_intent": card_intent.to_dict(),
        "charge": client.v1.charges.retrieve(str(card_intent.to_dict()["latest_charge"]["id"])).to_dict(),
        "refund": refund.to_dict(),
        "customer": client.v1.customers.retrieve(customer).to_dict(),
        "payment_method": client.v1.payment_methods.retrieve(card(client, "4242424242424242")).to_dict(),
        "bank_account": client.v1.customers.payment_sources.retrieve(customer, bank).to_dict(),
        "mandate": client.v1.mandates.retrieve(mandate_of(client.v1.payment_intents.retrieve(pi))).to_dict(),
    }
    for name, obj in objects.items():
        missing = set(sdk_fields(OBJECT_CLASSES[name])) - set(obj)
        assert missing == set(), f"{name} lacks {sorted(missing)}"
