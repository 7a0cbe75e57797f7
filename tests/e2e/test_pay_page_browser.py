"""A client opens a seeded pay link in chromium: what they see, on a phone, accessibly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from firmpay.payments.links import issue_pay_link
from tests.e2e.conftest import axe_violations, described, screenshot, seed_links
from tests.support.factories import create_billed


@pytest.fixture(scope="module")
def seeded(stack: Any) -> dict[str, str]:
    return seed_links(stack)


def test_a_client_sees_the_firm_the_bill_its_dates_and_the_balance(page: Any, seeded: dict[str, str]) -> None:
    page.goto(seeded["us_bill"])
    assert page.get_by_role("banner").inner_text().strip() == "Hartley & Vance LLP"
    assert page.get_by_role("heading", level=1).inner_text() == "Bill B-1042"
    facts = page.locator(".summary .facts").inner_text()
    assert "Issued" in facts
    assert "Due" in facts
    assert page.get_by_role("cell", name="Court filing fees").is_visible()
    assert page.locator("#balance-due").inner_text() == "$3,500.50\u00a0USD"
    screenshot(page, "pay-page-us-bill-375")


def test_the_page_fits_a_phone_without_horizontal_scrolling(page: Any, seeded: dict[str, str]) -> None:
    page.goto(seeded["ca_bill"])  # French: the longest texts
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375
    assert page.locator("#balance-due").inner_text() == "1\u00a0605,75\u00a0$\u00a0CAD"


def test_a_trust_request_says_the_money_goes_to_trust(page: Any, seeded: dict[str, str]) -> None:
    page.goto(seeded["us_trust"])
    assert page.get_by_role("heading", level=1).inner_text() == "Trust request TR-2087"
    assert "trust account" in page.locator(".trust-note").inner_text()
    screenshot(page, "pay-page-us-trust-375")


def test_the_page_loads_without_csp_violations(page: Any, seeded: dict[str, str]) -> None:
    page.goto(seeded["ca_trust"])
    page.wait_for_load_state("networkidle")
    blocked = [e for e in page.console_errors if "Content Security Policy" in e]
    assert blocked == []


def test_an_unknown_link_says_it_was_not_found(page: Any, stack: Any) -> None:
    page.goto(f"{stack.urls['gateway']}/pay/{'Z' * 43}")
    assert page.get_by_role("heading", level=1).inner_text() == "Payment link not found"
    assert page.get_by_role("button", name="Email me a new link").count() == 0


def test_an_expired_link_offers_a_new_one(page: Any, stack: Any) -> None:
    # Given a bill whose only link was issued 91 days ago for 90 days
    billed = create_billed(stack.ledger)
    gateway = stack.urls["gateway"]
    issued = datetime.now(UTC) - timedelta(days=91)
    expired_url, _ = issue_pay_link(stack.ledger, billed.payable, gateway, issued, days=90)
    number = billed.payable.number
    page.goto(expired_url)
    assert page.get_by_role("heading", level=1).inner_text() == "This payment link has expired"
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.method} {request.url}"))

    # When the client asks for a new one
    page.get_by_role("button", name="Email me a new link").click()

    # Then the page says it is on its way, and the client's address got a working link
    page.get_by_role("status").filter(has_text="new").wait_for()
    assert any(s.startswith("POST ") and s.endswith("/new-link") for s in sent), sent
    mail = wait_for_mail(stack, number, "jordan@example.com")
    (fresh,) = [u for u in mail["links"] if "/pay/" in u]
    assert fresh != expired_url
    assert requests.get(fresh.replace("/pay/", "/api/pay/"), timeout=10).status_code == 200
    assert requests.get(expired_url.replace("/pay/", "/api/pay/"), timeout=10).status_code != 200


def wait_for_mail(stack: Any, number: str, to: str, timeout: float = 10) -> dict[str, Any]:
    """The first outbox message about payable ``number`` to ``to``, waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for meta in stack.outbox.list_messages():
            if number in meta["subject"] and to in str(meta.get("to")):
                return stack.outbox.read(meta["id"])  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"no email about {number} to {to} within {timeout:.0f}s")
        time.sleep(0.2)


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("which", ["us_bill", "ca_trust"])
def test_no_wcag_22_aa_violation_at_phone_and_desktop_widths(
    browser: Any, seeded: dict[str, str], which: str, width: int
) -> None:
    violations = axe_violations(browser, seeded[which], width)
    assert violations == [], described(violations)
