"""eCheck payments through the local stack over HTTP: Plaid Link (the emulator, driven as the Link
page drives it), the plaid_link and echeck_payment handlers, Stripe ACH debits at the Stripe emulator,
and the signed webhooks that settle or return them. The ledger invariant is checked after each step."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from plaid.api.plaid_api import PlaidApi
from plaid.api_client import ApiClient
from plaid.configuration import Configuration
from plaid.exceptions import ApiException
from plaid.model.accounts_get_request import AccountsGetRequest

from firmpay.gateways.kms import KmsVault
from firmpay.models.ledger import PaymentStatus
from firmpay.payments.checkout import STORE_METHOD_TEXT, sha256_hex
from local.stack import PLAID_CREDENTIALS, LocalStack
from tests.integration.conftest import CA_KEY, OTHER_KEY, US_KEY, FirmClient, table_snapshot
from tests.support.card_stack import BILLING, forget_failed_attempts, open_link, quiet_table
from tests.support.echeck_stack import HOUNDSTOOTH, EcheckLink, open_echeck_link, stripe_test_control

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_attempts(stack: LocalStack) -> Any:
    yield
    forget_failed_attempts(stack)


def expect(answer: requests.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["code"] == code


def plaid_api(stack: LocalStack) -> PlaidApi:
    config = Configuration(
        host=stack.urls["plaid"],
        api_key={"clientId": PLAID_CREDENTIALS["client_id"], "secret": PLAID_CREDENTIALS["secret"]},
    )
    return PlaidApi(ApiClient(config))


def access_token_works(stack: LocalStack, access_token: str) -> bool:
    try:
        plaid_api(stack).accounts_get(AccountsGetRequest(access_token=access_token))
    except ApiException as error:
        if "INVALID_ACCESS_TOKEN" not in str(error.body):
            raise
        return False
    return True


def connection_access_token(link: EcheckLink, connection_id: str) -> str:
    connection = link.ledger.get_bank_connection(link.payable_id, connection_id)
    assert connection is not None
    assert not connection.encrypted_access_token.startswith("access-")  # never at rest in the clear
    context = {"firm_id": connection.firm_id, "client_id": connection.client_id, "purpose": "plaid-access-token"}
    return KmsVault().decrypt(connection.encrypted_access_token, context)


def submitted(link: EcheckLink, store: bool = False, amount: int | None = None) -> tuple[dict[str, Any], str]:
    """Connect, review and submit; returns the result and the (decrypted) Plaid access token."""
    connection = link.connect()
    token = connection_access_token(link, connection["connection_id"])
    review = link.review_echeck(connection["connection_id"], amount)
    assert review.status_code == 200, review.text
    result = link.submit_echeck(review.json()["review_id"], store=store)
    assert result.status_code == 200, result.text
    return result.json(), token


def test_a_us_client_pays_by_echeck_and_the_debit_settles(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    connection = link.connect()
    assert connection["label"] == "First Platypus Bank \u2022\u2022\u2022\u20220000"
    assert (connection["bank_name"], connection["last4"], connection["account_subtype"]) == (
        "First Platypus Bank",
        "0000",
        "checking",
    )
    access_token = connection_access_token(link, connection["connection_id"])

    review = link.review_echeck(connection["connection_id"]).json()
    assert review["amount"]["formatted"].startswith("$1,500.50")
    assert review["method_label"] == "First Platypus Bank \u2022\u2022\u2022\u20220000"
    text = review["authorization_text"]
    assert "Hartley & Vance LLP" in text
    assert "$1,500.50" in text
    assert link.billed.payable.number in text
    assert "revoke" in text
    assert review["authorization_version"] == "ach-web-v1"

    result = link.submit_echeck(review["review_id"]).json()
    assert result["status"] == "processing"
    assert "few business days" in result["message"]
    assert result["reference"].startswith("FP-")
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (0, 150_050, 0)
    payment = link.ledger.get_payment(link.payable_id, result["payment_id"])
    assert payment is not None
    assert payment.status is PaymentStatus.PROCESSING
    assert payment.mandate is not None
    assert payment.mandate.user_agent == "echeck-tests/1.0"
    assert payment.mandate.account_last4 == "0000"
    assert payment.mandate.amount_minor == 150_050
    intent = link.stripe.v1.payment_intents.retrieve(payment.processor_intent_id or "")
    assert intent.status == "processing"
    assert intent.payment_method_types == ["us_bank_account"]
    # Not stored: the bank connection is gone and the Plaid item removed.
    assert link.ledger.get_bank_connection(link.payable_id, connection["connection_id"]) is None
    assert not access_token_works(stack, access_token)
    assert link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id) == []

    assert stripe_test_control(stack, intent.id, "settle").status_code == 200
    settled = link.wait_for_status(result["payment_id"], "succeeded")
    assert settled.fee_minor == 500  # ACH: 0.8% capped at $5.00
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (150_050, 0, 0)


@pytest.mark.parametrize(("code", "gone"), [("R01", False), ("R02", True), ("R10", True)])
def test_a_returned_debit_releases_the_balance_and_records_the_code(stack: LocalStack, code: str, gone: bool) -> None:
    link = open_echeck_link(stack)
    result, _ = submitted(link, store=True, amount=50_000)
    payment = link.ledger.get_payment(link.payable_id, result["payment_id"])
    assert payment is not None
    assert payment.stored_method_id is not None

    assert stripe_test_control(stack, link.intent_of(result["payment_id"]), "return", code).status_code == 200
    failed = link.wait_for_status(result["payment_id"], "failed")
    assert failed.return_code == code
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (0, 0, 150_050)
    expected = "unusable" if gone else "active"
    deadline = time.monotonic() + 10  # the webhook retires the method right after releasing the payment
    while True:
        method = link.ledger.get_method(failed.firm_id, failed.client_id, payment.stored_method_id)
        assert method is not None
        if method.status == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert method.status == expected


def test_a_stored_bank_method_keeps_its_plaid_token_encrypted(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    result, access_token = submitted(link, store=True)
    methods = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)
    assert len(methods) == 1
    method = methods[0]
    assert method.summary.type == "echeck"
    assert method.summary.last4 == "0000"
    assert method.created_from_payment_id == result["payment_id"]
    assert method.consent.text_version == "store-method-v1"
    shown = STORE_METHOD_TEXT.format(firm=link.billed.firm.name)  # the words on the page, with the firm's name
    assert method.consent.text_sha256 == sha256_hex(shown)
    assert method.mandate_id is not None
    assert method.mandate_id.startswith("mandate_")  # later debits run under it, off-session
    assert method.encrypted_access_token
    assert "access-" not in method.encrypted_access_token
    context = {"firm_id": method.firm_id, "client_id": method.client_id, "purpose": "plaid-access-token"}
    assert KmsVault().decrypt(method.encrypted_access_token, context) == access_token
    assert access_token_works(stack, access_token)  # kept at Plaid for later debits
    link.invariant()


def test_revoking_a_stored_bank_method_removes_its_plaid_item(stack: LocalStack) -> None:
    # Given a bank account the client stored on the pay page (its Plaid item kept for later debits)
    link = open_echeck_link(stack)
    _, access_token = submitted(link, store=True)
    [method] = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)
    assert access_token_works(stack, access_token)

    # When the firm revokes it
    path = f"/firm/firms/{method.firm_id}/clients/{method.client_id}/methods/{method.method_id}"
    answer = FirmClient(stack.urls["gateway"], US_KEY).call("DELETE", path)

    # Then it is revoked and its Plaid item is gone (Plaid refuses the access token)
    assert answer.status_code == 204, answer.text
    revoked = link.ledger.get_method(method.firm_id, method.client_id, method.method_id)
    assert revoked is not None
    assert revoked.status == "revoked"
    assert not access_token_works(stack, access_token)
    # and revoking again is harmless
    assert FirmClient(stack.urls["gateway"], US_KEY).call("DELETE", path).status_code == 204
    link.invariant()


def test_canadian_firms_are_refused_and_nothing_changes(stack: LocalStack) -> None:
    link = open_echeck_link(stack, country="CA")
    before = quiet_table(stack)
    expect(link.post_echeck("link-token", {"holder_name": "Jordan Client"}), 422, "echeck_not_offered")
    exchange = {"public_token": "public-sandbox-12345678", "account_id": "acc12345678", "holder_name": "J C"}
    expect(link.post_echeck("exchange", exchange), 422, "echeck_not_offered")
    expect(link.review_echeck("bank_doesnotexist00"), 422, "echeck_not_offered")
    assert table_snapshot(stack) == before
    options = requests.get(f"{stack.urls['gateway']}/api/pay/{link.token}", timeout=10).json()
    assert "echeck" not in str(options.get("payment_options", options)).lower()


def test_submit_without_the_authorization_is_refused_with_nothing_reserved(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    connection = link.connect()
    review = link.review_echeck(connection["connection_id"]).json()
    before = quiet_table(stack)

    expect(link.submit_echeck(review["review_id"], authorize=False), 422, "mandate_required")
    expect(link.post_echeck("submit", {"review_id": review["review_id"]}), 422, "mandate_required")

    assert table_snapshot(stack) == before
    payable = link.invariant()
    assert (payable.pending_minor, payable.balance_minor) == (0, 150_050)
    # Checking the box then works.
    assert link.submit_echeck(review["review_id"]).json()["status"] == "processing"
    link.invariant()


def test_invalid_replayed_and_foreign_public_tokens_are_refused(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    bank = link.link_bank()
    before = quiet_table(stack)
    unknown = {"public_token": "public-sandbox-00000000-0000", "account_id": bank.account_id, "holder_name": "J C"}
    expect(link.post_echeck("exchange", unknown), 422, "invalid_request")
    assert table_snapshot(stack) == before

    # An account that is not in the item (Link's other account, not chosen) is refused and the item removed.
    other = next(a["id"] for a in bank.accounts if a["id"] != bank.account_id)
    expect(link.exchange(bank, account_id=other), 422, "bank_account_not_supported")
    # The public token was used by that exchange: replaying it is refused.
    expect(link.exchange(bank), 422, "invalid_request")
    assert table_snapshot(stack) == before
    link.invariant()


def test_the_recaptcha_bank_and_a_savings_account_work(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    answer = link.exchange(link.link_bank(HOUNDSTOOTH, mask="1111"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["label"] == "Houndstooth Bank \u2022\u2022\u2022\u20221111"
    assert answer.json()["account_subtype"] == "savings"


def test_risk_limits_per_payment_and_per_day(stack: LocalStack) -> None:
    big = open_echeck_link(stack, amounts=(3_000_000,))
    connection = big.connect()
    limited = big.review_echeck(connection["connection_id"])
    expect(limited, 422, "echeck_limit_exceeded")
    assert "pay by card" in limited.json()["message"]
    assert big.review_echeck(connection["connection_id"], 2_500_000).status_code == 200

    link = open_echeck_link(stack, firm_settings={"echeck_daily_limit": 1})
    link.pay_echeck(amount=10_000)
    connection = link.connect()
    review = link.review_echeck(connection["connection_id"], 10_000).json()
    before = quiet_table(stack)
    expect(link.submit_echeck(review["review_id"]), 422, "echeck_limit_exceeded")
    assert table_snapshot(stack) == before
    payable = link.invariant()
    assert (payable.pending_minor, payable.balance_minor) == (10_000, 140_050)


def test_a_processing_debit_and_a_card_racing_never_overpay(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    connection = link.connect()
    echeck_review = link.review_echeck(connection["connection_id"]).json()
    card = open_link(stack)  # a helper bound to the same payable, for the card routes
    card.billed, card.token = link.billed, link.token
    card_review = card.review().json()

    answers: dict[str, requests.Response] = {}
    start = threading.Barrier(2)

    def pay(kind: str) -> None:
        start.wait()
        if kind == "echeck":
            answers[kind] = link.submit_echeck(echeck_review["review_id"])
        else:
            answers[kind] = card.submit(card_review["review_id"])

    threads = [threading.Thread(target=pay, args=(kind,)) for kind in ("echeck", "card")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(a.status_code for a in answers.values())
    assert statuses == [200, 409], {k: a.text for k, a in answers.items()}
    payable = link.invariant()
    assert payable.balance_minor == 0
    if answers["echeck"].status_code == 200:
        # The debit won: it is processing and holds the whole balance; the card was never charged
        # and a new card review for any amount is refused.
        expect(answers["card"], 409, "payable_closed")
        assert answers["echeck"].json()["status"] == "processing"
        assert (payable.paid_minor, payable.pending_minor) == (0, 150_050)
        assert card.charges() == []
        expect(card.review(amount=5_000), 409, "payable_closed")
    else:
        # The card won: paid in full at once; the debit was never sent to the bank and a new
        # eCheck review is refused.
        expect(answers["echeck"], 409, "payable_closed")
        assert answers["card"].json()["status"] == "succeeded"
        assert (payable.paid_minor, payable.pending_minor) == (150_050, 0)
        assert [pi.amount for pi in link.intents() if pi.status not in ("requires_confirmation", "canceled")] == [
            150_050
        ]
        expect(link.review_echeck(connection["connection_id"], 5_000), 409, "payable_closed")


def test_bad_input_on_every_echeck_route_changes_nothing(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    connection = link.connect()
    review = link.review_echeck(connection["connection_id"], 10_000).json()
    before = quiet_table(stack)

    for route in ("link-token", "exchange", "review", "submit"):
        expect(link.post_echeck(route, "{not json"), 400, "malformed_json")
        expect(link.post_echeck(route, "[]"), 422, "invalid_request")
        expect(link.post_echeck(route, {"surprise": 1}), 422, "invalid_request")
    expect(link.post_echeck("link-token", {"holder_name": ""}), 422, "invalid_request")
    expect(link.post_echeck("link-token", {"holder_name": 5}), 422, "invalid_request")
    good_exchange = {"public_token": "public-sandbox-12345678", "account_id": "acc12345678", "holder_name": "J C"}
    expect(link.post_echeck("exchange", {**good_exchange, "public_token": "x"}), 422, "invalid_request")
    expect(link.post_echeck("exchange", {**good_exchange, "account_id": "bad id!"}), 422, "invalid_request")
    for amount in (100.5, "10000", -1, 0, 10**12):
        body = {"amount_minor": amount, "connection_id": connection["connection_id"]}
        expect(link.post_echeck("review", body), 422, "invalid_request")
    expect(link.review_echeck(connection["connection_id"], 150_051), 422, "amount_over_balance")
    expect(link.review_echeck("bank_doesnotexist00", 10_000), 422, "invalid_request")
    expect(link.submit_echeck("rev_doesnotexist00"), 409, "review_expired")
    expect(
        link.post_echeck("submit", {"review_id": review["review_id"], "authorize_debit": "yes"}), 422, "invalid_request"
    )
    unknown = EcheckLink(stack, link.billed, "x" * 43)
    for route, body in (
        ("link-token", {"holder_name": "J C"}),
        ("review", {"amount_minor": 100, "connection_id": "bank_12345678"}),
    ):
        expect(unknown.post_echeck(route, body), 404, "link_not_found")

    assert table_snapshot(stack) == before
    link.invariant()


def test_the_firm_exports_the_mandate_as_json_and_a_printable_page(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    firm = link.billed.firm
    # The factories' firms belong to the US firm's principal (firm-us).
    result, _ = submitted(link, amount=20_000)
    path = f"/firm/firms/{firm.firm_id}/payables/{link.payable_id}/payments/{result['payment_id']}/mandate"
    us = FirmClient(stack.urls["gateway"], US_KEY)

    answer = us.call("GET", path)
    assert answer.status_code == 200, answer.text
    mandate = answer.json()
    assert mandate["text_intact"] is True
    assert mandate["text_version"] == "ach-web-v1"
    assert (mandate["amount_minor"], mandate["currency"], mandate["account_last4"]) == (20_000, "USD", "0000")
    assert mandate["ip_address"]
    assert mandate["user_agent"] == "echeck-tests/1.0"
    assert mandate["reference"] == result["reference"]
    assert "Hartley & Vance LLP" in mandate["text"]

    page = us.call("GET", path + "/print")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "eCheck debit authorization" in page.text
    assert mandate["text_sha256"] in page.text
    assert "Hartley &amp; Vance LLP" in page.text

    assert FirmClient(stack.urls["gateway"], OTHER_KEY).call("GET", path).status_code == 403
    assert FirmClient(stack.urls["gateway"], CA_KEY).call("GET", path).status_code == 403
    missing = path.replace(result["payment_id"], "pay_000000000000000000000000")
    assert us.call("GET", missing).status_code == 404
    card = open_link(stack)
    card_result = card.pay(amount=10_000)
    card_path = f"/firm/firms/{card.billed.firm.firm_id}/payables/{card.payable_id}/payments/{card_result['payment_id']}/mandate"
    expect(us.call("GET", card_path), 404, "not_found")
    card_payment = card.ledger.get_payment(card.payable_id, card_result["payment_id"])
    assert card_payment is not None
    assert card_payment.billing is not None
    assert card_payment.billing.name == BILLING["name"]  # the card helper's billing details were used
    assert card_payment.mandate is None  # a card payment carries no debit authorization


def test_a_settled_debit_replayed_webhooks_change_nothing(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    result, _ = submitted(link)
    intent_id = link.intent_of(result["payment_id"])
    assert stripe_test_control(stack, intent_id, "settle").status_code == 200
    link.wait_for_status(result["payment_id"], "succeeded")
    # Settling or returning again is refused by the emulator, as Stripe would never send it.
    assert stripe_test_control(stack, intent_id, "return", "R01").status_code == 400
    time.sleep(0.5)
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (150_050, 0, 0)


def test_twenty_submits_of_one_review_debit_once(stack: LocalStack) -> None:
    link = open_echeck_link(stack)
    connection = link.connect()
    review_id = link.review_echeck(connection["connection_id"]).json()["review_id"]
    answers: list[requests.Response] = []
    start = threading.Barrier(20)

    def submit() -> None:
        start.wait()
        answers.append(link.submit_echeck(review_id))

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {a.status_code for a in answers} <= {200, 503}, [a.text for a in answers if a.status_code != 200]
    assert any(a.status_code == 200 for a in answers), "no concurrent submit succeeded"
    answers.append(link.submit_echeck(review_id))  # and the client's reload shows the same payment
    assert answers[-1].status_code == 200, answers[-1].text
    assert len({a.json()["payment_id"] for a in answers if a.status_code == 200}) == 1
    intents = [pi for pi in link.intents() if pi.status != "requires_confirmation"]
    assert len(intents) == 1
    payable = link.invariant()
    assert (payable.pending_minor, payable.balance_minor) == (150_050, 0)
    assert len(link.ledger.get_payable_with_payments(link.payable_id)[1]) == 1


def bank_sources(link: EcheckLink, payment_id: str) -> list[str]:
    """The bank account sources of the Stripe customer who made this payment."""
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert payment is not None
    assert payment.processor_customer_id
    found = link.stripe.v1.customers.payment_sources.list(
        payment.processor_customer_id, params={"object": "bank_account"}
    )
    return [str(source.id) for source in found.auto_paging_iter()]


def test_an_unstored_bank_account_is_deleted_at_stripe_and_the_client_can_pay_with_it_again(
    stack: LocalStack,
) -> None:
    # Given a client who paid part of a bill by eCheck without storing the method
    link = open_echeck_link(stack)
    first, _ = submitted(link, amount=50_000)
    assert first["status"] == "processing"

    # Then Stripe no longer keeps that bank account on the client's customer
    assert bank_sources(link, first["payment_id"]) == []

    # When the same client comes back and pays again from the same bank account
    again, _ = submitted(link, amount=50_000)

    # Then the second debit is made too (no bank_account_exists, no 500)
    assert again["status"] == "processing"
    payable = link.invariant()
    assert (payable.pending_minor, payable.balance_minor) == (100_000, 50_050)


def test_a_returning_client_with_a_stored_bank_account_pays_from_it_again(stack: LocalStack) -> None:
    # Given a client who stored their bank account with a first eCheck payment
    link = open_echeck_link(stack)
    first, _ = submitted(link, store=True, amount=50_000)
    (stored,) = bank_sources(link, first["payment_id"])

    # When they link the same bank account again to pay the rest (Stripe: bank_account_exists)
    again, _ = submitted(link, amount=100_050)

    # Then the debit uses the account Stripe already has, which stays (the stored method uses it)
    assert again["status"] == "processing"
    second = link.ledger.get_payment(link.payable_id, again["payment_id"])
    assert second is not None
    assert second.processor_method_id == stored
    assert bank_sources(link, again["payment_id"]) == [stored]
    payable = link.invariant()
    assert (payable.pending_minor, payable.balance_minor) == (150_050, 0)


def test_a_clean_up_failure_after_the_debit_still_tells_the_client_processing(stack: LocalStack) -> None:
    """Given a debit Stripe accepted, when the bank link's clean-up cannot reach DynamoDB (every
    attempt of its Query fails), the client is told "processing", not an error: the money is
    reserved once and the debit goes on."""
    link = open_echeck_link(stack)
    connection = link.connect()
    reviewed = link.review_echeck(connection["connection_id"], 50_000)
    assert reviewed.status_code == 200, reviewed.text

    stack.proxy.inject("dynamodb", "Query", 500, times=4)  # list_methods, each of the SDK's attempts
    try:
        submitted = link.submit_echeck(reviewed.json()["review_id"])
    finally:
        stack.proxy.clear_faults()

    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "processing"
    payment = link.ledger.get_payment(link.payable_id, submitted.json()["payment_id"])
    assert payment is not None
    assert payment.status is PaymentStatus.PROCESSING
    assert link.invariant().pending_minor == 50_000
