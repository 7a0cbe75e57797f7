"""A new client of a US firm pays by eCheck in chromium: from the card section to eCheck, through the
Plaid emulator's Link (an exit first, then the bank that asks for reCAPTCHA), the withdrawal
authorization, to a processing payment; a Canadian firm's page offers no eCheck at all."""

from __future__ import annotations

import re
from typing import Any

import pytest

from firmpay.models.ledger import PaymentStatus
from firmpay.payments.links import hash_token
from tests.e2e.conftest import axe_run, described, screenshot

pytestmark = pytest.mark.e2e

LINK_FRAME = 'iframe[title="Plaid Link"]'
AUTHORIZE = re.compile(r"^By checking this box, I authorize ")
STORE = "Securely store this payment method for future use"


def card_section(page: Any) -> Any:
    return page.get_by_role("region", name="Pay by Credit Card")


def echeck_section(page: Any) -> Any:
    return page.get_by_role("region", name="Pay by eCheck")


def switch_to_echeck(page: Any) -> Any:
    card_section(page).get_by_role("button", name="Pay by eCheck").click()
    section = echeck_section(page)
    section.get_by_role("heading", name="Pay by eCheck").wait_for()
    return section


def plaid_link(page: Any) -> Any:
    return page.frame_locator(LINK_FRAME)


def sign_in_and_choose(page: Any, bank: str, account: str = "Plaid Checking \u2022\u2022\u2022\u20220000") -> None:
    """In an open Link: Continue -> search and pick ``bank`` -> (reCAPTCHA) -> sign in -> the account."""
    link = plaid_link(page)
    link.get_by_role("button", name="Continue").click()
    link.get_by_role("textbox", name="Search for your bank").fill(bank.split()[0])
    link.get_by_role("button", name=bank).click()
    if bank == "Houndstooth Bank":  # institutions.py: the one that always asks for reCAPTCHA
        link.get_by_role("heading", name="Verify you are human").wait_for()
        assert "audio challenge" in link.locator("#captcha-audio").inner_text()  # WCAG 2.2, 3.3.8
        link.get_by_role("checkbox", name="I'm not a robot").check()
        link.get_by_role("button", name="Continue").click()
    link.get_by_role("textbox", name="Username").fill("user_good")
    link.get_by_role("textbox", name="Password").fill("pass_good")
    link.get_by_role("button", name="Submit").click()
    link.get_by_role("radio", name=account).check()
    link.get_by_role("button", name="Continue").click()


def connect_bank(page: Any, bank: str) -> None:
    section = echeck_section(page)
    section.get_by_role("button", name="Select your bank").click()
    sign_in_and_choose(page, bank)
    section.locator("#echeck-bank-status").get_by_text(f"{bank} \u2022\u2022\u2022\u20220000").wait_for()


def payable_id_of(stack: Any, url: str) -> str:
    return str(stack.ledger.get_link(hash_token(url.rsplit("/", 1)[1])).payable_id)


def no_horizontal_scroll(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375


def test_a_new_client_leaves_link_once_then_pays_by_echeck(page: Any, link: dict[str, str], stack: Any) -> None:
    # Given a new client on a US firm's bill, in the card section
    page.goto(link["us_bill"])
    payable_id = payable_id_of(stack, link["us_bill"])
    before = stack.ledger.get_payable(payable_id)

    # When they switch to eCheck
    section = switch_to_echeck(page)
    assert not card_section(page).is_visible()
    assert page.evaluate("() => document.activeElement.id") == "echeck-title"
    assert section.get_by_label("Payment amount (USD)").input_value() == "3500.50"
    assert section.get_by_label("Account holder name").input_value() == "Jordan Ellis"
    no_horizontal_scroll(page)
    screenshot(page, "echeck-form-375")

    # and leave Link at its first screen: the page says so and offers another try or the card
    section.get_by_role("button", name="Select your bank").click()
    plaid_link(page).get_by_role("heading", name="Connect your bank account").wait_for()
    plaid_link(page).get_by_role("button", name="Exit").first.click()
    message = section.get_by_role("alert").filter(has_text="You left the bank sign-in")
    message.wait_for()
    assert "Nothing was withdrawn." in message.inner_text()
    assert section.get_by_role("button", name="Pay by card instead").is_visible()
    assert page.evaluate("() => document.activeElement.id") == "echeck-try-again"
    screenshot(page, "echeck-link-exited-375")

    # then try again with the bank that asks for reCAPTCHA
    section.get_by_role("button", name="Try again").click()
    sign_in_and_choose(page, "Houndstooth Bank")
    bank = section.locator("#echeck-bank-status")
    bank.get_by_text("Houndstooth Bank \u2022\u2022\u2022\u20220000").wait_for()
    assert not section.get_by_role("button", name="Try again").is_visible()

    # and review a partial payment
    section.get_by_label("Payment amount (USD)").fill("1000.00")
    section.get_by_role("button", name="Review payment").click()
    section.get_by_role("heading", name="Review your payment").wait_for()
    review = section.locator("#echeck-review").inner_text()
    assert "$1,000.00\u00a0USD" in review
    assert section.locator("#echeck-review-currency").inner_text() == "USD"
    assert "Bill B-1042" in review
    assert "Houndstooth Bank \u2022\u2022\u2022\u20220000" in review
    assert "Jordan Ellis" in review
    authorize = section.get_by_role("checkbox", name=AUTHORIZE)
    mandate = section.locator("#echeck-mandate-text").inner_text()
    assert "I authorize Hartley & Vance LLP to electronically debit my account Houndstooth Bank" in mandate
    assert "one-time payment of $1,000.00\u00a0USD" in mandate
    assert "revoke this authorization" in mandate
    assert not authorize.is_checked()
    assert not section.get_by_role("checkbox", name=STORE).is_checked()
    no_horizontal_scroll(page)
    screenshot(page, "echeck-review-375")

    # Submit without the authorization is refused by the page (nothing sent), so nothing is reserved
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    section.get_by_role("button", name="Submit payment").click()
    refusal = section.locator("#echeck-authorize-error")
    refusal.wait_for(state="visible")
    assert "authorizing the withdrawal" in refusal.inner_text()
    assert [url for url in sent if "/echeck/submit" in url] == []
    assert page.evaluate("() => document.activeElement.id") == "echeck-authorize"
    unchanged = stack.ledger.check_invariant(payable_id)
    assert (unchanged.balance_minor, unchanged.pending_minor) == (before.balance_minor, 0)

    # When they authorize the withdrawal and submit
    authorize.check()
    section.get_by_role("button", name="Submit payment").click()

    # Then the payment is submitted and processing
    result = page.locator("#result")
    result.get_by_role("heading", name="Payment submitted").wait_for()
    text = result.inner_text()
    assert "The withdrawal is processing and usually completes within a few business days." in text
    assert "$1,000.00\u00a0USD" in text
    assert "Houndstooth Bank \u2022\u2022\u2022\u20220000" in text
    assert "$2,500.50\u00a0USD" in text
    assert page.evaluate("() => document.activeElement.id") == "result"
    payable, payments = stack.ledger.get_payable_with_payments(payable_id)
    (payment,) = payments
    assert payment.reference in text
    assert payment.status is PaymentStatus.PROCESSING
    assert payment.mandate is not None
    assert payment.mandate.account_last4 == "0000"
    assert payment.mandate.text == mandate
    assert not payment.store_method
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (0, 100_000, 250_050)
    stack.ledger.check_invariant(payable_id)

    # and the summary follows the ledger: nothing paid yet, the debit processing, the rest due
    page.locator("#pending-row").wait_for()
    assert page.locator("#paid-so-far").inner_text() == "$0.00\u00a0USD"
    assert page.locator("#pending-amount").inner_text() == "$1,000.00\u00a0USD"
    assert page.locator("#balance-due").inner_text() == "$2,500.50\u00a0USD"
    no_horizontal_scroll(page)
    screenshot(page, "echeck-submitted-375")
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []


def test_a_client_who_ticks_store_keeps_the_bank_account_for_later(page: Any, link: dict[str, str], stack: Any) -> None:
    # Given a client who connected a bank and reviews a payment of the whole trust request
    page.goto(link["us_trust"])
    payable_id = payable_id_of(stack, link["us_trust"])
    section = switch_to_echeck(page)
    connect_bank(page, "First Platypus Bank")
    section.get_by_role("button", name="Review payment").click()
    section.get_by_role("heading", name="Review your payment").wait_for()
    assert "Trust request TR-2087" in section.locator("#echeck-review").inner_text()
    assert "future bills and payment-plan installments" in section.locator("#echeck-store-text").inner_text()

    # When they authorize the withdrawal, tick the store checkbox and submit
    section.get_by_role("checkbox", name=AUTHORIZE).check()
    section.get_by_role("checkbox", name=STORE).check()
    section.get_by_role("button", name="Submit payment").click()

    # Then the payment is processing and the bank account is stored for this client and firm
    page.locator("#result").get_by_role("heading", name="Payment submitted").wait_for()
    payable, (payment,) = stack.ledger.get_payable_with_payments(payable_id)
    assert payment.status is PaymentStatus.PROCESSING
    assert payment.store_method
    assert payment.stored_method_id is not None
    (method,) = stack.ledger.list_methods(payment.firm_id, payment.client_id)
    assert method.method_id == payment.stored_method_id
    assert method.summary.label() == "First Platypus Bank \u2022\u2022\u2022\u20220000"
    assert payable.balance_minor == 0
    assert page.locator("#balance-due").inner_text() == "$0.00\u00a0USD"
    stack.ledger.check_invariant(payable_id)


def test_a_canadian_firms_page_offers_no_echeck(page: Any, link: dict[str, str]) -> None:
    page.goto(link["ca_bill"])  # the Quebec firm's page opens in French
    page.get_by_role("region", name="Payer par carte de crédit").get_by_role("heading").first.wait_for()

    for name in ("Pay by eCheck", "Payer par chèque électronique"):
        assert page.get_by_role("button", name=name).count() == 0
        assert page.get_by_role("region", name=name).count() == 0
    html = page.content()
    assert "echeck-section" not in html
    assert "link-initialize.js" not in html


def test_the_client_switches_to_echeck_and_back_to_card(page: Any, link: dict[str, str]) -> None:
    page.goto(link["us_trust"])
    section = switch_to_echeck(page)

    section.get_by_role("button", name="Review payment").click()
    assert section.locator("#echeck-error").inner_text() == "Select your bank first."
    section.get_by_role("button", name="Pay by Credit Card instead").click()

    card = card_section(page)
    card.get_by_role("heading", name="Pay by Credit Card").wait_for()
    assert not echeck_section(page).is_visible()
    assert page.evaluate("() => document.activeElement.id") == "card-title"
    assert card.get_by_role("button", name="Pay by eCheck").is_visible()


def test_a_bank_error_in_link_is_explained_with_a_way_to_pay_by_card(page: Any, link: dict[str, str]) -> None:
    page.goto(link["us_bill"])
    section = switch_to_echeck(page)
    section.get_by_role("button", name="Select your bank").click()
    frame = plaid_link(page)
    frame.get_by_role("button", name="Continue").click()
    frame.get_by_role("textbox", name="Search for your bank").fill("Tartan")
    frame.get_by_role("button", name="Tartan Bank").click()
    frame.get_by_role("textbox", name="Username").fill("user_good")
    frame.get_by_role("textbox", name="Password").fill("error_INSTITUTION_DOWN")
    frame.get_by_role("button", name="Submit").click()
    frame.get_by_role("heading", name="Your bank is unavailable").wait_for()

    frame.get_by_role("button", name="Exit").first.click()

    message = section.locator("#echeck-link-message")
    message.wait_for()
    assert "Nothing was withdrawn." in message.inner_text()
    assert "left the bank sign-in" not in message.inner_text()
    section.get_by_role("button", name="Pay by card instead").click()
    card_section(page).get_by_role("heading", name="Pay by Credit Card").wait_for()


def test_no_wcag_22_aa_violation_in_the_echeck_form(browser: Any, link: dict[str, str]) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.goto(link["us_bill"])
    switch_to_echeck(page)
    violations = axe_run(page)
    context.close()
    assert violations == [], described(violations)


def test_no_wcag_22_aa_violation_in_the_echeck_review(browser: Any, link: dict[str, str]) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.goto(link["us_bill"])
    section = switch_to_echeck(page)
    connect_bank(page, "First Platypus Bank")
    section.get_by_role("button", name="Review payment").click()
    section.get_by_role("heading", name="Review your payment").wait_for()
    violations = axe_run(page)
    context.close()
    assert violations == [], described(violations)
