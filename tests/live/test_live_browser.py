"""3-D Secure in chromium with Stripe.js itself (test mode): the card goes into Stripe's own card
element iframe and the bank's challenge is Stripe's test 3-D Secure page, completed by its
"Complete" button (Stripe docs, "Testing", 3D Secure test cards). Never run on the machines that
wrote it: Stripe's iframes and their fields are Stripe's to change, so when this fails first read
what the page shows (``.local/screenshots/live-3ds-*.png``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import screenshot
from tests.live.test_live_payments import intent_of, open_live_link

pytestmark = pytest.mark.live

STRIPE_CARD_FRAME = 'iframe[title="Secure card payment input frame"]'
STRIPE_CHALLENGE_FRAME = 'iframe[name^="__privateStripeFrame"][src*="three-ds-2-challenge"], iframe[src*="authorize"]'


@pytest.fixture
def live_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    yield page
    context.close()


def test_a_client_completes_stripe_s_test_3d_secure_challenge(live: Any, live_page: Any) -> None:
    link = open_live_link(live, kind="trust_request", amounts=(500_000,))
    page = live_page
    page.goto(f"{live.urls['gateway']}/pay/{link.token}")
    section = page.get_by_role("region", name="Pay by Credit Card")
    section.get_by_label("Payment amount (USD)").fill("1000.00")
    card = page.frame_locator(STRIPE_CARD_FRAME)
    card.locator('input[name="cardnumber"]').fill("4000 0027 6000 3184")
    card.locator('input[name="exp-date"]').fill("12 / 34")
    card.locator('input[name="cvc"]').fill("123")
    section.get_by_label("Address").fill("1 Main St")
    section.get_by_label("City").fill("Springfield")
    section.get_by_label("State / Province").fill("IL")
    section.get_by_label("Postal code").fill("62701")
    section.get_by_role("button", name="Review payment").click()
    section.get_by_role("heading", name="Review your payment").wait_for(timeout=30_000)
    section.get_by_role("button", name="Submit payment").click()

    challenge = page.frame_locator(STRIPE_CHALLENGE_FRAME).first
    try:
        challenge.get_by_role("button", name="Complete").click(timeout=60_000)
        result = page.get_by_role("status")
        result.get_by_role("heading", name="Payment successful").wait_for(timeout=60_000)
    finally:
        screenshot(page, "live-3ds-end")

    _, payments = link.ledger.get_payable_with_payments(link.payable_id)
    assert [p.status.value for p in payments] == ["succeeded"]
    assert intent_of(link, payments[0].payment_id).status == "succeeded"
    assert link.invariant().paid_minor == 100_000
