"""Helpers for tests that go through the local stack's HTTP gateway."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from local.gateway import sign_request

US_KEY = "AKIALOCALFIRMUS00001"
CA_KEY = "AKIALOCALFIRMCA00001"
OTHER_KEY = "AKIALOCALFIRMXX00001"


class FirmClient:
    """SigV4-signed calls to the firm API, as a firm's billing system makes them."""

    def __init__(self, base: str, access_key: str = US_KEY) -> None:
        self.base = base
        self.access_key = access_key

    def call(self, method: str, path: str, body: Any = None, raw: str | None = None) -> requests.Response:
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        url = self.base + path
        headers = sign_request(method, url, data, self.access_key, {"Content-Type": "application/json"})
        return requests.request(method, url, data=data.encode(), headers=headers, timeout=30)


@pytest.fixture(scope="session")
def firm_client(stack: Any) -> Callable[[str], FirmClient]:
    return lambda key=US_KEY: FirmClient(stack.urls["gateway"], key)


def table_snapshot(stack: Any) -> list[dict[str, Any]]:
    """Every item of the ledger table (sorted), to prove a refused request changed nothing."""
    client = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": stack.env["LEDGER_TABLE"], "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    # Rate-limit counters are not ledger state.
    kept = [i for i in items if not i["pk"]["S"].startswith("RATE#")]
    return sorted(kept, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


@pytest.fixture(scope="session", autouse=True)
def _logs_hold_no_secrets() -> Iterator[None]:
    """Everything logged during the integration tests, scanned at the end: no card number, pay-link
    token (every one issued in the run is recorded), Plaid token, Stripe secret or email address."""
    from firmpay.payments import links
    from tests.support.log_scan import LogCollector, find_leaks

    issued: list[str] = []
    real_new_token = links.new_token

    @functools.wraps(real_new_token)
    def recording_new_token() -> str:
        token = real_new_token()
        issued.append(token)
        return token

    with pytest.MonkeyPatch.context() as patch, LogCollector() as logs:
        patch.setattr(links, "new_token", recording_new_token)
        yield
    leaks = find_leaks(logs.text, issued)
    if leaks:
        pytest.fail(f"{len(leaks)} secrets in the logs of the integration tests: {leaks[:20]}", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "unreconciled(reason): the scenario ends, on purpose, with the ledger and Stripe apart"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _money_reconciled(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every scenario on the local stack: each payment of every payable it touched agrees with
    Stripe (tests/support/reconcile.py), once the webhooks still in flight have landed."""
    marker = request.node.get_closest_marker("unreconciled")
    if "stack" not in request.fixturenames or marker is not None:
        yield
        return
    from tests.support.reconcile import assert_reconciled, touched_payables

    stack = request.getfixturevalue("stack")
    started = time.time()
    with touched_payables() as touched:
        yield
    if not request.node.stash.get(_CALL_FAILED, True):
        assert_reconciled(stack, touched, started, settle_within=5)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the local stack's own tests first, while the shared stack is quiet.

    They count stream records and consume one-shot injected faults; the card tests leave Stripe
    webhooks in flight (delivered asynchronously, as Stripe does) that would otherwise land in
    the middle of them.
    """
    items.sort(key=lambda item: 0 if item.path.name == "test_local_stack.py" else 1)
