"""A client removes a stored payment method from the link in their confirmation email.

Real flow on the local stack: the pay page stores the method, the stream poller sends the email
(moto SES + outbox), the client opens the link (card_payment's HTML routes through the gateway),
and the removal shows in the ledger, at the Stripe emulator, in the firm API and in autopay.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from firmpay.ledger import keys
from firmpay.models.ledger import StoredMethod
from firmpay.payments.links import hash_token
from firmpay.payments.method_removal import issue_removal_link
from local.stack import LOGS, LocalStack
from tests.integration.conftest import FirmClient, table_snapshot
from tests.integration.test_confirmation_email import CLIENT_EMAIL, emails_about, to
from tests.support.autopay_stack import Autopay
from tests.support.card_stack import CARD_OK, StackLink, open_link, quiet_table
from tests.support.echeck_stack import open_echeck_link
from tests.support.log_scan import LogCollector

FIRM = "Hartley &amp; Vance LLP"  # as the HTML page shows it
VISA = "Visa \u2022\u2022\u2022\u20224242"


@pytest.fixture(autouse=True)
def _stream_quiet(stack: LocalStack) -> Any:
    stack.poller.drain()
    yield
    stack.poller.resume()


def removal_links(mail: dict[str, Any]) -> set[str]:
    return {u for u in mail["links"] if "/methods/remove/" in u}


def client_mail(stack: LocalStack, link: StackLink) -> dict[str, Any]:
    stack.poller.drain()
    (mail,) = to(emails_about(stack, link.billed.payable.number), CLIENT_EMAIL)
    return mail


def removal_url(stack: LocalStack, mail: dict[str, Any]) -> str:
    """The mailed link, on the local gateway (the token is its last part)."""
    (url,) = removal_links(mail)
    return f"{stack.urls['gateway']}/methods/remove/{url.rsplit('/', 1)[1]}"


def stored_card(link: StackLink, payment_id: str) -> StoredMethod:
    billed = link.billed
    payment = link.ledger.get_payment(link.payable_id, payment_id)
    assert payment is not None
    assert payment.stored_method_id is not None
    method = link.ledger.get_method(billed.firm.firm_id, billed.client.client_id, payment.stored_method_id)
    assert method is not None
    return method


def test_a_card_stored_on_the_pay_page_is_removed_from_the_link_in_the_confirmation_email(stack: LocalStack) -> None:
    # Given a client who paid $100.00 of a bill by card and stored the card
    link = open_link(stack)
    paid = link.pay(CARD_OK, amount=10_000, store=True)
    method = stored_card(link, paid["payment_id"])
    assert method.status == "active"

    # When the confirmation email is delivered
    mail = client_mail(stack, link)

    # Then it says which card was stored and links to its removal, in both parts
    sentence = f"You stored {VISA} for future payments to Hartley & Vance LLP."
    assert sentence in mail["text"]
    assert sentence.replace("&", "&amp;") in mail["html"]
    assert ">Remove it</a>" in mail["html"]
    url = removal_url(stack, mail)

    # When the client opens the link
    page = requests.get(url, timeout=10)

    # Then the page asks to confirm, naming the card and the firm, with a form that posts back
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert f"Remove {VISA} stored with {FIRM}?" in page.text
    assert '<form class="stack" method="post">' in page.text
    assert "Remove this payment method" in page.text
    assert "<script" not in page.text
    assert "no-store" in page.headers["Cache-Control"]
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    assert stored_card(link, paid["payment_id"]).status == "active"  # looking removes nothing

    # When the client presses "Remove this payment method"
    removed = requests.post(url, timeout=30)

    # Then the card is revoked in the ledger and detached from the customer at Stripe
    assert removed.status_code == 200
    assert f"Removed. {FIRM} can no longer charge it." in removed.text
    assert stored_card(link, paid["payment_id"]).status == "revoked"
    assert link.stripe.v1.payment_methods.retrieve(method.processor_method_id).customer is None

    # and the firm sees it revoked, and cannot charge it by autopay
    billed = link.billed
    listed = FirmClient(stack.urls["gateway"]).call(
        "GET", f"/firm/firms/{billed.firm.firm_id}/clients/{billed.client.client_id}/methods"
    )
    assert [(m["method_id"], m["status"]) for m in listed.json()["methods"]] == [(method.method_id, "revoked")]
    intents_before = len(link.intents())
    refused = Autopay(stack, link, method).route(Autopay(stack, link, method).payload(5_000))
    assert (refused.status_code, refused.json()["code"]) == (422, "method_unusable")
    assert len(link.intents()) == intents_before
    link.invariant()


def test_removing_twice_is_harmless_and_says_it_is_already_removed(stack: LocalStack) -> None:
    # Given a card removed through its email link
    link = open_link(stack)
    paid = link.pay(CARD_OK, amount=10_000, store=True)
    url = removal_url(stack, client_mail(stack, link))
    assert requests.post(url, timeout=30).status_code == 200
    revoked = stored_card(link, paid["payment_id"])

    # When the client posts again, and opens the link once more
    again = requests.post(url, timeout=30)
    page = requests.get(url, timeout=10)

    # Then both say it is already removed, offer no button, and the method stays revoked
    for answer in (again, page):
        assert answer.status_code == 200
        assert f"{VISA} is already removed. {FIRM} can no longer charge it." in answer.text
        assert "<form" not in answer.text
    assert stored_card(link, paid["payment_id"]) == revoked


def test_a_method_the_firm_revoked_shows_as_already_removed(stack: LocalStack) -> None:
    link = open_link(stack)
    paid = link.pay(CARD_OK, amount=10_000, store=True)
    url = removal_url(stack, client_mail(stack, link))
    method = stored_card(link, paid["payment_id"])
    billed = link.billed
    path = f"/firm/firms/{billed.firm.firm_id}/clients/{billed.client.client_id}/methods/{method.method_id}"
    assert FirmClient(stack.urls["gateway"]).call("DELETE", path).status_code == 204

    page = requests.get(url, timeout=10)

    assert page.status_code == 200
    assert f"{VISA} is already removed." in page.text
    assert "<form" not in page.text


def test_a_payment_that_did_not_store_its_card_sends_no_removal_link(stack: LocalStack) -> None:
    link = open_link(stack)
    link.pay(CARD_OK, amount=10_000, store=False)

    mail = client_mail(stack, link)

    assert removal_links(mail) == set()
    assert "You stored" not in mail["text"]
    assert "Remove it" not in mail["html"]
    billed = link.billed
    assert link.ledger.list_methods(billed.firm.firm_id, billed.client.client_id) == []


def test_unknown_malformed_and_expired_removal_links_get_the_same_404_page_and_change_nothing(
    stack: LocalStack,
) -> None:
    # Given a stored card and a removal link for it that expired yesterday
    link = open_link(stack)
    paid = link.pay(CARD_OK, amount=10_000, store=True)
    client_mail(stack, link)
    method = stored_card(link, paid["payment_id"])
    long_ago = datetime.now(UTC) - timedelta(days=401)
    expired = issue_removal_link(link.ledger, method, paid["payment_id"], stack.urls["gateway"], long_ago)
    gateway = stack.urls["gateway"]
    tokens = {
        "unknown": secrets.token_urlsafe(32),
        "malformed": "not-a-token",
        "expired": expired.url.rsplit("/", 1)[1],
    }
    before = quiet_table(stack)

    # When each is opened and posted
    answers = {
        (name, verb): requests.request(verb, f"{gateway}/methods/remove/{token}", timeout=30)
        for name, token in tokens.items()
        for verb in ("GET", "POST")
    }

    # Then each gets the same 404 page, which tells nothing about the method or the firm
    bodies = {answer.text for answer in answers.values()}
    assert {answer.status_code for answer in answers.values()} == {404}
    assert len(bodies) == 1
    (body,) = bodies
    assert "Link not found" in body
    assert "Hartley" not in body
    assert "4242" not in body
    # and nothing changed: the card is still stored and attached
    assert table_snapshot(stack) == before
    assert stored_card(link, paid["payment_id"]).status == "active"
    assert link.stripe.v1.payment_methods.retrieve(method.processor_method_id).customer is not None


def test_a_bank_account_stored_with_an_echeck_is_removed_from_the_submitted_email(stack: LocalStack) -> None:
    # Given a client who paid by eCheck and stored the bank account
    link = open_echeck_link(stack)
    paid = link.pay_echeck(amount=20_000, store=True)
    payment = link.ledger.get_payment(link.payable_id, paid["payment_id"])
    assert payment is not None
    assert payment.stored_method_id is not None
    billed = link.billed
    method = link.ledger.get_method(billed.firm.firm_id, billed.client.client_id, payment.stored_method_id)
    assert method is not None

    # When the "payment submitted" email is delivered
    mail = client_mail(stack, link)

    # Then it offers to remove the bank account, and the link removes it
    assert mail["subject"].startswith("Payment submitted")
    label = method.summary.label()
    assert f"You stored {label} for future payments to Hartley & Vance LLP." in mail["text"]
    url = removal_url(stack, mail)
    page = requests.get(url, timeout=10)
    assert f"Remove {label} stored with {FIRM}?" in page.text
    removed = requests.post(url, timeout=30)
    assert removed.status_code == 200
    assert f"Removed. {FIRM} can no longer charge it." in removed.text
    after = link.ledger.get_method(billed.firm.firm_id, billed.client.client_id, method.method_id)
    assert after is not None
    assert after.status == "revoked"
    sources = link.stripe.v1.customers.payment_sources.list(method.processor_customer_id)
    assert method.processor_method_id not in [s.id for s in sources.data]


def test_the_removal_token_never_reaches_the_logs(stack: LocalStack) -> None:
    with LogCollector() as logs:
        link = open_link(stack)
        link.pay(CARD_OK, amount=10_000, store=True)
        url = removal_url(stack, client_mail(stack, link))
        assert requests.get(url, timeout=10).status_code == 200
        assert requests.post(url, timeout=30).status_code == 200
        logs.add_file(LOGS / f"{stack.run_id}-gateway.log")

    token = url.rsplit("/", 1)[1]
    assert "GET /methods/remove/<token> 200" in logs.text
    assert token not in logs.text


def test_the_removal_link_is_stored_only_as_a_hash_and_expires_in_400_days(stack: LocalStack) -> None:
    link = open_link(stack)
    paid = link.pay(CARD_OK, amount=10_000, store=True)
    token = removal_url(stack, client_mail(stack, link)).rsplit("/", 1)[1]

    snapshot = str(table_snapshot(stack))
    item = link.ledger.get_removal_link(hash_token(token))

    assert token not in snapshot
    assert item is not None
    assert item.method_id == stored_card(link, paid["payment_id"]).method_id
    assert item.payment_id == paid["payment_id"]
    assert timedelta(days=399) < item.expires_at - datetime.now(UTC) <= timedelta(days=400)
    raw = stack.client("dynamodb").get_item(
        TableName=stack.env["LEDGER_TABLE"], Key=keys.method_removal(item.token_hash)
    )
    assert "N" in raw["Item"]["expires_at"]  # a number: DynamoDB's TTL deletes it
