"""The firm API through the local gateway with SigV4-signed requests, as a firm's billing system
uses it: the whole path from a new firm to a pay link a client can open, who may see what, and
bad input that is refused with a stable code while the ledger stays exactly as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.integration.conftest import CA_KEY, OTHER_KEY, FirmClient, table_snapshot

FIRM: dict[str, Any] = {
    "name": "Okafor & Lin LLP",
    "country": "US",
    "region": "NY",
    "currency": "USD",
    "operating_account": {"name": "Operating", "last4": "5521"},
    "trust_account": {"name": "IOLTA Trust", "last4": "8830"},
    "reply_to_email": "billing@okaforlin.example",
}
DROP = ...  # in a table of changes: remove the field


def changed(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = body | changes
    return {k: v for k, v in merged.items() if v is not DROP}


def bill_body(client: str, number: str, **changes: Any) -> dict[str, Any]:
    body = {
        "client_id": client,
        "number": number,
        "issued_on": "2026-11-02",
        "due_on": "2026-12-02",
        "currency": "USD",
        "line_items": [
            {"description": "Drafting", "amount_minor": 120_000},
            {"description": "Filing", "amount_minor": 30_050},
        ],
    }
    return changed(body, changes)


def trust_body(client: str, number: str, **changes: Any) -> dict[str, Any]:
    body = {
        "client_id": client,
        "number": number,
        "issued_on": "2026-11-02",
        "due_on": "2026-11-30",
        "currency": "USD",
        "amount_minor": 500_000,
        "memo": "Retainer for the Park v. Halvorsen litigation",
    }
    return changed(body, changes)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def ledger_state(stack: Any) -> list[dict[str, Any]]:
    """Every ledger item, once the stream's pending deliveries are done (nothing moves meanwhile)."""
    stack.poller.drain()
    return table_snapshot(stack)


@pytest.fixture(scope="module")
def firm(firm_client: Any) -> dict[str, Any]:
    """A US firm (principal firm-us) with one client and one open bill."""
    api: FirmClient = firm_client()
    created = api.call("POST", "/firm/firms", FIRM)
    assert created.status_code == 201, created.text
    firm_id = created.json()["firm_id"]
    client = api.call("POST", f"/firm/firms/{firm_id}/clients", {"name": "Ada Park", "email": "ada@example.com"})
    assert client.status_code == 201, client.text
    client_id = client.json()["client_id"]
    bill = api.call("POST", f"/firm/firms/{firm_id}/bills", bill_body(client_id, "B-FIXTURE"))
    assert bill.status_code == 201, bill.text
    return {"api": api, "firm_id": firm_id, "client_id": client_id, "payable_id": bill.json()["payable_id"]}


@pytest.fixture(scope="module")
def canadian_firm(firm_client: Any) -> dict[str, Any]:
    """A Canadian firm (principal firm-ca) with a client and a bill: someone else's, for firm-us."""
    api: FirmClient = firm_client(CA_KEY)
    body = FIRM | {"name": "Tremblay Avocats", "country": "CA", "region": "QC", "currency": "CAD", "language": "fr"}
    firm_id = api.call("POST", "/firm/firms", body).json()["firm_id"]
    client_id = api.call(
        "POST", f"/firm/firms/{firm_id}/clients", {"name": "Camille Gagnon", "email": "camille@example.com"}
    ).json()["client_id"]
    bill = api.call("POST", f"/firm/firms/{firm_id}/bills", bill_body(client_id, "F-1", currency="CAD"))
    assert bill.status_code == 201, bill.text
    return {"firm_id": firm_id, "client_id": client_id, "payable_id": bill.json()["payable_id"]}


# -- the whole path -------------------------------------------------------------------------------


def test_a_new_firm_bills_a_client_and_the_client_opens_the_pay_link(firm_client: Any, stack: Any) -> None:
    api: FirmClient = firm_client()
    created = api.call("POST", "/firm/firms", FIRM)
    assert created.status_code == 201
    firm = created.json()
    assert firm["principals"] == ["arn:aws:iam::000000000000:user/firm-us"]
    assert (firm["country"], firm["currency"], firm["language"]) == ("US", "USD", "en")
    assert created.headers["Cache-Control"] == "no-store"
    firm_path = f"/firm/firms/{firm['firm_id']}"
    assert api.call("GET", firm_path).json() == firm

    client = api.call("POST", f"{firm_path}/clients", {"name": "Ada Park", "email": "ada@example.com"})
    assert client.status_code == 201
    client_id = client.json()["client_id"]
    assert api.call("GET", f"{firm_path}/clients/{client_id}").json()["email"] == "ada@example.com"

    bill = api.call("POST", f"{firm_path}/bills", bill_body(client_id, "B-100", memo="Matter 2026-114"))
    assert bill.status_code == 201
    assert bill.json()["total"] == {"amount_minor": 150_050, "currency": "USD"}
    assert bill.json()["balance"] == {"amount_minor": 150_050, "currency": "USD"}
    assert (bill.json()["kind"], bill.json()["status"]) == ("bill", "open")
    payable_path = f"{firm_path}/payables/{bill.json()['payable_id']}"

    link = api.call("POST", f"{payable_path}/links")
    assert link.status_code == 201
    url = link.json()["url"]
    assert url.startswith(stack.env["PUBLIC_BASE_URL"] + "/pay/")
    read = api.call("GET", payable_path)
    assert read.status_code == 200
    assert (read.json()["has_active_link"], read.json()["payments"]) == (True, [])
    assert token_of(url) not in read.text, "the token is shown once, in the answer that issued it"

    view = requests.get(f"{stack.urls['gateway']}/api/pay/{token_of(url)}", timeout=10)
    assert view.status_code == 200, view.text
    assert view.json()["payable"]["balance"]["formatted"] == "$1,500.50\u00a0USD"
    assert view.json()["payment_options"] == ["card", "echeck"]


def test_a_trust_request_asks_for_a_deposit_and_its_number_is_unique(firm: dict[str, Any], stack: Any) -> None:
    api, firm_path = firm["api"], f"/firm/firms/{firm['firm_id']}"
    created = api.call("POST", f"{firm_path}/trust-requests", trust_body(firm["client_id"], "TR-7"))
    assert created.status_code == 201
    assert (created.json()["kind"], created.json()["line_items"]) == ("trust_request", [])
    assert created.json()["balance"] == {"amount_minor": 500_000, "currency": "USD"}

    before = ledger_state(stack)
    other = api.call("POST", f"{firm_path}/trust-requests", trust_body(firm["client_id"], "TR-7", amount_minor=1_000))
    assert (other.status_code, other.json()["code"]) == (409, "conflict")
    retried = api.call("POST", f"{firm_path}/trust-requests", trust_body(firm["client_id"], "TR-7"))
    assert (retried.status_code, retried.json()["payable_id"]) == (201, created.json()["payable_id"])
    assert ledger_state(stack) == before


def test_a_bill_number_is_used_once_per_firm(firm: dict[str, Any], stack: Any) -> None:
    api, firm_path = firm["api"], f"/firm/firms/{firm['firm_id']}"
    before = ledger_state(stack)
    other = bill_body(firm["client_id"], "B-FIXTURE", line_items=[{"description": "Other", "amount_minor": 100}])
    again = api.call("POST", f"{firm_path}/bills", other)
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert ledger_state(stack) == before


def test_creating_a_bill_again_after_a_lost_answer_answers_with_the_bill_made_once(
    firm: dict[str, Any], stack: Any
) -> None:
    # Given a bill whose creation answer never reached the firm (API Gateway cut it, the network
    # dropped it): the bill was made
    api, firm_path = firm["api"], f"/firm/firms/{firm['firm_id']}"
    body = bill_body(firm["client_id"], "B-LOST-1")
    first = api.call("POST", f"{firm_path}/bills", body)
    assert first.status_code == 201, first.text
    after_first = ledger_state(stack)

    # When the firm's billing system retries the same request
    retry = api.call("POST", f"{firm_path}/bills", body)

    # Then it succeeds with the same bill, and nothing more was written
    assert retry.status_code == 201, retry.text
    assert retry.json()["payable_id"] == first.json()["payable_id"]
    assert retry.json()["total"] == {"amount_minor": 150_050, "currency": "USD"}
    assert ledger_state(stack) == after_first
    stack.ledger.check_invariant(first.json()["payable_id"])


def test_a_void_bill_gets_no_pay_link(firm: dict[str, Any]) -> None:
    api, firm_path = firm["api"], f"/firm/firms/{firm['firm_id']}"
    payable_id = api.call("POST", f"{firm_path}/bills", bill_body(firm["client_id"], "B-102")).json()["payable_id"]
    voided = api.call("POST", f"{firm_path}/payables/{payable_id}/void")
    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["balance"]["amount_minor"]) == ("void", 150_050)
    assert voided.json()["voided_at"]
    refused = api.call("POST", f"{firm_path}/payables/{payable_id}/links", {})
    assert (refused.status_code, refused.json()["code"]) == (409, "payable_closed")
    assert api.call("POST", f"{firm_path}/payables/{payable_id}/void").json()["voided_at"] == voided.json()["voided_at"]


def test_reissuing_a_link_revokes_the_old_one_and_revoking_ends_it(firm: dict[str, Any], stack: Any) -> None:
    api, firm_path = firm["api"], f"/firm/firms/{firm['firm_id']}"
    payable_id = api.call("POST", f"{firm_path}/bills", bill_body(firm["client_id"], "B-101")).json()["payable_id"]
    links = f"{firm_path}/payables/{payable_id}/links"
    first = api.call("POST", links, {}).json()
    second = api.call("POST", links, {"expires_in_days": 7}).json()
    gateway = stack.urls["gateway"]
    assert requests.get(f"{gateway}/api/pay/{token_of(first['url'])}", timeout=10).status_code == 410
    assert requests.get(f"{gateway}/api/pay/{token_of(second['url'])}", timeout=10).status_code == 200

    deleted = api.call("DELETE", f"{links}/current")
    assert (deleted.status_code, deleted.text) == (204, "")
    assert requests.get(f"{gateway}/api/pay/{token_of(second['url'])}", timeout=10).status_code == 410
    gone = api.call("DELETE", f"{links}/current")
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")

    third = api.call("POST", links).json()
    revoked = api.call("POST", f"{links}/revoke")
    assert (revoked.status_code, revoked.json()["has_active_link"]) == (200, False)
    assert requests.get(f"{gateway}/api/pay/{token_of(third['url'])}", timeout=10).status_code == 410
    assert api.call("POST", f"{links}/revoke").status_code == 404


def test_sending_a_bill_emails_the_client_a_fresh_pay_now_link(firm: dict[str, Any], stack: Any) -> None:
    api, firm_path = firm["api"], f"/firm/firms/{firm['firm_id']}"
    payable_id = api.call("POST", f"{firm_path}/bills", bill_body(firm["client_id"], "B-103")).json()["payable_id"]
    before = len(stack.outbox.list_messages())
    sent = api.call("POST", f"{firm_path}/payables/{payable_id}/send")
    assert sent.status_code == 200
    messages = stack.outbox.list_messages()
    assert len(messages) == before + 1
    message = stack.outbox.read(messages[-1]["id"])
    assert message["to"] == "ada@example.com"
    assert message["reply_to"] == "billing@okaforlin.example"
    assert "Pay online now" in message["html"]
    assert sent.json()["url"] in message["html"]
    assert "$1,500.50" in message["text"]


# -- who may see what -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [OTHER_KEY, CA_KEY], ids=["principal of no firm", "principal of another firm"])
def test_someone_elses_firm_is_forbidden(firm: dict[str, Any], firm_client: Any, stack: Any, key: str) -> None:
    outsider: FirmClient = firm_client(key)
    firm_path = f"/firm/firms/{firm['firm_id']}"
    before = ledger_state(stack)
    for method, path, body in [
        ("GET", firm_path, None),
        ("POST", f"{firm_path}/clients", {"name": "X", "email": "x@example.com"}),
        ("POST", f"{firm_path}/bills", bill_body(firm["client_id"], "B-INTRUDER")),
        ("GET", f"{firm_path}/payables/{firm['payable_id']}", None),
        ("POST", f"{firm_path}/payables/{firm['payable_id']}/links", {}),
        ("POST", f"{firm_path}/payables/{firm['payable_id']}/void", None),
    ]:
        answer = outsider.call(method, path, body)
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden"), f"{method} {path}"
    assert ledger_state(stack) == before


def test_another_firms_clients_and_payables_do_not_exist_for_my_firm(
    firm: dict[str, Any], canadian_firm: dict[str, Any], stack: Any
) -> None:
    api, firm_path = firm["api"], f"/firm/firms/{firm['firm_id']}"
    before = ledger_state(stack)
    for method, path, body in [
        ("GET", f"{firm_path}/clients/{canadian_firm['client_id']}", None),
        ("GET", f"{firm_path}/payables/{canadian_firm['payable_id']}", None),
        ("POST", f"{firm_path}/payables/{canadian_firm['payable_id']}/void", None),
        ("POST", f"{firm_path}/payables/{canadian_firm['payable_id']}/links", {}),
        ("DELETE", f"{firm_path}/payables/{canadian_firm['payable_id']}/links/current", None),
        ("POST", f"{firm_path}/bills", bill_body(canadian_firm["client_id"], "B-CROSS")),
    ]:
        answer = api.call(method, path, body)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), f"{method} {path}"
    assert ledger_state(stack) == before


def test_an_unknown_firm_is_not_found(firm: dict[str, Any]) -> None:
    answer = firm["api"].call("GET", "/firm/firms/firm_doesNotExist0")
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    unknown_route = firm["api"].call("GET", "/firm/nothing-here")
    assert (unknown_route.status_code, unknown_route.json()["code"]) == (404, "not_found")


def test_unsigned_and_forged_requests_are_refused_by_the_gateway(firm: dict[str, Any], stack: Any) -> None:
    url = f"{stack.urls['gateway']}/firm/firms/{firm['firm_id']}"
    before = ledger_state(stack)
    assert requests.get(url, timeout=10).status_code == 403
    assert requests.post(f"{stack.urls['gateway']}/firm/firms", json=FIRM, timeout=10).status_code == 403
    forged = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIALOCALFIRMUS00001/20261125/us-east-1/execute-api/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "X-Amz-Date": "20261125T000000Z",
    }
    assert requests.get(url, headers=forged, timeout=10).status_code == 403
    assert ledger_state(stack) == before


# -- bad input: a clear error with a stable code, and not one item written -------------------------

LONG = "N" * 201
BAD_REQUESTS: list[tuple[str, str, str, Any, int, str]] = [
    # (case, method, path under the firm, body (dict, or str sent as is), status, code)
    ("bill: malformed JSON", "POST", "/bills", "{not json", 400, "malformed_json"),
    ("bill: not an object", "POST", "/bills", "[1, 2]", 422, "invalid_request"),
    ("bill: empty body", "POST", "/bills", "", 422, "invalid_request"),
    ("bill: missing number", "POST", "/bills", {"number": DROP}, 422, "invalid_request"),
    ("bill: missing line items", "POST", "/bills", {"line_items": DROP}, 422, "invalid_request"),
    (
        "bill: fractional amount",
        "POST",
        "/bills",
        {"line_items": [{"description": "x", "amount_minor": 10.5}]},
        422,
        "invalid_request",
    ),
    (
        "bill: string amount",
        "POST",
        "/bills",
        {"line_items": [{"description": "x", "amount_minor": "100"}]},
        422,
        "invalid_request",
    ),
    (
        "bill: boolean amount",
        "POST",
        "/bills",
        {"line_items": [{"description": "x", "amount_minor": True}]},
        422,
        "invalid_request",
    ),
    (
        "bill: zero amount",
        "POST",
        "/bills",
        {"line_items": [{"description": "x", "amount_minor": 0}]},
        422,
        "invalid_request",
    ),
    (
        "bill: negative amount",
        "POST",
        "/bills",
        {"line_items": [{"description": "x", "amount_minor": -5}]},
        422,
        "invalid_request",
    ),
    ("bill: no line items", "POST", "/bills", {"line_items": []}, 422, "invalid_request"),
    ("bill: unknown currency", "POST", "/bills", {"currency": "EUR"}, 422, "invalid_request"),
    ("bill: not the firm's currency", "POST", "/bills", {"currency": "CAD"}, 422, "currency_mismatch"),
    ("bill: number too long", "POST", "/bills", {"number": "B" * 65}, 422, "invalid_request"),
    (
        "bill: description too long",
        "POST",
        "/bills",
        {"line_items": [{"description": "d" * 501, "amount_minor": 1}]},
        422,
        "invalid_request",
    ),
    ("bill: due before issue", "POST", "/bills", {"due_on": "2026-10-01"}, 422, "invalid_request"),
    ("bill: not a date", "POST", "/bills", {"issued_on": "yesterday"}, 422, "invalid_request"),
    ("bill: unknown field", "POST", "/bills", {"discount": 5}, 422, "invalid_request"),
    ("bill: unknown client", "POST", "/bills", {"client_id": "cli_nobody"}, 404, "not_found"),
    ("trust: zero amount", "POST", "/trust-requests", {"amount_minor": 0}, 422, "invalid_request"),
    ("trust: negative amount", "POST", "/trust-requests", {"amount_minor": -100}, 422, "invalid_request"),
    ("trust: fractional amount", "POST", "/trust-requests", {"amount_minor": 99.99}, 422, "invalid_request"),
    ("trust: string amount", "POST", "/trust-requests", {"amount_minor": "100"}, 422, "invalid_request"),
    ("trust: missing amount", "POST", "/trust-requests", {"amount_minor": DROP}, 422, "invalid_request"),
    ("trust: memo too long", "POST", "/trust-requests", {"memo": "m" * 501}, 422, "invalid_request"),
    ("trust: due before issue", "POST", "/trust-requests", {"due_on": "2026-11-01"}, 422, "invalid_request"),
    ("trust: not the firm's currency", "POST", "/trust-requests", {"currency": "CAD"}, 422, "currency_mismatch"),
    ("client: bad email", "POST", "/clients", {"email": "ada@"}, 422, "invalid_request"),
    ("client: name too long", "POST", "/clients", {"name": LONG}, 422, "invalid_request"),
    ("client: blank name", "POST", "/clients", {"name": "   "}, 422, "invalid_request"),
    ("client: missing email", "POST", "/clients", {"email": DROP}, 422, "invalid_request"),
    ("client: malformed JSON", "POST", "/clients", '{"name": "Ada', 400, "malformed_json"),
    ("link: zero days", "POST", "/payables/{payable}/links", {"expires_in_days": 0}, 422, "invalid_request"),
    ("link: over a year", "POST", "/payables/{payable}/links", {"expires_in_days": 366}, 422, "invalid_request"),
    ("link: days as a string", "POST", "/payables/{payable}/links", {"expires_in_days": "30"}, 422, "invalid_request"),
    ("link: unknown payable", "POST", "/payables/pbl_nobody/links", {}, 404, "not_found"),
    ("link: malformed JSON", "POST", "/payables/{payable}/links", "{", 400, "malformed_json"),
]


def default_body(path: str, client_id: str) -> dict[str, Any]:
    """A valid body for ``path``, which a case of the table then spoils."""
    if path == "/bills":
        return bill_body(client_id, "B-BAD")
    if path == "/trust-requests":
        return trust_body(client_id, "TR-BAD")
    if path == "/clients":
        return {"name": "Ada Park", "email": "ada@example.com"}
    return {}


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "status", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    firm: dict[str, Any], stack: Any, case: str, method: str, path: str, body: Any, status: int, code: str
) -> None:
    api = firm["api"]
    raw = body if isinstance(body, str) else None
    payload = None
    if isinstance(body, dict):
        payload = changed(default_body(path, firm["client_id"]), body)
    url = f"/firm/firms/{firm['firm_id']}" + path.format(payable=firm["payable_id"])
    before = ledger_state(stack)

    answer = api.call(method, url, payload, raw=raw)

    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert answer.json()["message"]
    assert ledger_state(stack) == before


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("bad email", {"reply_to_email": "not-an-email"}),
        ("French for a US firm", {"language": "fr"}),
        ("country and currency disagree", {"currency": "CAD"}),
        ("unknown currency", {"currency": "EUR"}),
        ("bad last4", {"operating_account": {"name": "Op", "last4": "12a4"}}),
        ("name too long", {"name": LONG}),
        ("unknown country", {"country": "MX"}),
        ("missing trust account", {"trust_account": DROP}),
        ("fractional eCheck limit", {"echeck_max_minor": 2_500_000.5}),
        ("unknown field", {"principals": ["arn:aws:iam::000000000000:user/intruder"]}),
    ],
)
def test_bad_firms_are_refused_and_nothing_is_stored(
    firm_client: Any, stack: Any, case: str, changes: dict[str, Any]
) -> None:
    before = ledger_state(stack)
    answer = firm_client().call("POST", "/firm/firms", changed(FIRM, changes))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_request"
    assert ledger_state(stack) == before


def test_a_malformed_firm_body_is_a_400(firm_client: Any, stack: Any) -> None:
    before = ledger_state(stack)
    answer = firm_client().call("POST", "/firm/firms", raw=json.dumps(FIRM)[:-1])
    assert (answer.status_code, answer.json()["code"]) == (400, "malformed_json")
    assert ledger_state(stack) == before
