"""Stored methods in the firm API: list a client's methods, revoke one (detached at Stripe)."""

from __future__ import annotations

from local.stack import LocalStack
from tests.integration.conftest import OTHER_KEY, FirmClient, table_snapshot
from tests.support.autopay_stack import Autopay, autopay_for, store_card
from tests.support.card_stack import CARD_OK, open_link, quiet_table


def methods_path(autopay: Autopay, client_id: str | None = None) -> str:
    billed = autopay.link.billed
    return f"/firm/firms/{billed.firm.firm_id}/clients/{client_id or billed.client.client_id}/methods"


def test_a_card_stored_on_the_pay_page_is_listed_without_processor_ids(stack: LocalStack) -> None:
    # Given a client who stored a card while paying
    link = open_link(stack)
    paid = link.pay(CARD_OK, amount=10_000, store=True)
    billed = link.billed

    # When the firm lists the client's methods
    answer = FirmClient(stack.urls["gateway"]).call(
        "GET", f"/firm/firms/{billed.firm.firm_id}/clients/{billed.client.client_id}/methods"
    )

    # Then it sees the card, when and from which payment it was stored, and no Stripe id
    assert answer.status_code == 200, answer.text
    [method] = answer.json()["methods"]
    assert method["type"] == "card"
    assert (method["brand"], method["last4"], method["exp_month"], method["exp_year"]) == ("visa", "4242", 12, 2034)
    assert method["label"] == "Visa \u2022\u2022\u2022\u20224242"
    assert method["status"] == "active"
    assert method["stored_from_payment_id"] == paid["payment_id"]
    assert method["stored_at"]
    assert "pm_" not in answer.text
    assert "cus_" not in answer.text


def test_a_revoked_method_is_detached_at_stripe_and_never_charged_again(stack: LocalStack) -> None:
    autopay = autopay_for(stack)
    path = f"{methods_path(autopay)}/{autopay.method.method_id}"

    answer = FirmClient(stack.urls["gateway"]).call("DELETE", path)

    assert answer.status_code == 204, answer.text
    listed = FirmClient(stack.urls["gateway"]).call("GET", methods_path(autopay)).json()["methods"]
    assert [m["status"] for m in listed] == ["revoked"]
    at_stripe = autopay.link.stripe.v1.payment_methods.retrieve(autopay.method.processor_method_id)
    assert at_stripe.customer is None
    refused = autopay.route(autopay.payload(10_000))
    assert (refused.status_code, refused.json()["code"]) == (422, "method_unusable")
    assert autopay.link.intents() == []
    # and revoking again is harmless
    assert FirmClient(stack.urls["gateway"]).call("DELETE", path).status_code == 204


def test_methods_of_another_firms_client_are_not_found_and_nothing_changes(stack: LocalStack) -> None:
    autopay = autopay_for(stack)
    other = open_link(stack)
    other_method = store_card(other)
    client = FirmClient(stack.urls["gateway"])
    before = quiet_table(stack)

    listed = client.call("GET", methods_path(autopay, other.billed.client.client_id))
    revoked = client.call("DELETE", f"{methods_path(autopay)}/{other_method.method_id}")
    unknown = client.call("DELETE", f"{methods_path(autopay)}/mth_unknown")

    assert (listed.status_code, listed.json()["code"]) == (404, "not_found")
    assert (revoked.status_code, revoked.json()["code"]) == (404, "not_found")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert table_snapshot(stack) == before


def test_a_caller_who_is_not_a_principal_cannot_list_or_revoke(stack: LocalStack) -> None:
    autopay = autopay_for(stack)
    client = FirmClient(stack.urls["gateway"], OTHER_KEY)
    before = quiet_table(stack)

    listed = client.call("GET", methods_path(autopay))
    revoked = client.call("DELETE", f"{methods_path(autopay)}/{autopay.method.method_id}")

    assert (listed.status_code, revoked.status_code) == (403, 403)
    assert table_snapshot(stack) == before
