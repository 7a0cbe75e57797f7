"""A client opens a seeded pay link in chromium: what they see, on a phone, accessibly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import axe_violations, screenshot


@pytest.fixture(scope="module")
def seeded(stack: Any) -> dict[str, str]:
    from local.seed import seed_demo

    urls = [line.split()[2] for line in seed_demo(stack)]
    return {"us_bill": urls[0], "us_trust": urls[1], "ca_bill": urls[2], "ca_trust": urls[3]}


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
    page.goto(seeded["ca_bill"])
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375
    assert page.locator("#balance-due").inner_text() == "$1,605.75\u00a0CAD"


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


def test_an_expired_link_offers_a_new_one(page: Any, stack: Any) -> None:
    page.goto(f"{stack.urls['gateway']}/pay/{'Z' * 43}")
    assert page.get_by_role("heading", level=1).inner_text() == "Payment link not found"


@pytest.mark.parametrize("which", ["us_bill", "ca_trust"])
def test_no_serious_or_critical_accessibility_violations(browser: Any, seeded: dict[str, str], which: str) -> None:
    violations = axe_violations(browser, seeded[which])
    assert violations == [], [(v["id"], v["help"]) for v in violations]
