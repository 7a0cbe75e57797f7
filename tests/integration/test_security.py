"""Security through the local stack's gateway, as an attacker would probe it.

Pay links cannot be guessed, are never stored, and an unknown token answers like an expired one
apart from the status (same shape, same headers, same DynamoDB work); the new-link and card-testing
limits hold and reset per window; firm routes refuse unsigned, forged and cross-firm requests;
forged, stale or tampered webhooks are refused; every answer carries the security headers; and
the handlers' logs during a whole payment flow hold no card number, token, secret or address.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from firmpay.api import security_headers
from firmpay.ledger import keys
from firmpay.payments.card_testing import DEFAULT_LIMITS, attempt_counters
from firmpay.payments.links import TOKEN_PATTERN, hash_token
from local.gateway import sign_request
from local.stack import LOGS, LocalStack
from tests.conftest import ROOT
from tests.integration.conftest import CA_KEY, OTHER_KEY, US_KEY, FirmClient, table_snapshot
from tests.support.card_stack import (
    StackLink,
    forget_failed_attempts,
    open_link,
    post_webhook,
    quiet_table,
    signed_event,
)
from tests.support.log_scan import LogCollector, find_leaks

pytestmark = pytest.mark.integration

DECLINED = "4000000000000002"
OPENAPI = json.loads((ROOT / "layers/firmpay/firmpay/web/openapi.json").read_text())


def gateway(stack: LocalStack) -> str:
    return str(stack.urls["gateway"])


def expire(stack: LocalStack, token: str) -> None:
    """Move a link's expiry into the past, as time would."""
    stack.client("dynamodb").update_item(
        TableName=stack.env["LEDGER_TABLE"],
        Key=keys.link(hash_token(token)),
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"S": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}},
    )


def revoke(stack: LocalStack, link: StackLink) -> None:
    stack.ledger.revoke_current_link(stack.ledger.get_payable(link.payable_id), datetime.now(UTC))


def unknown_token() -> str:
    from firmpay.payments.links import new_token

    return new_token()  # well-formed, never issued


def ledger_items(stack: LocalStack) -> list[dict[str, Any]]:
    """Every item of the table, counters included."""
    client = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": stack.env["LEDGER_TABLE"], "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture(autouse=True)
def _fresh_attempts(stack: LocalStack) -> Iterator[None]:
    yield
    forget_failed_attempts(stack)


# -- 1. pay-link tokens: unguessable, never stored, looked up by hash ---------------------------------


def test_tokens_issued_through_the_firm_api_are_256_bit_unique_and_never_stored(stack: LocalStack) -> None:
    link = open_link(stack)
    api = FirmClient(gateway(stack), US_KEY)
    path = f"/firm/firms/{link.billed.firm.firm_id}/payables/{link.payable_id}/links"

    tokens = []
    for _ in range(40):
        answer = api.call("POST", path, {})
        assert answer.status_code == 201, answer.text
        tokens.append(answer.json()["url"].rsplit("/", 1)[1])

    assert len(set(tokens)) == len(tokens)
    assert all(TOKEN_PATTERN.fullmatch(t) for t in tokens)  # 43 url-safe characters = 256 bits
    alphabet = set("".join(tokens))
    assert alphabet <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(alphabet) > 55  # 1720 characters drawn from 64 show nearly all of them
    stored = json.dumps(ledger_items(stack))
    assert not [t for t in tokens if t in stored]
    assert all(f"LINK#{hash_token(t)}" in stored for t in tokens)
    # Only the last one opens the page; the 39 before it were replaced.
    statuses = [requests.get(f"{gateway(stack)}/api/pay/{t}", timeout=10).status_code for t in tokens[-2:]]
    assert statuses == [410, 200]


def test_a_token_is_looked_up_by_its_hash_with_one_get_and_never_a_scan(stack: LocalStack) -> None:
    link = open_link(stack)
    requests.get(f"{gateway(stack)}/api/pay/{link.token}", timeout=10)  # a warm container
    stack.poller.pause()
    try:
        stack.proxy.reset_counts()
        assert requests.get(f"{gateway(stack)}/api/pay/{unknown_token()}", timeout=10).status_code == 404
        counts = stack.proxy.counts("dynamodb")
    finally:
        stack.poller.resume()
    assert counts == {"GetItem": 1}


# -- 2. unknown (404) and expired or revoked (410) answers reveal nothing else -----------------------

# Differ per request or by the status itself; every other header must be identical.
PER_ANSWER_HEADERS = {"x-amzn-requestid", "content-length", "date"}


def answer_profile(answer: requests.Response) -> tuple[dict[str, str], int, str]:
    headers = {k.lower(): v for k, v in answer.headers.items() if k.lower() not in PER_ANSWER_HEADERS}
    return headers, len(answer.content), answer.text


@pytest.mark.parametrize("route", ["/api/pay/{}", "/pay/{}"], ids=["json", "html"])
def test_unknown_expired_and_revoked_tokens_differ_only_by_status(stack: LocalStack, route: str) -> None:
    expired, revoked = open_link(stack), open_link(stack, country="CA", kind="trust_request", amounts=(987_654,))
    expire(stack, expired.token)
    revoke(stack, revoked)
    tokens = {"unknown": unknown_token(), "unknown 2": unknown_token(), "expired": expired.token}
    tokens["revoked"] = revoked.token

    answers = {name: requests.get(gateway(stack) + route.format(t), timeout=10) for name, t in tokens.items()}

    assert {n: a.status_code for n, a in answers.items()} == {
        "unknown": 404,
        "unknown 2": 404,
        "expired": 410,
        "revoked": 410,
    }
    profiles = {name: answer_profile(a) for name, a in answers.items()}
    # Same status: byte-identical answers, whichever token, firm, country, kind or amount.
    assert profiles["unknown"] == profiles["unknown 2"]
    assert profiles["expired"] == profiles["revoked"]
    # Across statuses: the same headers, and a body of the same shape.
    assert profiles["unknown"][0] == profiles["expired"][0]
    for answer, token in zip(answers.values(), tokens.values(), strict=True):
        assert token not in answer.text
        assert expired.billed.payable.number not in answer.text
        assert revoked.billed.payable.number not in answer.text
        assert "Tremblay" not in answer.text
        assert "Hartley" not in answer.text
    if route.startswith("/api/"):
        shapes = {n: sorted(a.json()) for n, a in answers.items()}
        assert set(map(tuple, shapes.values())) == {("code", "message")}


def test_unknown_and_expired_tokens_cost_the_same_dynamodb_requests(stack: LocalStack) -> None:
    expired, revoked = open_link(stack), open_link(stack)
    expire(stack, expired.token)
    revoke(stack, revoked)
    requests.get(f"{gateway(stack)}/api/pay/{expired.token}", timeout=10)  # a warm container
    counts: dict[str, dict[str, int]] = {}
    stack.poller.pause()
    try:
        for name, token in (("unknown", unknown_token()), ("expired", expired.token), ("revoked", revoked.token)):
            for route in ("/api/pay/{}", "/pay/{}"):
                stack.proxy.reset_counts()
                requests.get(gateway(stack) + route.format(token), timeout=10)
                counts[f"{name} {route}"] = stack.proxy.counts("dynamodb")
    finally:
        stack.poller.resume()
    assert all(c == {"GetItem": 1} for c in counts.values()), counts


def test_unknown_and_expired_tokens_take_about_the_same_time(stack: LocalStack) -> None:
    expired = open_link(stack)
    expire(stack, expired.token)
    url = f"{gateway(stack)}/api/pay/{{}}"
    timings: dict[str, list[float]] = {"unknown": [], "expired": []}
    with requests.Session() as session:
        session.get(url.format(expired.token), timeout=10)
        for _ in range(50):  # interleaved, so a load spike on the machine hits both alike
            for name, token in (("unknown", unknown_token()), ("expired", expired.token)):
                started = time.perf_counter()
                session.get(url.format(token), timeout=10)
                timings[name].append(time.perf_counter() - started)

    medians = {name: statistics.median(t) for name, t in timings.items()}
    spread = max(statistics.quantiles(t, n=4)[2] - statistics.quantiles(t, n=4)[0] for t in timings.values())
    # Generous: a shared 2-core machine is noisy; an extra DynamoDB round trip would still show.
    assert abs(medians["unknown"] - medians["expired"]) <= max(0.25 * max(medians.values()), spread), (
        medians,
        spread,
    )


# -- 3. rate limits hold, and reset with the window ---------------------------------------------------


def age_counters(stack: LocalStack, scope: str) -> int:
    """Move the counters of ``scope`` into an earlier window, as time passing would; how many moved."""
    client = stack.client("dynamodb")
    table = stack.env["LEDGER_TABLE"]
    moved = 0
    for item in ledger_items(stack):
        if item["pk"]["S"] != f"RATE#{scope}":
            continue
        client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
        client.put_item(TableName=table, Item=item | {"sk": {"S": f"0{item['sk']['S']}"}})
        moved += 1
    return moved


def test_new_link_requests_are_limited_to_one_per_window_and_the_next_window_is_fresh(stack: LocalStack) -> None:
    link = open_link(stack)
    url = f"{gateway(stack)}/api/pay/{link.token}/new-link"
    scope = f"newlink#{hash_token(link.token)[:32]}"
    sent_before = len(stack.outbox.list_messages())
    while_usable = requests.post(url, json={}, timeout=10)  # takes the window's one slot, sends nothing
    expire(stack, link.token)

    limited = [requests.post(url, json={}, timeout=10) for _ in range(3)]

    assert [a.status_code for a in [while_usable, *limited]] == [202] * 4
    assert len({a.text for a in [while_usable, *limited]}) == 1  # limited or not, the same answer
    assert len(stack.outbox.list_messages()) == sent_before

    assert age_counters(stack, scope) == 1
    fresh = requests.post(url, json={}, timeout=10)

    assert fresh.status_code == 202
    messages = stack.outbox.list_messages()
    assert len(messages) == sent_before + 1
    message = stack.outbox.read(messages[-1]["id"])
    assert message is not None
    assert message["to"] == link.billed.client.email


def test_after_three_declines_on_a_link_review_answers_429_with_retry_after_until_the_next_window(
    stack: LocalStack,
) -> None:
    link = open_link(stack)
    for _ in range(DEFAULT_LIMITS.failures_per_link):
        assert link.pay(DECLINED)["status"] == "failed"

    limited = link.review()

    assert limited.status_code == 429
    assert limited.json()["code"] == "captcha_required"
    assert int(limited.headers["Retry-After"]) > 0
    assert link.invariant().pending_minor == 0

    forget_failed_attempts(stack)  # the IP counter (3 of 10) is not what this test is about
    counters = attempt_counters(hash_token(link.token), "127.0.0.1", datetime.now(UTC), DEFAULT_LIMITS)
    assert age_counters(stack, counters.link[0]) == 1
    assert link.review().status_code == 200


def test_ten_declines_from_one_address_ask_every_link_for_a_captcha(stack: LocalStack) -> None:
    forget_failed_attempts(stack)
    links = [open_link(stack) for _ in range(4)]
    for link, declines in zip(links, (3, 3, 3, 1), strict=True):
        for _ in range(declines):
            assert link.pay(DECLINED)["status"] == "failed"
    fresh = open_link(stack)

    limited = fresh.review()

    assert (limited.status_code, limited.json()["code"]) == (429, "captcha_required")
    assert "Retry-After" in limited.headers
    fresh.invariant()


# -- 4. firm routes: unsigned, forged and cross-firm requests are refused and change nothing ---------

FIRM_ROUTES = sorted(
    (method.upper(), path) for path, item in OPENAPI["paths"].items() if path.startswith("/firm/") for method in item
)


def firm_route_calls(link: StackLink) -> list[tuple[str, str, str, Any]]:
    """(method, OpenAPI path, real path, valid body) of every firm route, on a real firm, client
    and payable."""
    ids = {
        "firm_id": link.billed.firm.firm_id,
        "client_id": link.billed.client.client_id,
        "payable_id": link.payable_id,
        "payment_id": "pay_doesNotMatter01",
        "method_id": "pm_doesNotMatter01",
        "plan_id": "plan_doesNotMatter1",
    }
    client_id = ids["client_id"]
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/firm/autopay"): {
            "firm_id": ids["firm_id"],
            "payable_id": ids["payable_id"],
            "method_id": ids["method_id"],
            "amount_minor": 1_000,
            "idempotency_key": "security-test-1",
        },
        ("POST", "/firm/firms"): {
            "name": "Intruder LLP",
            "country": "US",
            "region": "NY",
            "currency": "USD",
            "operating_account": {"name": "Operating", "last4": "1111"},
            "trust_account": {"name": "Trust", "last4": "2222"},
            "reply_to_email": "billing@intruder.example",
        },
        ("POST", "/firm/firms/{firm_id}/bills"): {
            "client_id": client_id,
            "number": "B-INTRUDER",
            "issued_on": "2026-11-02",
            "due_on": "2026-12-02",
            "currency": "USD",
            "line_items": [{"description": "Drafting", "amount_minor": 1_000}],
        },
        ("POST", "/firm/firms/{firm_id}/trust-requests"): {
            "client_id": client_id,
            "number": "TR-INTRUDER",
            "issued_on": "2026-11-02",
            "due_on": "2026-12-02",
            "currency": "USD",
            "amount_minor": 1_000,
        },
        ("POST", "/firm/firms/{firm_id}/clients"): {"name": "Mallory", "email": "mallory@example.com"},
        ("POST", "/firm/firms/{firm_id}/payables/{payable_id}/links"): {},
        ("POST", "/firm/firms/{firm_id}/payables/{payable_id}/payments/{payment_id}/refunds"): {
            "reason": "duplicate",
            "idempotency_key": "security-test-refund",
        },
        ("POST", "/firm/firms/{firm_id}/payables/{payable_id}/plans"): {
            "method_id": ids["method_id"],
            "installments": 2,
            "frequency": "monthly",
            "start_on": (datetime.now(UTC) + timedelta(days=7)).date().isoformat(),
        },
    }
    calls = []
    for method, template in FIRM_ROUTES:
        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
        calls.append((method, template, path, bodies.get((method, template))))
    return calls


def test_the_firm_routes_are_all_known_to_this_test() -> None:
    assert len(FIRM_ROUTES) >= 20
    assert ("POST", "/firm/autopay") in FIRM_ROUTES


def test_every_firm_route_refuses_unsigned_and_forged_requests_at_the_gateway(stack: LocalStack) -> None:
    link = open_link(stack)
    before = quiet_table(stack)
    refused: dict[str, list[str]] = {}
    for method, _, path, body in firm_route_calls(link):
        url = gateway(stack) + path
        data = json.dumps(body) if body is not None else ""
        signed = sign_request(method, url, data, US_KEY, {"Content-Type": "application/json"})
        wrong_signature = signed | {
            "Authorization": re.sub(r"Signature=\w+", "Signature=" + "0" * 64, signed["Authorization"])
        }
        other_path = sign_request(method, url + "x", data, US_KEY, {"Content-Type": "application/json"})
        old_date = (datetime.now(UTC) - timedelta(minutes=6)).strftime("%Y%m%dT%H%M%SZ")
        cases = {
            "unsigned": {"Content-Type": "application/json"},
            "wrong signature": wrong_signature,
            "signed for another path": other_path,
            "unknown key": signed | {"Authorization": signed["Authorization"].replace(US_KEY, "AKIAUNKNOWNKEY000001")},
            "body changed": signed,
            "stale date": signed | {"X-Amz-Date": old_date},
        }
        for case, headers in cases.items():
            sent = data + " " if case == "body changed" else data
            answer = requests.request(method, url, data=sent.encode(), headers=headers, timeout=10)
            if answer.status_code != 403 or "x-amzn-ErrorType" not in answer.headers:
                refused.setdefault(f"{method} {path}", []).append(f"{case}: {answer.status_code} {answer.text[:80]}")
    assert refused == {}
    assert table_snapshot(stack) == before


@pytest.mark.parametrize("key", [OTHER_KEY, CA_KEY], ids=["principal of no firm", "principal of another firm"])
def test_every_firm_route_refuses_another_firms_principal_and_changes_nothing(stack: LocalStack, key: str) -> None:
    link = open_link(stack)
    outsider = FirmClient(gateway(stack), key)
    before = quiet_table(stack)
    answers = {}
    for method, template, path, body in firm_route_calls(link):
        if (method, template) == ("POST", "/firm/firms"):
            continue  # any principal may create a firm of its own
        answer = outsider.call(method, path, body)
        answers[f"{method} {path}"] = (answer.status_code, answer.json().get("code") if answer.content else None)
    wrong = {route: got for route, got in answers.items() if got not in ((403, "forbidden"), (404, "not_found"))}
    assert wrong == {}
    assert len(answers) == len(FIRM_ROUTES) - 1
    assert table_snapshot(stack) == before


# -- 5. webhooks: forged, stale, replayed, tampered or unsigned events are refused --------------------


def test_forged_replayed_stale_and_tampered_webhooks_get_400_and_change_nothing(stack: LocalStack) -> None:
    link = open_link(stack)
    paid = link.pay()
    payment = link.ledger.get_payment(link.payable_id, paid["payment_id"])
    assert payment is not None
    intent = link.stripe.v1.payment_intents.retrieve(str(payment.processor_intent_id))
    genuine, signature = signed_event("payment_intent.succeeded", intent)
    assert post_webhook(stack, genuine, signature).status_code == 200  # the route does accept Stripe's events
    now = int(time.time())
    captured, captured_signature = signed_event("payment_intent.succeeded", intent, at=now - 301)
    canceled = json.loads(genuine)
    canceled["data"]["object"]["status"] = "canceled"
    forgeries = {
        "missing header": (genuine, None),
        "empty header": (genuine, ""),
        "signed with another secret": signed_event("payment_intent.payment_failed", intent, secret="whsec_forged"),
        "replayed 301 s after it was signed": (captured, captured_signature),
        "replayed with its timestamp moved to now": (
            captured,
            captured_signature.replace(f"t={now - 301}", f"t={now}"),
        ),
        "old event, stale signature": signed_event("payment_intent.payment_failed", intent, at=now - 3600),
        "body changed after signing": (json.dumps(canceled), signature),
        "one byte appended": (genuine + " ", signature),
        "v0 scheme only": (genuine, re.sub(r"v1=", "v0=", signature)),
        "truncated signature": (genuine, signature[:-8]),
    }
    assert forgeries["replayed with its timestamp moved to now"][1] != captured_signature
    before = quiet_table(stack)

    answers = {name: post_webhook(stack, body, header) for name, (body, header) in forgeries.items()}

    assert {n: (a.status_code, a.json()["code"]) for n, a in answers.items()} == dict.fromkeys(
        forgeries, (400, "invalid_signature")
    )
    assert table_snapshot(stack) == before
    assert link.invariant().paid_minor == link.billed.payable.total_minor


# -- 6. security headers on every route, page and asset ----------------------------------------------


def route_requests(stack: LocalStack, link: StackLink) -> list[tuple[str, str, Any, str | None]]:
    """(method, url, body, signing key) for every route of the OpenAPI document and the pages."""
    ids = {"token": link.token, "name": "pay.css"}
    base = gateway(stack)
    out: list[tuple[str, str, Any, str | None]] = [
        (method, base + path, body, US_KEY) for method, _, path, body in firm_route_calls(link)
    ]
    for path, item in OPENAPI["paths"].items():
        for method in item:
            if not path.startswith("/firm/"):
                url = base + re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
                out.append((method.upper(), url, {} if method == "post" else None, None))
    out += [
        ("GET", f"{base}/pay/{link.token}", None, None),
        ("GET", f"{base}/pay/{unknown_token()}", None, None),
        ("GET", f"{base}/assets/pay.js", None, None),
        ("GET", f"{base}/assets/missing.css", None, None),
        ("GET", f"{base}/firm/no-such-route", None, US_KEY),
    ]
    return out


def test_every_route_page_and_asset_answers_with_the_security_headers(stack: LocalStack) -> None:
    link = open_link(stack)
    expected = security_headers()
    assert "'unsafe-inline'" not in expected["Content-Security-Policy"]
    problems: dict[str, list[str]] = {}
    seen_statuses = set()
    for method, url, body, key in route_requests(stack, link):
        data = json.dumps(body) if body is not None else ""
        headers = {"Content-Type": "application/json"}
        if key:
            headers = sign_request(method, url, data, key, headers)
        answer = requests.request(method, url, data=data.encode(), headers=headers, timeout=30)
        name = f"{method} {url.removeprefix(gateway(stack))} -> {answer.status_code}"
        if "x-amzn-ErrorType" in answer.headers:  # API Gateway's own answer: no handler was reached
            problems.setdefault(name, []).append(answer.headers["x-amzn-ErrorType"])
            continue
        seen_statuses.add(answer.status_code)
        is_asset = "/assets/" in url and answer.status_code == 200
        for header, value in expected.items():
            got = answer.headers.get(header)
            if header == "Cache-Control" and is_asset:
                continue  # fingerprinted static assets are cacheable; checked below
            if got != value:
                problems.setdefault(name, []).append(f"{header}: {got!r}")
        csp = answer.headers.get("Content-Security-Policy", "")
        script_src = next((d for d in csp.split(";") if d.strip().startswith("script-src")), "")
        if "'unsafe-inline'" in script_src or "'unsafe-eval'" in script_src or "frame-ancestors 'none'" not in csp:
            problems.setdefault(name, []).append(f"CSP: {csp!r}")
        if "/pay/" in url and "no-store" not in answer.headers.get("Cache-Control", ""):
            problems.setdefault(name, []).append("a pay page or answer may be cached")
    assert problems == {}
    assert {200, 404} <= seen_statuses


def test_a_page_has_no_inline_script_the_csp_would_block(stack: LocalStack) -> None:
    link = open_link(stack)
    page = requests.get(f"{gateway(stack)}/pay/{link.token}", timeout=10).text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.S | re.I)
    assert scripts
    # Data blocks (type="application/json") are not run; every script that runs comes from a file.
    runnable = [(attrs, body) for attrs, body in scripts if 'type="application/json"' not in attrs]
    assert runnable
    assert [attrs for attrs, body in runnable if body.strip() or "src=" not in attrs] == []
    assert not re.search(r"\son[a-z]+\s*=", page, flags=re.I)  # no inline event handlers either


# -- 7. logs of a whole payment flow hold no secrets --------------------------------------------------


def test_the_logs_of_card_echeck_webhook_firm_api_and_email_hold_no_secrets(stack: LocalStack) -> None:
    from tests.support.echeck_stack import open_echeck_link

    with LogCollector() as logs:
        card = open_link(stack)
        card.pay(store=True)
        declined = open_link(stack)
        declined.pay(DECLINED)
        bank = open_echeck_link(stack)
        connection_bank = bank.link_bank()
        exchanged = bank.exchange(connection_bank)
        assert exchanged.status_code == 200, exchanged.text
        reviewed = bank.review_echeck(exchanged.json()["connection_id"])
        assert bank.submit_echeck(reviewed.json()["review_id"]).status_code == 200
        api = FirmClient(gateway(stack), US_KEY)
        firm_path = f"/firm/firms/{declined.billed.firm.firm_id}"
        assert (
            api.call("POST", f"{firm_path}/clients", {"name": "Lee Leak", "email": "lee.leak@example.com"}).status_code
            == 201
        )
        reissued = api.call("POST", f"{firm_path}/payables/{declined.payable_id}/links", {})
        assert reissued.status_code == 201, reissued.text
        new_token = reissued.json()["url"].rsplit("/", 1)[1]
        sent = api.call("POST", f"{firm_path}/payables/{declined.payable_id}/send", None)
        assert sent.status_code == 200, sent.text
        sent_token = sent.json()["url"].rsplit("/", 1)[1]
        requests.get(f"{gateway(stack)}/pay/{new_token}", timeout=10)
        time.sleep(1.5)  # the emulator's signed webhooks land
        stack.poller.drain()  # confirmation emails go out
        logs.add_file(LOGS / f"{stack.run_id}-gateway.log")

    sensitive = [card.token, declined.token, bank.token, new_token, sent_token, connection_bank.public_token]
    # The capture saw the handlers and the gateway at work (else the scan below proves nothing).
    for logged in ("card stored for future use", "webhook reconciled", "confirmation email sent", "/pay/<token>"):
        assert logged in logs.text
    assert find_leaks(logs.text, sensitive) == []
