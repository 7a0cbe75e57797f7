"""The pay page on API Gateway's own URL (``/{stage}/pay/...``, no custom domain): a client pays by
card through 3-D Secure, and every request the page makes stays under the stage path."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from local.gateway import STAGE
from tests.e2e.test_card_browser import card_section, enter_billing, enter_card, review_and_submit

pytestmark = pytest.mark.e2e


@pytest.fixture
def staged_link(stack: Any) -> str:
    """A fresh demo US trust request's pay link, on the stage URL."""
    from local.seed import seed_demo

    url = urlsplit(seed_demo(stack)[1].split()[2])
    return f"{url.scheme}://{url.netloc}/{STAGE}{url.path}"


def test_a_client_pays_by_card_with_3d_secure_under_the_stage_path(page: Any, staged_link: str, stack: Any) -> None:
    gateway = urlsplit(stack.urls["gateway"]).netloc
    to_gateway: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: to_gateway.append((urlsplit(r.url).path, r.status)) if urlsplit(r.url).netloc == gateway else None,
    )

    page.goto(staged_link)
    section = card_section(page)
    section.get_by_label("Payment amount (USD)").fill("1000.00")
    enter_card(page, "4000002760003184")
    enter_billing(page)
    review_and_submit(page)
    page.get_by_role("button", name="Complete authentication").click()

    result = page.get_by_role("status")
    result.get_by_role("heading", name="Payment successful").wait_for()
    assert "$1,000.00\u00a0USD" in result.inner_text()
    page.locator("#paid-so-far").get_by_text("$1,000.00\u00a0USD").wait_for()  # GET <stage>/api/pay/<token>
    ours = [(path, status) for path, status in to_gateway if not path.startswith("/_local/")]
    paths = {path.split("?")[0].rsplit("/", 1)[-1] for path, _ in ours}
    assert {"review", "submit"} <= paths
    assert [(p, s) for p, s in ours if not p.startswith(f"/{STAGE}/") or s >= 400] == []
