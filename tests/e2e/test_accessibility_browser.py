"""WCAG 2.2 AA on the pay page, as a keyboard user and a touch user meet it: a bill paid with the
keyboard alone, focus never hidden, targets at least 24 by 24 CSS pixels, errors announced and
tied to their fields, billing fields that the browser can fill in."""

from __future__ import annotations

from typing import Any

import pytest

from firmpay.models.ledger import PaymentStatus
from firmpay.payments.links import hash_token
from tests.e2e.conftest import screenshot
from tests.e2e.test_card_browser import card_section, enter_billing, enter_card

pytestmark = pytest.mark.e2e

# Where the focus is, and whether a person can see it: inside the viewport, and the top element at
# its centre is the element itself (nothing sticky or fixed drawn over it) (WCAG 2.2, 2.4.11); and
# whether it is the element ``css`` names.
FOCUS = """(css) => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const r = el.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {
    id: el.id, tag: el.tagName, rect: [r.top, r.bottom, r.left, r.right], viewport: [innerWidth, innerHeight],
    // A fraction of a pixel over the edge is how Chrome leaves a field it scrolled to.
    inViewport: r.top >= -1 && r.left >= -1 && r.bottom <= innerHeight + 1 && r.right <= innerWidth + 1,
    onTop: top === el || el.contains(top) || (top !== null && top.control === el),
    wanted: el.matches(css)
  };
}"""

# Every visible control a pointer can hit, with its size (WCAG 2.2, 2.5.8 Target Size (Minimum)).
TARGETS = """() => Array.from(document.querySelectorAll('a[href], button, input, select, textarea, summary'))
  .filter((el) => el.offsetParent !== null && el.type !== 'hidden')
  .map((el) => { const r = el.getBoundingClientRect();
    return {what: el.outerHTML.slice(0, 90), width: r.width, height: r.height}; })
  .filter((t) => t.width > 0 && t.height > 0)"""


def tab_to(page: Any, css: str, limit: int = 40) -> None:
    """Press Tab until ``css`` has the focus, checking at every stop that the focus can be seen."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS, css)
        if focus is None:
            continue
        assert focus["inViewport"], f"the focus is off screen: {focus}"
        assert focus["onTop"], f"the focus is covered: {focus}"
        if focus["wanted"]:
            return
    raise AssertionError(f"{css} did not get the keyboard focus within {limit} presses of Tab")


def type_into(page: Any, css: str, text: str) -> None:
    tab_to(page, css)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_a_client_pays_a_bill_with_the_keyboard_alone(browser: Any, link: dict[str, str], stack: Any) -> None:
    # Given a desktop browser and a client who uses no mouse
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(link["us_bill"])
    page.wait_for_load_state("networkidle")

    # When they tab through the form, typing as they go, and press Enter on the buttons
    type_into(page, "#card-amount", "1000.00")
    type_into(page, '#card-element input[placeholder="number"]', "4242424242424242")
    type_into(page, '#card-element input[placeholder="exp_month"]', "12")
    type_into(page, '#card-element input[placeholder="exp_year"]', "34")
    type_into(page, '#card-element input[placeholder="cvc"]', "123")
    type_into(page, "#billing-line1", "1 Main St")
    type_into(page, "#billing-city", "Springfield")
    type_into(page, "#billing-state", "IL")
    type_into(page, "#billing-postal", "62701")
    tab_to(page, "#card-review-button")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'card-review-title'")
    tab_to(page, "#card-store")
    page.keyboard.press("Space")
    tab_to(page, "#card-submit")
    page.keyboard.press("Enter")

    # Then the result has the focus, and the money moved once, into the ledger
    page.wait_for_function("() => document.activeElement.id === 'result'")
    result = page.locator("#result").inner_text()
    assert "Payment successful" in result
    assert "$1,000.00\u00a0USD" in result
    screenshot(page, "keyboard-paid-1280")
    payable_id = stack.ledger.get_link(hash_token(link["us_bill"].rsplit("/", 1)[1])).payable_id
    payable, (payment,) = stack.ledger.get_payable_with_payments(payable_id)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.store_method  # the checkbox ticked with the space bar
    assert (payable.paid_minor, payable.balance_minor) == (100_000, 250_050)
    stack.ledger.check_invariant(payable_id)
    context.close()


def undersized(page: Any) -> list[dict[str, Any]]:
    return [t for t in page.evaluate(TARGETS) if t["width"] < 24 or t["height"] < 24]


@pytest.mark.parametrize("width", [375, 1280])
def test_every_target_is_at_least_24_css_pixels(browser: Any, link: dict[str, str], width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(link["ca_trust"])  # French, with the language switch
    assert undersized(page) == []
    page.goto(link["us_bill"])
    assert undersized(page) == []  # the card form
    enter_card(page, "4242424242424242")
    enter_billing(page)
    card_section(page).get_by_role("button", name="Review payment").click()
    card_section(page).get_by_role("heading", name="Review your payment").wait_for()
    assert undersized(page) == []  # the review, its checkbox and its links
    page.goto(link["us_bill"])
    card_section(page).get_by_role("button", name="Pay by eCheck").click()
    page.get_by_role("heading", name="Pay by eCheck").wait_for()
    assert undersized(page) == []  # the eCheck form
    context.close()


def test_a_missing_field_is_announced_and_tied_to_its_field(page: Any, link: dict[str, str]) -> None:
    page.goto(link["us_bill"])
    section = card_section(page)
    enter_card(page, "4242424242424242")
    enter_billing(page)
    section.get_by_label("City").fill("")

    section.get_by_role("button", name="Review payment").click()

    city = section.get_by_label("City")
    error = page.locator("#billing-city-error")
    error.wait_for(state="visible")
    assert error.inner_text() == "Enter the city."
    assert error.get_attribute("role") == "alert"  # announced when it appears (an assertive live region)
    assert city.get_attribute("aria-invalid") == "true"
    assert "billing-city-error" in (city.get_attribute("aria-describedby") or "").split()
    assert page.evaluate("() => document.activeElement.id") == "billing-city"
    # Fixing it and reviewing again clears the error and the mark
    city.fill("Springfield")
    section.get_by_role("button", name="Review payment").click()
    section.get_by_role("heading", name="Review your payment").wait_for()
    assert city.get_attribute("aria-invalid") is None
    assert not error.is_visible()


def test_every_billing_field_says_what_the_browser_may_fill_in(page: Any, link: dict[str, str]) -> None:
    page.goto(link["us_bill"])
    fields = page.locator("#card-form fieldset:has(legend) input, #card-form fieldset:has(legend) select")
    billing = {
        f.get_attribute("id"): f.get_attribute("autocomplete")
        for f in fields.all()
        if (f.get_attribute("id") or "").startswith("billing-")
    }
    assert billing == {
        "billing-name": "cc-name",
        "billing-line1": "address-line1",
        "billing-city": "address-level2",
        "billing-state": "address-level1",
        "billing-postal": "postal-code",
        "billing-country": "country",
    }
    card_section(page).get_by_role("button", name="Pay by eCheck").click()
    assert page.locator("#echeck-name").get_attribute("autocomplete") == "name"


def test_the_security_check_names_its_audio_alternative(page: Any, link: dict[str, str]) -> None:
    page.goto(link["us_bill"])
    note = page.locator("#card-captcha-audio")
    assert "audio challenge" in note.text_content()
    page.goto(link["ca_bill"])
    assert "défi audio" in page.locator("#card-captcha-audio").text_content()
