"""The pay link as a client's browser meets it: page, JSON, errors that reveal nothing, headers,
the cost in DynamoDB requests, and "Email me a new link"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from firmpay.payments.links import issue_pay_link
from tests.integration.conftest import table_snapshot
from tests.support.factories import create_billed


def issue(stack: Any, days: int = 90, **kwargs: Any) -> tuple[Any, str]:
    billed = create_billed(stack.ledger, **kwargs)
    url, _ = issue_pay_link(stack.ledger, billed.payable, stack.urls["gateway"], datetime.now(UTC), days)
    return billed, url.rsplit("/", 1)[1]


def expire(stack: Any, token: str) -> None:
    """Move a link's expiry into the past, as time would."""
    from firmpay.ledger import keys
    from firmpay.payments.links import hash_token

    stack.client("dynamodb").update_item(
        TableName=stack.env["LEDGER_TABLE"],
        Key=keys.link(hash_token(token)),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"S": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}},
    )


def test_the_page_shows_firm_number_dates_items_and_balance(stack: Any) -> None:
    billed, token = issue(stack, amounts=(120_000, 30_050))
    page = requests.get(f"{stack.urls['gateway']}/pay/{token}", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "Hartley &amp; Vance LLP" in html
    assert f"Bill {billed.payable.number}" in html
    assert "November 2, 2026" in html
    assert "December 2, 2026" in html
    assert "Legal services 1" in html
    assert "$1,500.50\u00a0USD" in html
    assert "Balance due" in html


def test_a_canadian_trust_request_is_in_cad_and_says_it_goes_to_trust(stack: Any) -> None:
    _, token = issue(stack, country="CA", kind="trust_request", amounts=(250_000,))
    view = requests.get(f"{stack.urls['gateway']}/api/pay/{token}", timeout=10).json()
    assert view["firm"]["currency"] == "CAD"
    assert view["payable"]["balance"] == {"amount_minor": 250_000, "currency": "CAD", "formatted": "$2,500.00\u00a0CAD"}
    assert view["payment_options"] == ["card"]
    page = requests.get(f"{stack.urls['gateway']}/pay/{token}", timeout=10).text
    assert "trust account" in page


def test_json_answers_with_the_payable_and_the_options_the_firm_offers(stack: Any) -> None:
    billed, token = issue(stack, amounts=(10_000,))
    view = requests.get(f"{stack.urls['gateway']}/api/pay/{token}", timeout=10).json()
    assert view["payable"]["number"] == billed.payable.number
    assert view["payable"]["status"] == "open"
    assert view["payable"]["paid"]["amount_minor"] == 0
    assert view["payment_options"] == ["card", "echeck"]
    assert view["minimum_amount"]["amount_minor"] == 50


def test_resolving_a_link_costs_at_most_two_dynamodb_requests(stack: Any) -> None:
    _, token = issue(stack)
    requests.get(f"{stack.urls['gateway']}/api/pay/{token}", timeout=10)  # warm the container
    stack.proxy.reset_counts()
    assert requests.get(f"{stack.urls['gateway']}/api/pay/{token}", timeout=10).status_code == 200
    assert stack.proxy.total("dynamodb") <= 2, stack.proxy.counts("dynamodb")


@pytest.mark.parametrize("token", ["abc", "x" * 43, "A" * 200, "..%2F..%2Fetc", "%3Cscript%3E"])
def test_unknown_and_malformed_tokens_are_404_and_reveal_nothing(stack: Any, token: str) -> None:
    before = table_snapshot(stack)
    answer = requests.get(f"{stack.urls['gateway']}/api/pay/{token}", timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {"code": "link_not_found", "message": "This payment link is not valid."}
    page = requests.get(f"{stack.urls['gateway']}/pay/{token}", timeout=10)
    assert page.status_code == 404
    assert "Payment link not found" in page.text
    assert table_snapshot(stack) == before


def test_expired_and_revoked_links_get_the_same_410_without_details(stack: Any) -> None:
    billed, expired_token = issue(stack)
    expire(stack, expired_token)
    other, revoked_token = issue(stack)
    stack.ledger.revoke_current_link(stack.ledger.get_payable(other.payable.payable_id), datetime.now(UTC))
    answers = [requests.get(f"{stack.urls['gateway']}/api/pay/{t}", timeout=10) for t in (expired_token, revoked_token)]
    assert [a.status_code for a in answers] == [410, 410]
    assert (
        answers[0].json()
        == answers[1].json()
        == {"code": "link_expired", "message": "This payment link has expired or was replaced."}
    )
    page = requests.get(f"{stack.urls['gateway']}/pay/{expired_token}", timeout=10)
    assert page.status_code == 410
    assert "Email me a new link" in page.text
    assert billed.firm.name.split()[0] not in page.text
    assert billed.payable.number not in page.text


def test_every_answer_carries_the_security_headers(stack: Any) -> None:
    _, token = issue(stack)
    gateway = stack.urls["gateway"]
    for url in (
        f"{gateway}/pay/{token}",
        f"{gateway}/api/pay/{token}",
        f"{gateway}/pay/nope",
        f"{gateway}/api/pay/nope",
        f"{gateway}/api/openapi.json",
    ):
        headers = requests.get(url, timeout=10).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert stack.urls["stripe"] in csp
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in headers["Cache-Control"]


def test_a_paid_or_void_payable_shows_its_state_and_no_payment_form(stack: Any) -> None:
    billed, token = issue(stack)
    stack.ledger.void_payable(billed.payable.payable_id, datetime.now(UTC))
    page = requests.get(f"{stack.urls['gateway']}/pay/{token}", timeout=10).text
    assert "was cancelled by the firm" in page
    assert 'id="payment-options"' not in page


def test_an_expired_link_can_email_a_fresh_one_once(stack: Any) -> None:
    billed, token = issue(stack)
    expire(stack, token)
    before = len(stack.outbox.list_messages())
    answer = requests.post(f"{stack.urls['gateway']}/api/pay/{token}/new-link", json={}, timeout=10)
    assert answer.status_code == 202
    messages = stack.outbox.list_messages()
    assert len(messages) == before + 1
    message = stack.outbox.read(messages[-1]["id"])
    assert message["to"] == billed.client.email
    assert "Pay online now" in message["html"]
    again = requests.post(f"{stack.urls['gateway']}/api/pay/{token}/new-link", json={}, timeout=10)
    assert again.status_code == 202
    assert again.json() == answer.json()
    assert len(stack.outbox.list_messages()) == before + 1


def test_asking_a_new_link_for_an_unknown_token_sends_nothing_and_says_the_same(stack: Any) -> None:
    before = len(stack.outbox.list_messages())
    answer = requests.post(f"{stack.urls['gateway']}/api/pay/{'Q' * 43}/new-link", json={}, timeout=10)
    assert answer.status_code == 202
    assert answer.json()["code"] == "new_link_requested"
    assert len(stack.outbox.list_messages()) == before


def test_the_api_document_is_served(stack: Any) -> None:
    document = requests.get(f"{stack.urls['gateway']}/api/openapi.json", timeout=10)
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "FirmPay API"
    assert "/api/pay/{token}" in document.json()["paths"]


def test_assets_are_allow_listed(stack: Any) -> None:
    gateway = stack.urls["gateway"]
    css = requests.get(f"{gateway}/assets/pay.css", timeout=10)
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    for name in ("..%2Fpages.py", "pages.py", ".hidden.css"):
        assert requests.get(f"{gateway}/assets/{name}", timeout=10).status_code == 404


def test_an_english_canadian_firms_page_follows_the_browsers_language(stack: Any) -> None:
    # Given a Canadian firm whose own language is English, and a client whose browser asks for French
    _, token = issue(stack, country="CA", amounts=(250_000,))
    url = f"{stack.urls['gateway']}/pay/{token}"

    french = requests.get(url, headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"}, timeout=10).text
    english = requests.get(url, headers={"Accept-Language": "en-CA,en;q=0.9"}, timeout=10).text
    switched = requests.get(f"{url}?lang=en-CA", headers={"Accept-Language": "fr-CA"}, timeout=10).text

    # Then the page is in French for the French browser, with its amounts and dates, and in English otherwise
    assert '<html lang="fr-CA">' in french
    assert "Payer par carte de crédit" in french
    assert "2\u00a0500,00\u00a0$\u00a0CAD" in french
    assert "2 novembre 2026" in french
    assert '<html lang="en-CA">' in english
    assert "Pay by Credit Card" in english
    assert "$2,500.00\u00a0CAD" in english
    assert '<html lang="en-CA">' in switched


def test_the_api_answers_errors_in_the_language_the_page_asks_for(stack: Any) -> None:
    # Given a Canadian firm's bill and a review asked for more than its balance
    _, token = issue(stack, country="CA", language="fr", amounts=(10_000,))
    url = f"{stack.urls['gateway']}/api/pay/{token}/card/review"
    body = {
        "amount_minor": 20_000,
        "payment_method_id": "pm_card_visa",
        "billing": {
            "name": "Camille Gagnon",
            "line1": "12 rue des Érables",
            "city": "Québec",
            "state": "QC",
            "postal_code": "G1R 4P5",
            "country": "CA",
        },
    }

    french = requests.post(url, json=body, headers={"Accept-Language": "fr-CA"}, timeout=10)
    english = requests.post(url, json=body, headers={"Accept-Language": "en-CA"}, timeout=10)
    invalid = requests.post(url, json={"amount_minor": "x"}, headers={"Accept-Language": "fr-CA"}, timeout=10)

    # Then the code is the same, the message is in the page's language
    assert (french.status_code, french.json()["code"]) == (422, "amount_over_balance")
    assert french.json()["message"] == "Le montant dépasse le solde dû."
    assert english.json() == french.json() | {"message": "The amount is more than the balance due."}
    assert (invalid.status_code, invalid.json()["message"]) == (422, "Des champs sont manquants ou invalides.")
