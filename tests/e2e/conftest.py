"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".local" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def seed_links(stack: Any) -> dict[str, str]:
    """A fresh pair of demo firms (local/seed.py): the pay links of their bills and trust requests,
    unpaid, each client new to Stripe."""
    from local.seed import seed_demo

    urls = [line.split()[2] for line in seed_demo(stack)]
    return {"us_bill": urls[0], "us_trust": urls[1], "ca_bill": urls[2], "ca_trust": urls[3]}


@pytest.fixture
def link(stack: Any) -> dict[str, str]:
    """Fresh demo pay links for every test."""
    return seed_links(stack)


@pytest.fixture(autouse=True)
def _fresh_attempts(stack: Any) -> Iterator[None]:
    """Each test starts under the card-testing limits (no reCAPTCHA left over from another)."""
    from tests.support.card_stack import forget_failed_attempts

    yield
    forget_failed_attempts(stack)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh phone-sized page that records console errors and CSP violations."""
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=1)
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# axe-core's rules for WCAG 2.0, 2.1 and 2.2, levels A and AA (target size, focus not obscured, ...).
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_run(page: Any) -> list[dict[str, Any]]:
    """Every WCAG 2.2 A/AA violation axe-core finds in ``page`` as it is now, of any impact (the
    page's context must allow the injected script: ``bypass_csp=True``)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_22_AA,
    )
    return list(result["violations"])


def described(violations: list[dict[str, Any]]) -> list[tuple[str, str, list[Any]]]:
    return [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in violations]


def axe_violations(browser: Any, url: str, width: int = 375) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA violations of ``url`` at ``width`` CSS pixels."""
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("networkidle")
    violations = axe_run(page)
    context.close()
    return violations
