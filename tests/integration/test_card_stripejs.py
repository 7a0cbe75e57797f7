"""The emulator's Stripe.js extension for the card page (local/stripe_emulator/stripejs.py), at HTTP
level: PaymentMethods made with the publishable key as Stripe.js makes them, and the script itself."""

from __future__ import annotations

import json

import pytest
import requests

from local.stack import LocalStack

pytestmark = pytest.mark.integration

CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}


def create(stack: LocalStack, body: dict[str, object], **headers: str) -> requests.Response:
    # Stripe.js posts a JSON body without a Content-Type (a "simple" cross-origin request).
    return requests.post(
        f"{stack.urls['stripe']}/v1/payment_methods", data=json.dumps(body), headers=headers, timeout=10
    )


def test_a_card_payment_method_is_created_with_the_publishable_key(stack: LocalStack) -> None:
    answer = create(
        stack, {"key": "pk_test_local", "type": "card", "card": CARD, "billing_details": {"name": "Jordan Client"}}
    )

    assert answer.status_code == 200, answer.text
    method = answer.json()
    assert method["id"].startswith("pm_")
    assert method["card"]["last4"] == "4242"
    assert method["card"]["exp_year"] == 2034
    assert method["billing_details"]["name"] == "Jordan Client"
    assert method["customer"] is None


@pytest.mark.parametrize("key", [None, "sk_not_a_publishable_key", "pk"])
def test_without_a_publishable_key_the_usual_authentication_applies(stack: LocalStack, key: str | None) -> None:
    body: dict[str, object] = {"type": "card", "card": CARD}
    if key is not None:
        body["key"] = key

    assert create(stack, body).status_code == 401


def test_a_bad_card_is_stripes_invalid_request(stack: LocalStack) -> None:
    answer = create(stack, {"key": "pk_test_local", "type": "card", "card": {**CARD, "number": "4242"}})

    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_the_script_offers_create_payment_method_and_the_next_action_calls(stack: LocalStack) -> None:
    script = requests.get(f"{stack.urls['stripe']}/js.stripe.com/v3/", timeout=10)

    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert "stripe.createPaymentMethod = async function" in script.text
    assert "stripe.handleCardAction = async function" in script.text
    assert "stripe.handleNextAction = async function" in script.text
    assert script.text.index("localstripe: The Stripe object") < script.text.index("FirmPay's extension")
