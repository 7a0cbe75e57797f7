"""``make test-live``: the integration scenarios against Stripe test mode and Plaid sandbox.

The local stack still provides everything AWS (DynamoDB, SES, KMS, SQS, SSM, the gateway); only
Stripe and Plaid are real. Without the four keys below every test here is skipped (and
``make test-live`` says what to set before pytest even starts).

Webhooks: Stripe cannot reach 127.0.0.1, so the tests poll Stripe's events (``GET /v1/events``)
for the objects they made and deliver each one to the local ``/webhooks/stripe`` signed with the
local webhook secret, as Stripe would sign it (docs/operations.md, "Live tests").
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import stripe

LIVE_KEYS = ("STRIPE_TEST_SECRET_KEY", "STRIPE_TEST_PUBLISHABLE_KEY", "PLAID_SANDBOX_CLIENT_ID", "PLAID_SANDBOX_SECRET")
STRIPE_API = "https://api.stripe.com"
STRIPE_JS = "https://js.stripe.com/v3/"
PLAID_SANDBOX = "https://sandbox.plaid.com"
PLAID_LINK_JS = "https://cdn.plaid.com/link/v2/stable/link-initialize.js"


def missing_keys(environ: Any = os.environ) -> list[str]:
    return [name for name in LIVE_KEYS if not environ.get(name)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/live is skipped while a key is missing."""
    missing = missing_keys()
    for item in items:
        if "tests/live/" not in item.nodeid.replace(os.sep, "/"):
            continue
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"live tests need {', '.join(missing)}"))


@pytest.fixture(scope="session")
def live(stack: Any) -> Iterator[Any]:
    """The local stack with Stripe test mode and Plaid sandbox in place of the emulators."""
    from local.stack import reset_firmpay_caches

    if not os.environ["STRIPE_TEST_SECRET_KEY"].startswith(("sk_test_", "rk_test_")):
        pytest.exit("STRIPE_TEST_SECRET_KEY must be a test-mode key (sk_test_...): live tests never touch live mode")
    ssm = stack.client("ssm")
    ssm.put_parameter(
        Name=os.environ["STRIPE_SECRET_KEY_PARAM"],
        Value=os.environ["STRIPE_TEST_SECRET_KEY"],
        Type="SecureString",
        Overwrite=True,
    )
    credentials = {"client_id": os.environ["PLAID_SANDBOX_CLIENT_ID"], "secret": os.environ["PLAID_SANDBOX_SECRET"]}
    ssm.put_parameter(
        Name=os.environ["PLAID_CREDENTIALS_PARAM"], Value=json.dumps(credentials), Type="SecureString", Overwrite=True
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STRIPE_API_BASE", STRIPE_API)
        env.setenv("STRIPE_JS_URL", STRIPE_JS)
        env.setenv("STRIPE_PUBLISHABLE_KEY", os.environ["STRIPE_TEST_PUBLISHABLE_KEY"])
        env.setenv("PLAID_BASE_URL", PLAID_SANDBOX)
        env.setenv("PLAID_LINK_JS_URL", PLAID_LINK_JS)
        reset_firmpay_caches()
        yield stack
    reset_firmpay_caches()


@pytest.fixture(scope="session")
def stripe_live(live: Any) -> stripe.StripeClient:
    return stripe.StripeClient(os.environ["STRIPE_TEST_SECRET_KEY"], max_network_retries=2)


def deliver_events(
    stack: Any, client: stripe.StripeClient, since: int, ours: Callable[[dict[str, Any]], bool]
) -> list[tuple[str, int]]:
    """Stripe's events since ``since`` whose object ``ours`` accepts, oldest first, each POSTed to the
    local webhook endpoint with a Stripe-Signature made with the local secret; (type, status) of each."""
    from local.stack import WEBHOOK_SECRET

    found = client.v1.events.list(params={"created": {"gte": since}, "limit": 100})
    events = sorted((e.to_dict() for e in found.auto_paging_iter()), key=lambda e: (e["created"], e["id"]))
    delivered: list[tuple[str, int]] = []
    for event in events:
        if not ours(event["data"]["object"]):
            continue
        payload = json.dumps(event)
        signature = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET, int(time.time()))
        answer = requests.post(
            f"{stack.urls['gateway']}/webhooks/stripe",
            data=payload,
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature},
            timeout=30,
        )
        delivered.append((event["type"], answer.status_code))
    return delivered


def wait_for_event(
    client: stripe.StripeClient, since: int, event_type: str, ours: Callable[[dict[str, Any]], bool], seconds: float
) -> dict[str, Any]:
    """The first ``event_type`` event about one of ours, polling Stripe until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        found = client.v1.events.list(params={"created": {"gte": since}, "type": event_type, "limit": 100})
        for event in found.auto_paging_iter():
            data = event.to_dict()
            if ours(data["data"]["object"]):
                return data
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event_type} event for our object at Stripe within {seconds:.0f} s")
        time.sleep(5)
