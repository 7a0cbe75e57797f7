"""The Stripe emulator's extensions behave as Stripe documents, through stripe-python."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe

from local.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client() -> Iterator[stripe.StripeClient]:
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
    yield stripe.StripeClient("sk_test_emulator", base_addresses={"api": f"http://127.0.0.1:{port}"})
    process.terminate()
    process.wait(timeout=10)


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
