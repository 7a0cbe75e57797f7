"""Autopay: a firm charges a method its client stored, by the IAM route or a direct invoke, on the
local stack (real Stripe SDK against the emulator, real DynamoDB calls against moto)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from local.stack import LocalStack
from tests.integration.conftest import CA_KEY, OTHER_KEY, FirmClient, table_snapshot
from tests.support.autopay_stack import (
    Autopay,
    autopay_for,
    charged,
    decline_next,
    intents_by_payable,
    new_key,
    store_card,
    store_consent,
)
from tests.support.card_stack import CARD_3DS, CARD_OK, open_link, quiet_table
from tests.support.echeck_stack import open_echeck_link, stripe_test_control

TOTAL = 150_050  # create_billed's default bill: 1,200.00 + 300.50


@pytest.fixture
def autopay(stack: LocalStack) -> Autopay:
    return autopay_for(stack)


# -- charging --------------------------------------------------------------------------------------


def test_a_card_stored_on_the_pay_page_is_charged_off_session_by_the_route(stack: LocalStack) -> None:
    # Given a client who paid 100.00 on the pay page and ticked "store this card"
    link = open_link(stack)
    first = link.pay(CARD_OK, amount=10_000, store=True)
    assert first["status"] == "succeeded"
    [method] = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)
    autopay = Autopay(stack, link, method)

    # When the firm charges 250.00 to it through POST /firm/autopay
    answer = autopay.route(autopay.payload(25_000, currency="USD"))

    # Then the card is charged, the payment is an autopay one, and the balance went down by 250.00
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded"
    assert body["origin"] == "autopay"
    assert body["amount"] == {"amount_minor": 25_000, "currency": "USD"}
    assert body["balance"] == {"amount_minor": TOTAL - 35_000, "currency": "USD"}
    assert body["method"] == "Visa \u2022\u2022\u2022\u20224242"
    assert body["replayed"] is False
    assert len(charged(link.intents())) == 2
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor) == (35_000, TOTAL - 35_000)
    # and the firm sees it on the payable
    seen = FirmClient(stack.urls["gateway"]).call(
        "GET", f"/firm/firms/{link.billed.firm.firm_id}/payables/{link.payable_id}"
    )
    assert [p["origin"] for p in seen.json()["payments"]] == ["pay_page", "autopay"]


def test_a_direct_invoke_charges_the_stored_card(autopay: Autopay) -> None:
    answer = autopay.invoke(autopay.payload(40_000))

    assert answer["statusCode"] == 200, answer
    assert answer["body"]["status"] == "succeeded"
    assert answer["body"]["balance"]["amount_minor"] == TOTAL - 40_000
    assert len(charged(autopay.link.intents())) == 1
    assert autopay.link.invariant().paid_minor == 40_000


def test_the_whole_balance_can_be_charged_and_the_bill_is_then_paid(autopay: Autopay) -> None:
    answer = autopay.invoke(autopay.payload(TOTAL))

    assert answer["body"]["status"] == "succeeded"
    payable = autopay.link.invariant()
    assert payable.status.value == "paid"
    assert payable.balance_minor == 0


def test_a_card_that_needs_authentication_off_session_fails_and_releases_the_balance(stack: LocalStack) -> None:
    # Given a stored card whose issuer always asks for 3-D Secure
    autopay = autopay_for(stack, CARD_3DS)

    # When the firm charges it off-session
    answer = autopay.route(autopay.payload(30_000))

    # Then the payment failed with authentication_required, nothing was charged, the balance is whole
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["failure_code"]) == ("failed", "authentication_required")
    assert body["balance"]["amount_minor"] == TOTAL
    [intent] = autopay.link.intents()
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "authentication_required"
    payment = autopay.link.ledger.get_payment(autopay.link.payable_id, body["payment_id"])
    # what the confirmation-email stream keys on to email the client a pay link to finish on-session
    assert (payment.origin, payment.failure_code) == ("autopay", "authentication_required")
    assert autopay.link.invariant().pending_minor == 0


def test_a_declined_card_fails_with_its_decline_code(stack: LocalStack, autopay: Autopay) -> None:
    decline_next(stack, autopay.method.processor_method_id, "insufficient_funds")

    body = autopay.invoke(autopay.payload(30_000))["body"]

    assert (body["status"], body["failure_code"]) == ("failed", "insufficient_funds")
    assert autopay.link.invariant().balance_minor == TOTAL


# -- idempotency -----------------------------------------------------------------------------------


def test_repeating_a_key_returns_the_first_result_and_charges_once(autopay: Autopay) -> None:
    payload = autopay.payload(20_000)
    first = autopay.route(payload)

    again_by_route = autopay.route(payload)
    again_by_invoke = autopay.invoke(payload)

    assert first.status_code == again_by_route.status_code == 200
    assert again_by_route.json()["payment_id"] == first.json()["payment_id"]
    assert again_by_route.json()["replayed"] is True
    assert again_by_invoke["body"]["payment_id"] == first.json()["payment_id"]
    assert len(autopay.link.intents()) == 1
    assert autopay.link.invariant().paid_minor == 20_000


def test_a_repeated_key_of_a_failed_charge_does_not_charge_again(stack: LocalStack) -> None:
    autopay = autopay_for(stack, CARD_3DS)
    payload = autopay.payload(20_000)
    first = autopay.invoke(payload)["body"]

    again = autopay.invoke(payload)["body"]

    assert again["payment_id"] == first["payment_id"]
    assert again["status"] == "failed"
    assert len(autopay.link.intents()) == 1


def test_the_same_key_with_another_request_is_refused_and_changes_nothing(stack: LocalStack, autopay: Autopay) -> None:
    key = new_key()
    assert autopay.invoke(autopay.payload(20_000, key))["body"]["status"] == "succeeded"
    before = quiet_table(stack)

    answer = autopay.route(autopay.payload(30_000, key))

    assert answer.status_code == 409
    assert answer.json()["code"] == "idempotency_key_reused"
    assert table_snapshot(stack) == before
    assert len(autopay.link.intents()) == 1


# -- refusals --------------------------------------------------------------------------------------


def _other_client_method(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    other = open_link(stack)  # another firm, another client
    return {"method_id": store_card(other).method_id}


def _same_firm_other_client_method(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    ledger = autopay.link.ledger
    from firmpay.models.ledger import Client, new_id

    client = Client(
        client_id=new_id("cli"), firm_id=autopay.link.billed.firm.firm_id, name="Sam Other", email="sam@example.com"
    )
    ledger.create_client(client)
    method = autopay.method.model_copy(update={"method_id": new_id("mth"), "client_id": client.client_id})
    ledger.put_method(method)
    return {"method_id": method.method_id}


def _revoked(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    autopay.link.ledger.set_method_status(autopay.method, "revoked")
    return {}


def _returned(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    autopay.link.ledger.set_method_status(autopay.method, "unusable")
    return {}


def _without_consent(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    # Only a one-time ACH authorization on record: no agreement to future charges.
    return {"method_id": store_card(autopay.link, consent=store_consent("ach-web-v1")).method_id}


def _void(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    autopay.link.ledger.void_payable(autopay.link.payable_id, datetime.now(UTC))
    return {}


def _paid(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    assert autopay.invoke(autopay.payload(TOTAL))["body"]["status"] == "succeeded"
    return {"amount_minor": 5_000}


def _over_balance(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    return {"amount_minor": TOTAL + 1}


def _currency(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    return {"currency": "CAD"}


def _other_firms_payable(stack: LocalStack, autopay: Autopay) -> dict[str, Any]:
    return {"payable_id": open_link(stack).payable_id}


REFUSALS: dict[str, tuple[Callable[[LocalStack, Autopay], dict[str, Any]], int, str]] = {
    "method of another firm's client": (_other_client_method, 404, "not_found"),
    "method of another client of the firm": (_same_firm_other_client_method, 404, "not_found"),
    "revoked method": (_revoked, 422, "method_unusable"),
    "returned (unusable) method": (_returned, 422, "method_unusable"),
    "method stored without consent": (_without_consent, 422, "method_without_consent"),
    "amount over the balance": (_over_balance, 422, "amount_over_balance"),
    "currency mismatch": (_currency, 422, "currency_mismatch"),
    "void payable": (_void, 409, "payable_closed"),
    "paid payable": (_paid, 409, "payable_closed"),
    "another firm's payable": (_other_firms_payable, 404, "not_found"),
}


@pytest.mark.parametrize("via", ["route", "invoke"])
@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_charge_changes_nothing(stack: LocalStack, autopay: Autopay, case: str, via: str) -> None:
    arrange, status, code = REFUSALS[case]
    changes = arrange(stack, autopay)
    intents_before = len(autopay.link.intents())
    before = quiet_table(stack)

    payload = autopay.payload(10_000, **changes)
    if via == "route":
        answer = autopay.route(payload)
        got_status, body = answer.status_code, answer.json()
    else:
        result = autopay.invoke(payload)
        got_status, body = result["statusCode"], result["body"]

    assert (got_status, body["code"]) == (status, code), body
    assert body["message"]
    assert table_snapshot(stack) == before
    assert len(autopay.link.intents()) == intents_before
    autopay.link.invariant()


@pytest.mark.parametrize(("access_key", "status", "code"), [(OTHER_KEY, 403, "forbidden"), (CA_KEY, 403, "forbidden")])
def test_a_caller_who_is_not_a_principal_of_the_firm_is_refused(
    stack: LocalStack, autopay: Autopay, access_key: str, status: int, code: str
) -> None:
    before = quiet_table(stack)

    answer = autopay.route(autopay.payload(10_000), access_key)

    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert table_snapshot(stack) == before
    assert autopay.link.intents() == []


def test_a_stored_card_id_cannot_be_computed_from_what_the_pay_page_answered(stack: LocalStack) -> None:
    # Given a client who paid on the pay page and stored the card
    link = open_link(stack)
    answer = link.pay(CARD_OK, amount=10_000, store=True)
    [method] = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)

    # When anyone who saw the page's answer hashes what it showed, as the id used to be derived
    shown = [str(value) for value in answer.values() if isinstance(value, str)]
    guesses = {"mth_" + hashlib.sha256(value.encode()).hexdigest()[:24] for value in shown}

    # Then none of the guesses is the stored card's id (it is random, written ahead at submit)
    assert answer["payment_id"] in shown
    assert method.method_id not in guesses
    payment = link.ledger.get_payment(link.payable_id, answer["payment_id"])
    assert payment is not None
    assert payment.stored_method_id == method.method_id


def test_firm_a_charging_firm_b_stored_card_through_the_route_is_refused_and_charges_nothing(
    stack: LocalStack,
) -> None:
    # Given firm B (US) whose client stored a card on the pay page
    link = open_link(stack)
    link.pay(CARD_OK, amount=10_000, store=True)
    [method] = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)
    autopay = Autopay(stack, link, method)
    intents_before = len(link.intents())
    before = quiet_table(stack)

    # When firm A's principal (the Canadian firm's key) charges it, naming firm B
    answer = autopay.route(autopay.payload(10_000), CA_KEY)

    # Then 403, no PaymentIntent made, the ledger unchanged and the invariant holds
    assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
    assert len(link.intents()) == intents_before
    assert table_snapshot(stack) == before
    link.invariant()


BAD_PAYLOADS = {
    "fractional amount": {"amount_minor": 100.5},
    "amount as text": {"amount_minor": "1000"},
    "zero amount": {"amount_minor": 0},
    "negative amount": {"amount_minor": -100},
    "unknown currency": {"currency": "EUR"},
    "missing key": {"idempotency_key": None},
    "key with spaces": {"idempotency_key": "inv 42"},
    "unknown field": {"tip_minor": 100},
    "malformed firm id": {"firm_id": "../firm"},
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
def test_bad_input_is_a_clear_422_and_changes_nothing(stack: LocalStack, autopay: Autopay, case: str) -> None:
    payload = {k: v for k, v in {**autopay.payload(10_000), **BAD_PAYLOADS[case]}.items() if v is not None}
    before = quiet_table(stack)

    routed = autopay.route(payload)
    invoked = autopay.invoke(payload)

    assert routed.status_code == 422, routed.text
    assert routed.json()["code"] == "invalid_request"
    assert (invoked["statusCode"], invoked["body"]["code"]) == (422, "invalid_request")
    assert invoked["body"]["details"]["fields"]
    assert table_snapshot(stack) == before
    assert autopay.link.intents() == []


@pytest.mark.parametrize("payload", [None, [], "charge", 42, {}], ids=["null", "list", "text", "number", "empty"])
def test_a_direct_invoke_that_is_not_an_object_of_the_right_shape_is_refused(autopay: Autopay, payload: Any) -> None:
    answer = autopay.invoke(payload)

    assert (answer["statusCode"], answer["body"]["code"]) == (422, "invalid_request")


def test_malformed_json_on_the_route_is_a_400(stack: LocalStack) -> None:
    answer = FirmClient(stack.urls["gateway"]).call("POST", "/firm/autopay", raw="{not json")

    assert (answer.status_code, answer.json()["code"]) == (400, "malformed_json")


# -- concurrency -----------------------------------------------------------------------------------


def test_fifty_concurrent_charges_of_different_payables_each_charge_once(stack: LocalStack) -> None:
    # Given 50 bills of 500.00, each client with a stored card
    jobs = [autopay_for(stack, amounts=(50_000,)) for _ in range(50)]  # each its own firm, client and card

    # When the firms charge 200.00 to each, all at once (half by the route, half by direct invoke),
    # retrying with the same key when the loaded stack answers 503 (the documented contract)
    def charge(index: int) -> str:
        job = jobs[index]
        payload = job.payload(20_000)
        start.wait()
        for attempt in range(10):
            if index % 2:
                try:
                    answer = job.route(payload)
                except requests.Timeout:  # no answer in 30 s: a firm's backend retries with the same key
                    continue
                status, body = answer.status_code, answer.json()
            else:
                result = job.invoke(payload)
                status, body = result["statusCode"], result["body"]
            if status != 503:
                return str(body["status"])
            time.sleep(1 + attempt)  # as Retry-After says; the same key never charges twice
        return "still unavailable"

    # All 50 start together; the whole local stack is one process on two cores, so the slowest
    # answer 503 (their DynamoDB or Stripe call timed out) and are retried, as a firm's backend does.
    start = threading.Barrier(50)
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(charge, range(50)))

    # Then every call got the payment (settled, or still settling when the stack was too loaded to
    # hear Stripe's answer in time: the webhook settles those), each payable was charged exactly
    # once and its ledger is right
    assert set(statuses) <= {"succeeded", "pending"}, statuses
    quiet_table(stack)
    intents = intents_by_payable(stack)
    for job in jobs:
        assert len(charged(intents[job.link.payable_id])) == 1
        payable = job.link.invariant()
        assert (payable.paid_minor, payable.balance_minor) == (20_000, 30_000)


def test_ten_concurrent_calls_with_one_key_charge_once(autopay: Autopay) -> None:
    payload = autopay.payload(60_000)

    def charge(index: int) -> dict[str, Any]:
        if index % 2:
            answer = autopay.route(payload)
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]
        result = autopay.invoke(payload)
        assert result["statusCode"] == 200, result
        return result["body"]  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(charge, range(10)))

    assert len({a["payment_id"] for a in answers}) == 1
    assert [a["replayed"] for a in answers].count(False) == 1
    intents = autopay.link.intents()
    assert len(intents) == 1
    assert len(charged(intents)) == 1
    payable = autopay.link.invariant()
    assert (payable.paid_minor, payable.balance_minor) == (60_000, TOTAL - 60_000)


def test_a_bank_account_stored_on_the_pay_page_is_debited_under_its_mandate(stack: LocalStack) -> None:
    # Given a client who paid 100.00 by eCheck and ticked "store this payment method"
    link = open_echeck_link(stack)
    first = link.pay_echeck(amount=10_000, store=True)
    assert first["status"] == "processing"
    [method] = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)
    assert method.summary.type == "echeck"
    assert method.mandate_id is not None
    autopay = Autopay(stack, link, method)

    # When the firm debits 250.00 through POST /firm/autopay
    answer = autopay.route(autopay.payload(25_000, currency="USD"))

    # Then the debit is processing under the stored mandate, its amount reserved
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "processing"
    assert body["origin"] == "autopay"
    payable = link.invariant()
    assert (payable.pending_minor, payable.balance_minor) == (35_000, TOTAL - 35_000)
    intent = link.stripe.v1.payment_intents.retrieve(
        link.intent_of(body["payment_id"]), params={"expand": ["latest_charge"]}
    ).to_dict()
    assert intent["status"] == "processing"
    assert intent["latest_charge"]["payment_method_details"]["us_bank_account"]["mandate"] == method.mandate_id

    # And when the bank settles both debits, the bill is paid by 350.00
    for payment_id in (first["payment_id"], body["payment_id"]):
        assert stripe_test_control(stack, link.intent_of(payment_id), "settle").status_code == 200
        link.wait_for_status(payment_id, "succeeded", timeout=15)
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor) == (35_000, 0)
