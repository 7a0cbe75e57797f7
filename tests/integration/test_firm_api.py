"""The firm API through the local gateway with SigV4-signed requests, as a firm's backend uses it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.integration.conftest import CA_KEY, OTHER_KEY, FirmClient, table_snapshot

FIRM = {
    "name": "Okafor & Lin LLP",
    "country": "US",
    "currency": "USD",
    "operating_account": {"name": "Operating", "last4": "5521"},
    "trust_account": {"name": "IOLTA Trust", "last4": "8830"},
    "reply_to_email": "billing@okaforlin.example",
}


@pytest.fixture(scope="module")
def firm(firm_client: Any) -> dict[str, Any]:
    api: FirmClient = firm_client()
    created = api.call("POST", "/firm/firms", FIRM)
    assert created.status_code == 201, created.text
    firm = created.json()
    client = api.call(
        "POST", f"/firm/firms/{firm['firm_id']}/clients", {"name": "Ada Park", "email": "ada@example.com"}
    )
    assert client.status_code == 201, client.text
    return {"firm": firm, "client": client.json(), "api": api}


def bill_body(client: str, bill_number: str, **changes: Any) -> dict[str, Any]:
    body = {
        "client_id": client,
        "number": bill_number,
        "issued_on": "2026-11-02",
        "due_on": "2026-12-02",
        "currency": "USD",
        "line_items": [
            {"description": "Drafting", "amount_minor": 120_000},
            {"description": "Filing", "amount_minor": 30_050},
        ],
    }
    body.update(changes)
    return body


def test_a_firm_bills_a_client_and_the_pay_link_shows_the_balance(firm: dict[str, Any], stack: Any) -> None:
    api, firm_id, client_id = firm["api"], firm["firm"]["firm_id"], firm["client"]["client_id"]
    bill = api.call("POST", f"/firm/firms/{firm_id}/bills", bill_body(client_id, "B-100"))
    assert bill.status_code == 201
    assert bill.json()["total"] == {"amount_minor": 150_050, "currency": "USD"}
    assert bill.json()["status"] == "open"
    link = api.call("POST", f"/firm/firms/{firm_id}/payables/{bill.json()['payable_id']}/links", {})
    assert link.status_code == 201
    token = link.json()["url"].rsplit("/", 1)[1]
    view = requests.get(f"{stack.urls['gateway']}/api/pay/{token}", timeout=10).json()
    assert view["payable"]["balance"]["formatted"] == "$1,500.50\u00a0USD"
    assert view["payment_options"] == ["card", "echeck"]
    read = api.call("GET", f"/firm/firms/{firm_id}/payables/{bill.json()['payable_id']}")
    assert read.status_code == 200
    assert read.json()["has_active_link"] is True
    assert read.json()["payments"] == []


def test_a_trust_request_is_a_deposit_of_the_requested_amount(firm: dict[str, Any]) -> None:
    api, firm_id, client_id = firm["api"], firm["firm"]["firm_id"], firm["client"]["client_id"]
    body = {
        "client_id": client_id,
        "number": "TR-7",
        "issued_on": "2026-11-02",
        "due_on": "2026-11-30",
        "currency": "USD",
        "amount_minor": 500_000,
        "memo": "Retainer",
    }
    created = api.call("POST", f"/firm/firms/{firm_id}/trust-requests", body)
    assert created.status_code == 201
    assert created.json()["kind"] == "trust_request"
    assert created.json()["balance"]["amount_minor"] == 500_000


def test_reissuing_a_link_revokes_the_old_one_and_revoking_ends_it(firm: dict[str, Any], stack: Any) -> None:
    api, firm_id, client_id = firm["api"], firm["firm"]["firm_id"], firm["client"]["client_id"]
    payable_id = api.call("POST", f"/firm/firms/{firm_id}/bills", bill_body(client_id, "B-101")).json()["payable_id"]
    first = api.call("POST", f"/firm/firms/{firm_id}/payables/{payable_id}/links", {}).json()["url"]
    second = api.call("POST", f"/firm/firms/{firm_id}/payables/{payable_id}/links", {"expires_in_days": 7}).json()[
        "url"
    ]
    gateway = stack.urls["gateway"]
    assert requests.get(f"{gateway}/api/pay/{first.rsplit('/', 1)[1]}", timeout=10).status_code == 410
    assert requests.get(f"{gateway}/api/pay/{second.rsplit('/', 1)[1]}", timeout=10).status_code == 200
    assert api.call("POST", f"/firm/firms/{firm_id}/payables/{payable_id}/links/revoke").status_code == 200
    assert requests.get(f"{gateway}/api/pay/{second.rsplit('/', 1)[1]}", timeout=10).status_code == 410
    assert api.call("POST", f"/firm/firms/{firm_id}/payables/{payable_id}/links/revoke").status_code == 404


def test_a_void_payable_gets_no_new_link(firm: dict[str, Any]) -> None:
    api, firm_id, client_id = firm["api"], firm["firm"]["firm_id"], firm["client"]["client_id"]
    payable_id = api.call("POST", f"/firm/firms/{firm_id}/bills", bill_body(client_id, "B-102")).json()["payable_id"]
    voided = api.call("POST", f"/firm/firms/{firm_id}/payables/{payable_id}/void")
    assert voided.status_code == 200
    assert voided.json()["status"] == "void"
    refused = api.call("POST", f"/firm/firms/{firm_id}/payables/{payable_id}/links", {})
    assert refused.status_code == 409
    assert refused.json()["code"] == "payable_closed"


def test_sending_a_bill_emails_the_client_a_fresh_pay_now_link(firm: dict[str, Any], stack: Any) -> None:
    api, firm_id, client_id = firm["api"], firm["firm"]["firm_id"], firm["client"]["client_id"]
    payable_id = api.call("POST", f"/firm/firms/{firm_id}/bills", bill_body(client_id, "B-103")).json()["payable_id"]
    before = len(stack.outbox.list_messages())
    sent = api.call("POST", f"/firm/firms/{firm_id}/payables/{payable_id}/send")
    assert sent.status_code == 200
    messages = stack.outbox.list_messages()
    assert len(messages) == before + 1
    message = stack.outbox.read(messages[-1]["id"])
    assert message["to"] == "ada@example.com"
    assert message["reply_to"] == "billing@okaforlin.example"
    assert "Pay online now" in message["html"]
    assert sent.json()["url"] in message["html"]
    assert "$1,500.50" in message["text"]


def test_another_firms_principal_is_refused(firm: dict[str, Any], firm_client: Any) -> None:
    outsider: FirmClient = firm_client(OTHER_KEY)
    answer = outsider.call("GET", f"/firm/firms/{firm['firm']['firm_id']}")
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"
    other_firm: FirmClient = firm_client(CA_KEY)
    assert (
        other_firm.call(
            "POST", f"/firm/firms/{firm['firm']['firm_id']}/clients", {"name": "X", "email": "x@example.com"}
        ).status_code
        == 403
    )


def test_unsigned_and_forged_requests_are_refused_by_the_gateway(firm: dict[str, Any], stack: Any) -> None:
    url = f"{stack.urls['gateway']}/firm/firms/{firm['firm']['firm_id']}"
    assert requests.get(url, timeout=10).status_code == 403
    forged = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIALOCALFIRMUS00001/20261125/us-east-1/execute-api/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "X-Amz-Date": "20261125T000000Z",
    }
    assert requests.get(url, headers=forged, timeout=10).status_code == 403


BAD_BILLS = [
    ("malformed JSON", None, "{not json", 400, "malformed_json"),
    ("not an object", None, "[1, 2]", 422, "invalid_request"),
    ("missing number", {"number": None}, None, 422, "invalid_request"),
    ("fractional amount", {"line_items": [{"description": "x", "amount_minor": 10.5}]}, None, 422, "invalid_request"),
    ("string amount", {"line_items": [{"description": "x", "amount_minor": "100"}]}, None, 422, "invalid_request"),
    ("boolean amount", {"line_items": [{"description": "x", "amount_minor": True}]}, None, 422, "invalid_request"),
    ("zero amount", {"line_items": [{"description": "x", "amount_minor": 0}]}, None, 422, "invalid_request"),
    ("negative amount", {"line_items": [{"description": "x", "amount_minor": -5}]}, None, 422, "invalid_request"),
    ("no line items", {"line_items": []}, None, 422, "invalid_request"),
    ("unknown currency", {"currency": "EUR"}, None, 422, "invalid_request"),
    ("currency of another country", {"currency": "CAD"}, None, 422, "currency_mismatch"),
    ("too-long number", {"number": "B" * 65}, None, 422, "invalid_request"),
    (
        "too-long description",
        {"line_items": [{"description": "d" * 501, "amount_minor": 1}]},
        None,
        422,
        "invalid_request",
    ),
    ("due before issue", {"due_on": "2026-10-01"}, None, 422, "invalid_request"),
    ("not a date", {"issued_on": "yesterday"}, None, 422, "invalid_request"),
    ("unknown field", {"discount": 5}, None, 422, "invalid_request"),
    ("unknown client", {"client_id": "cli_nobody"}, None, 404, "not_found"),
]


@pytest.mark.parametrize(("case", "changes", "raw", "status", "code"), BAD_BILLS, ids=[c[0] for c in BAD_BILLS])
def test_bad_bills_get_a_clear_error_and_change_nothing(
    firm: dict[str, Any], stack: Any, case: str, changes: dict[str, Any] | None, raw: str | None, status: int, code: str
) -> None:
    api, firm_id, client_id = firm["api"], firm["firm"]["firm_id"], firm["client"]["client_id"]
    body = None
    if changes is not None:
        body = bill_body(client_id, "B-BAD", **changes)
        body = {k: v for k, v in body.items() if v is not None}
    before = table_snapshot(stack)
    answer = api.call("POST", f"/firm/firms/{firm_id}/bills", body, raw=raw)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert answer.json()["message"]
    assert table_snapshot(stack) == before


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("bad email", {"reply_to_email": "not-an-email"}),
        ("french US firm", {"language": "fr"}),
        ("country and currency disagree", {"currency": "CAD"}),
        ("bad last4", {"operating_account": {"name": "Op", "last4": "12a4"}}),
        ("name too long", {"name": "N" * 201}),
        ("unknown country", {"country": "MX"}),
    ],
)
def test_bad_firms_are_refused_and_nothing_is_stored(
    firm_client: Any, stack: Any, case: str, changes: dict[str, Any]
) -> None:
    before = table_snapshot(stack)
    answer = firm_client().call("POST", "/firm/firms", FIRM | changes)
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_request"
    assert table_snapshot(stack) == before
