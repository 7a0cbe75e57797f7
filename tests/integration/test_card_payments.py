"""Card payments through the local stack over HTTP: the real handlers, moto, and the Stripe emulator
driven with the real stripe SDK. The ledger invariant is checked after every payment."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from local.stack import STRIPE_SECRET, LocalStack
from tests.integration.conftest import table_snapshot
from tests.support.card_stack import (
    BILLING,
    CARD_3DS,
    CARD_OK,
    DECLINE_CARDS,
    StackLink,
    forget_failed_attempts,
    open_link,
    quiet_table,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_attempts(stack: LocalStack) -> Iterator[None]:
    yield
    forget_failed_attempts(stack)


def authenticate(link: StackLink, intent_id: str, success: bool) -> None:
    """What the bank's 3-D Secure page does, server-side at the emulator."""
    intent = link.stripe.v1.payment_intents.retrieve(intent_id)
    answer = requests.post(
        f"{link.stack.urls['stripe']}/v1/payment_intents/{intent_id}/_authenticate",
        params={"success": "true" if success else "false"},
        data={"client_secret": intent.client_secret},
        headers={"Authorization": f"Bearer {STRIPE_SECRET}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_full_payment(stack: LocalStack) -> None:
    link = open_link(stack)

    reviewed = link.review()
    result = link.submit(reviewed.json()["review_id"]).json()

    review = reviewed.json()
    assert review["amount"] == {"amount_minor": 150_050, "currency": "USD", "formatted": "$1,500.50\u00a0USD"}
    assert (review["card_brand"], review["card_last4"], review["billing_name"]) == ("Visa", "4242", "Jordan Client")
    assert review["payable_kind"] == "bill"
    assert review["payable_number"] == link.billed.payable.number
    assert result["status"] == "succeeded"
    assert result["balance"]["amount_minor"] == 0
    assert result["method_label"] == "Visa \u2022\u2022\u2022\u20224242"
    assert result["reference"].startswith("FP-")
    assert "confirmation email" in result["message"]
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (150_050, 0, 0)
    assert len(link.charges()) == 1
    assert link.intents()[0].amount == 150_050


def test_partial_payment(stack: LocalStack) -> None:
    link = open_link(stack)

    result = link.pay(amount=40_000)

    assert result["status"] == "succeeded"
    assert result["balance"]["amount_minor"] == 110_050
    assert link.invariant().balance_minor == 110_050


@pytest.mark.parametrize(("amount", "code"), [(150_051, "amount_over_balance"), (49, "amount_below_minimum")])
def test_amounts_outside_the_balance_and_minimum_are_refused(stack: LocalStack, amount: int, code: str) -> None:
    link = open_link(stack)

    answer = link.review(amount=amount)

    assert answer.status_code == 422
    assert answer.json()["code"] == code
    assert link.intents() == []
    assert link.invariant().balance_minor == 150_050


@pytest.mark.parametrize(("number", "code"), sorted(DECLINE_CARDS.items()))
def test_declined_cards_release_the_amount_with_a_human_message(stack: LocalStack, number: str, code: str) -> None:
    link = open_link(stack)

    result = link.pay(number)

    assert result["status"] == "failed"
    assert result["decline_code"] == code
    assert "card" in result["message"].lower()
    assert result["balance"]["amount_minor"] == 150_050
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (0, 0, 150_050)
    assert link.charges() == []


def test_a_declined_client_can_pay_with_another_card(stack: LocalStack) -> None:
    link = open_link(stack)

    assert link.pay("4000000000009995")["status"] == "failed"
    assert link.pay(CARD_OK)["status"] == "succeeded"

    assert link.invariant().paid_minor == 150_050
    assert len(link.charges()) == 1


@pytest.mark.parametrize("success", [True, False])
def test_three_d_secure(stack: LocalStack, success: bool) -> None:
    link = open_link(stack)
    reviewed = link.review(CARD_3DS).json()

    asked = link.submit(reviewed["review_id"]).json()
    assert asked["status"] == "requires_action"
    assert asked["client_secret"].startswith(link.intents()[0].id)
    assert link.invariant().pending_minor == 150_050

    authenticate(link, link.intents()[0].id, success)
    done = link.post("complete", {"payment_id": asked["payment_id"]}).json()

    payable = link.invariant()
    if success:
        assert done["status"] == "succeeded"
        assert payable.paid_minor == 150_050
        assert len(link.charges()) == 1
    else:
        assert done["status"] == "failed"
        assert done["decline_code"] == "authentication_failed"
        assert "Nothing was charged" in done["message"]
        assert (payable.paid_minor, payable.pending_minor) == (0, 0)
        assert link.charges() == []


def test_card_is_stored_only_with_consent(stack: LocalStack) -> None:
    link = open_link(stack)
    firm, client = link.billed.firm, link.billed.client

    link.pay(amount=50_000, store=False)
    assert link.ledger.list_methods(firm.firm_id, client.client_id) == []

    stored = link.pay(amount=50_000, store=True)

    methods = link.ledger.list_methods(firm.firm_id, client.client_id)
    assert [m.created_from_payment_id for m in methods] == [stored["payment_id"]]
    method = methods[0]
    assert (method.summary.brand, method.summary.last4, method.summary.exp_month, method.summary.exp_year) == (
        "visa",
        "4242",
        12,
        2034,
    )
    assert method.consent.text_version == "store-method-v1"
    assert method.consent.ip_address == "127.0.0.1"
    assert method.consent.user_agent == "card-tests/1.0"
    customer = link.ledger.get_client(firm.firm_id, client.client_id).processor_customer_id
    assert method.processor_customer_id == customer
    stored_intent = next(pi for pi in link.intents() if pi.to_dict().get("setup_future_usage"))
    assert stored_intent.setup_future_usage == "off_session"
    assert stored_intent.customer == customer
    link.invariant()


def test_canadian_firm_pays_in_cad(stack: LocalStack) -> None:
    link = open_link(stack, country="CA")

    reviewed = link.review()
    result = link.submit(reviewed.json()["review_id"]).json()

    assert reviewed.json()["currency"] == "CAD"
    assert result["amount"]["formatted"] == "$1,500.50\u00a0CAD"
    assert link.intents()[0].currency == "cad"
    assert link.invariant().paid_minor == 150_050


def test_trust_request_goes_in_full_to_trust_with_the_fee_on_operating(stack: LocalStack) -> None:
    link = open_link(stack, kind="trust_request", amounts=(500_000,))

    reviewed = link.review().json()
    result = link.submit(reviewed["review_id"]).json()

    assert "trust account" in reviewed["destination_text"]
    assert reviewed["destination"] == "trust"
    payment = link.ledger.get_payment(link.payable_id, result["payment_id"])
    assert payment.destination == "trust"
    assert payment.destination_account == link.billed.firm.trust_account
    assert payment.amount_minor == 500_000
    assert payment.fee_account == "operating"
    assert payment.fee_minor is not None
    assert payment.fee_minor > 0
    assert link.intents()[0].amount == 500_000
    assert link.intents()[0].metadata["destination"] == "trust"
    assert link.invariant().paid_minor == 500_000


def test_submit_costs_four_dynamodb_requests(stack: LocalStack) -> None:
    link = open_link(stack)
    review_id = link.review().json()["review_id"]
    time.sleep(1.5)  # let the webhooks of earlier events land first
    stack.poller.pause()  # the confirmation emails' own requests are not the submit's
    try:
        stack.proxy.reset_counts()
        assert link.submit(review_id).json()["status"] == "succeeded"
        counts = stack.proxy.counts("dynamodb")
    finally:
        stack.poller.resume()

    assert counts == {"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 2}


def test_past_the_failed_attempt_limit_a_captcha_is_required(stack: LocalStack) -> None:
    link = open_link(stack)
    for _ in range(3):
        assert link.pay("4000000000000002")["status"] == "failed"

    asked = link.review()
    assert asked.status_code == 429
    assert asked.json()["code"] == "captcha_required"

    stack.recaptcha.set_next_answer(False)
    refused = link.review(captcha_token="local-ok-1")
    assert refused.status_code == 429

    stack.recaptcha.set_next_answer(True)
    reviewed = link.review(captcha_token="local-ok-2")
    assert reviewed.status_code == 200
    assert link.submit(reviewed.json()["review_id"]).json()["status"] == "succeeded"
    link.invariant()


# -- bad input: a 4xx JSON error with a stable code, and nothing changes ------------------------------


def expect(answer: requests.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["code"] == code


def test_bad_input_on_review_changes_nothing(stack: LocalStack) -> None:
    link = open_link(stack)
    good = {"amount_minor": 10_000, "payment_method_id": link.card(), "billing": BILLING}
    before = quiet_table(stack)

    expect(link.post("review", "{not json"), 400, "malformed_json")
    expect(link.post("review", ""), 422, "invalid_request")
    for bad in (
        {**good, "amount_minor": 100.5},
        {**good, "amount_minor": "10000"},
        {**good, "amount_minor": -5},
        {**good, "amount_minor": 10**12},
        {**good, "payment_method_id": "card_123"},
        {**good, "billing": {**BILLING, "country": "MX"}},
        {**good, "billing": {**BILLING, "name": ""}},
        {k: v for k, v in good.items() if k != "billing"},
        {**good, "surprise": 1},
    ):
        expect(link.post("review", bad), 422, "invalid_request")
    expect(link.post("review", {**good, "payment_method_id": "pm_doesnotexist1"}), 422, "invalid_payment_method")
    expect(link.post("review", {**good, "amount_minor": 150_051}), 422, "amount_over_balance")
    expect(link.post("review", {**good, "amount_minor": 1}), 422, "amount_below_minimum")
    unknown = StackLink(stack, link.billed, "x" * 43)
    expect(unknown.post("review", good), 404, "link_not_found")

    assert table_snapshot(stack) == before


def test_bad_input_on_submit_and_complete_changes_nothing(stack: LocalStack) -> None:
    link = open_link(stack)
    review_id = link.review().json()["review_id"]
    before = quiet_table(stack)

    expect(link.post("submit", "[]"), 422, "invalid_request")
    expect(link.post("submit", "{"), 400, "malformed_json")
    expect(link.post("submit", {"review_id": review_id, "store_method": "yes"}), 422, "invalid_request")
    expect(link.post("submit", {"review_id": "not a review"}), 422, "invalid_request")
    expect(link.post("submit", {"review_id": "rev_doesnotexist00"}), 409, "review_expired")
    expect(link.post("complete", {"payment_id": "pay_000000000000000000000000"}), 404, "not_found")
    expect(link.post("complete", {"payment_id": "pi_123"}), 422, "invalid_request")
    expect(link.post("complete", {}), 422, "invalid_request")

    assert table_snapshot(stack) == before
    assert link.intents()[0].status == "requires_confirmation"


def test_a_balance_left_under_the_minimum_is_explained_not_an_error(stack: LocalStack) -> None:
    # Given a bill of 100.00 of which the client paid 99.99: 0.01 is left, under Stripe's 0.50
    link = open_link(stack, amounts=(10_000,))
    assert link.pay(amount=9_999)["status"] == "succeeded"
    before = quiet_table(stack)

    # When the client opens the pay link again and tries to pay the cent
    page = requests.get(f"{stack.urls['gateway']}/pay/{link.token}", timeout=10)
    view = requests.get(f"{stack.urls['gateway']}/api/pay/{link.token}", timeout=10)
    review = link.review(amount=1)

    # Then the page says what is left and what to do, and the review is refused with that message
    assert page.status_code == 200, page.text
    assert "The balance left is too small to pay online" in page.text
    assert "Please contact Hartley &amp; Vance LLP to settle it." in page.text
    assert 'id="payment-options"' not in page.text
    assert (view.status_code, view.json()["minimum_amount"]["amount_minor"]) == (200, 50)
    assert (review.status_code, review.json()["code"]) == (422, "amount_below_minimum"), review.text
    assert "contact the firm" in review.json()["message"]
    assert table_snapshot(stack) == before
    assert link.invariant().balance_minor == 1
