"""A new client pays a seeded pay link by card in chromium: a decline then another card, 3-D Secure
through the bank's modal, edit after review; at phone width, without serious accessibility issues."""

from __future__ import annotations

from typing import Any

import pytest

from firmpay.payments.links import hash_token
from tests.e2e.conftest import axe_run, axe_violations, described, screenshot
from tests.support.card_stack import payable_of, stripe_client

pytestmark = pytest.mark.e2e


# What the card section says, in the page's language (the seeded Quebec firm's page is in French).
ENGLISH = {
    "section": "Pay by Credit Card",
    "amount": "Payment amount",
    "name": "Cardholder name",
    "address": "Address",
    "city": "City",
    "state": "State / Province",
    "postal": "Postal code",
    "country": "Country",
    "review": "Review payment",
    "review_title": "Review your payment",
    "store": "Securely store this payment method for future use",
    "submit": "Submit payment",
    "edit": "Edit",
}
FRENCH = {
    "section": "Payer par carte de crédit",
    "amount": "Montant du paiement",
    "name": "Nom du titulaire de la carte",
    "address": "Adresse",
    "city": "Ville",
    "state": "Province / État",
    "postal": "Code postal",
    "country": "Pays",
    "review": "Vérifier le paiement",
    "review_title": "Vérifiez votre paiement",
    "store": "Enregistrer ce mode de paiement de façon sécurisée pour un usage futur",
    "submit": "Soumettre le paiement",
    "edit": "Modifier",
}


def card_section(page: Any, words: dict[str, str] = ENGLISH) -> Any:
    return page.get_by_role("region", name=words["section"])


def enter_card(page: Any, number: str, words: dict[str, str] = ENGLISH) -> None:
    """Type a card into the card element (locally the emulator's Stripe.js renders plain inputs)."""
    section = card_section(page, words)
    section.get_by_placeholder("number").fill(number)
    section.get_by_placeholder("exp_month").fill("12")
    section.get_by_placeholder("exp_year").fill("34")
    section.get_by_placeholder("cvc").fill("123")


def enter_billing(page: Any, words: dict[str, str] = ENGLISH) -> None:
    section = card_section(page, words)
    section.get_by_label(words["address"]).fill("1 Main St")
    section.get_by_label(words["city"]).fill("Springfield")
    section.get_by_label(words["state"]).fill("IL")
    section.get_by_label(words["postal"]).fill("62701")


def review_and_submit(page: Any, store: bool = False, words: dict[str, str] = ENGLISH) -> None:
    section = card_section(page, words)
    section.get_by_role("button", name=words["review"]).click()
    section.get_by_role("heading", name=words["review_title"]).wait_for()
    if store:
        section.get_by_role("checkbox", name=words["store"]).check()
    section.get_by_role("button", name=words["submit"]).click()


def no_horizontal_scroll(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375


def test_a_new_client_is_declined_then_pays_with_another_card(page: Any, link: dict[str, str], stack: Any) -> None:
    page.goto(link["us_bill"])
    section = card_section(page)
    section.get_by_role("heading", name="Pay by Credit Card").wait_for()
    assert section.get_by_label("Payment amount (USD)").input_value() == "3500.50"
    assert section.get_by_label("Cardholder name").input_value() == "Jordan Ellis"
    assert section.get_by_label("Country").input_value() == "US"
    assert section.get_by_role("group", name="Billing information").is_visible()
    enter_card(page, "4000000000000002")
    enter_billing(page)
    no_horizontal_scroll(page)
    screenshot(page, "card-form-375")

    section.get_by_role("button", name="Review payment").click()
    section.get_by_role("heading", name="Review your payment").wait_for()
    review = section.locator("#card-review").inner_text()
    assert "$3,500.50\u00a0USD" in review
    assert "Bill B-1042" in review
    assert "ending in 0002" in review
    assert "Jordan Ellis" in review
    assert "future bills and payment-plan installments" in section.locator("#card-store-text").inner_text()
    no_horizontal_scroll(page)
    screenshot(page, "card-review-375")
    section.get_by_role("button", name="Submit payment").click()

    alert = section.locator("#card-error")
    alert.wait_for(state="visible")
    assert alert.get_attribute("role") == "alert"
    assert "declined" in alert.inner_text()
    assert section.get_by_role("button", name="Review payment").is_visible()
    screenshot(page, "card-declined-375")

    enter_card(page, "4242424242424242")
    review_and_submit(page)

    result = page.get_by_role("status")
    result.get_by_role("heading", name="Payment successful").wait_for()
    text = result.inner_text()
    assert "$3,500.50\u00a0USD" in text
    assert "Visa" in text
    assert "FP-" in text
    assert "New balance" in text
    assert "$0.00\u00a0USD" in text
    assert "A confirmation email is on its way." in text
    assert page.locator("#balance-due").inner_text() == "$0.00\u00a0USD"
    page.locator("#paid-so-far").get_by_text("$3,500.50\u00a0USD").wait_for()  # follows the ledger too
    no_horizontal_scroll(page)
    screenshot(page, "card-paid-375")
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []


@pytest.mark.parametrize("complete", [True, False])
def test_three_d_secure_in_the_banks_modal(page: Any, link: dict[str, str], complete: bool) -> None:
    page.goto(link["us_trust"])
    section = card_section(page)
    section.get_by_label("Payment amount (USD)").fill("1000.00")
    enter_card(page, "4000002760003184")
    enter_billing(page)

    review_and_submit(page)
    button = "Complete authentication" if complete else "Fail authentication"
    page.get_by_role("button", name=button).click()

    if complete:
        result = page.get_by_role("status")
        result.get_by_role("heading", name="Payment successful").wait_for()
        assert "$1,000.00\u00a0USD" in result.inner_text()
        assert "$4,000.00\u00a0USD" in result.inner_text()
        screenshot(page, "card-3ds-paid-375")
    else:
        alert = section.locator("#card-error")
        alert.wait_for(state="visible")
        assert "Nothing was charged" in alert.inner_text()
        assert section.get_by_role("button", name="Review payment").is_visible()


def test_edit_returns_to_the_form_with_its_values(page: Any, link: dict[str, str]) -> None:
    # Given the Quebec firm's bill (its page is in French) filled in and reviewed
    page.goto(link["ca_bill"])
    section = card_section(page, FRENCH)
    assert section.get_by_label(FRENCH["country"]).input_value() == "CA"
    section.get_by_label("Montant du paiement (CAD)").fill("100,00")
    enter_card(page, "4242424242424242", FRENCH)
    enter_billing(page, FRENCH)
    section.get_by_role("button", name=FRENCH["review"]).click()
    section.get_by_role("heading", name=FRENCH["review_title"]).wait_for()
    assert "100,00\u00a0$\u00a0CAD" in section.locator("#card-review").inner_text()

    # When the client goes back to change something
    section.get_by_role("button", name=FRENCH["edit"]).click()

    # Then everything they typed is still there: nothing is asked twice (WCAG 2.2, 3.3.7)
    assert section.get_by_label("Montant du paiement (CAD)").input_value() == "100,00"
    assert section.get_by_label(FRENCH["city"]).input_value() == "Springfield"
    assert section.get_by_label(FRENCH["name"]).input_value() == "Camille Gagnon"
    assert section.get_by_placeholder("number").input_value() == "4242424242424242"
    assert page.evaluate("() => document.activeElement.id") == "card-amount"
    assert section.get_by_role("button", name=FRENCH["review"]).is_visible()


def test_amounts_are_checked_before_anything_is_sent(page: Any, link: dict[str, str], stack: Any) -> None:
    page.goto(link["us_bill"])
    page.wait_for_load_state("networkidle")
    section = card_section(page)
    enter_card(page, "4242424242424242")
    enter_billing(page)
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.method} {request.url}"))

    section.get_by_label("Payment amount (USD)").fill("5000")
    section.get_by_role("button", name="Review payment").click()
    assert "more than the balance due" in section.locator("#card-amount-error").inner_text()
    section.get_by_label("Payment amount (USD)").fill("0.10")
    section.get_by_role("button", name="Review payment").click()
    assert "minimum payment" in section.locator("#card-amount-error").inner_text()

    # Nothing went to FirmPay or to Stripe: no card made, no review asked for
    page.wait_for_timeout(300)  # a request the click started would have been issued by now
    assert [s for s in sent if s.startswith("POST")] == [], sent


def test_double_clicking_submit_charges_once(page: Any, link: dict[str, str], stack: Any) -> None:
    page.goto(link["us_bill"])
    enter_card(page, "4242424242424242")
    enter_billing(page)
    section = card_section(page)
    section.get_by_role("button", name="Review payment").click()
    section.get_by_role("heading", name="Review your payment").wait_for()

    section.get_by_role("button", name="Submit payment").dblclick()

    page.get_by_role("status").get_by_role("heading", name="Payment successful").wait_for()
    token = link["us_bill"].rsplit("/", 1)[1]
    assert [pi.status for pi in stripe_intents_for(stack, token)] == ["succeeded"]
    stack.ledger.check_invariant(stack.ledger.get_link(hash_token(token)).payable_id)


@pytest.mark.parametrize("state", ["form", "review"])
def test_no_wcag_22_aa_violation(browser: Any, link: dict[str, str], state: str) -> None:
    if state == "form":
        violations = axe_violations(browser, link["us_bill"])
    else:
        context = browser.new_context(viewport={"width": 375, "height": 900}, bypass_csp=True)
        page = context.new_page()
        page.goto(link["us_bill"])
        enter_card(page, "4242424242424242")
        enter_billing(page)
        card_section(page).get_by_role("button", name="Review payment").click()
        card_section(page).get_by_role("heading", name="Review your payment").wait_for()
        violations = axe_run(page)
        context.close()
    assert violations == [], described(violations)


def test_an_incomplete_card_is_refused_in_the_browser(page: Any, link: dict[str, str], stack: Any) -> None:
    page.goto(link["us_bill"])
    section = card_section(page)
    section.get_by_placeholder("number").fill("4242")
    enter_billing(page)

    section.get_by_role("button", name="Review payment").click()

    alert = section.locator("#card-error")
    alert.wait_for(state="visible")
    assert alert.inner_text() == "Your card number is incomplete."
    token = link["us_bill"].rsplit("/", 1)[1]
    assert stripe_intents_for(stack, token) == []


def test_stripe_js_reports_a_failed_challenge_as_stripe_does(page: Any, link: dict[str, str], stack: Any) -> None:
    page.goto(link["us_bill"])
    enter_card(page, "4000002760003184")
    enter_billing(page)
    review_and_submit(page)
    page.get_by_role("button", name="Fail authentication").wait_for()
    page.get_by_role("button", name="Fail authentication").click()
    card_section(page).locator("#card-error").wait_for(state="visible")
    token = link["us_bill"].rsplit("/", 1)[1]
    (intent,) = stripe_intents_for(stack, token)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "payment_intent_authentication_failure"

    # A malformed client secret is refused without a modal, as Stripe.js does (an IntegrationError).
    assert page.evaluate(THROWN, ["handleNextAction", {"clientSecret": "not-a-secret"}]) == "IntegrationError"


# Calls one Stripe.js function in the page; the name of what it threw, or its result.
THROWN = """async ([name, argument]) => {
  try { return await Stripe('pk_test_local')[name](argument); } catch (error) { return error.name; }
}"""


def test_stripe_js_refuses_what_real_stripe_js_refuses(page: Any, link: dict[str, str], stack: Any) -> None:
    # Given a card payment waiting for the bank's challenge (automatic confirmation, as we create it)
    page.goto(link["us_bill"])
    enter_card(page, "4000002760003184")
    enter_billing(page)
    review_and_submit(page)
    page.get_by_role("button", name="Complete authentication").wait_for()
    token = link["us_bill"].rsplit("/", 1)[1]
    (intent,) = stripe_intents_for(stack, token)
    assert (intent.status, intent.confirmation_method) == ("requires_action", "automatic")

    # handleCardAction is for manual confirmation only: refused, without a second challenge
    refused = page.evaluate(THROWN, ["handleCardAction", intent.client_secret])
    assert "does not require manual server-side confirmation" in refused["error"]["message"]
    assert page.get_by_role("button", name="Complete authentication").count() == 1

    # the page's own call (handleNextAction) completes the challenge and the payment
    page.get_by_role("button", name="Complete authentication").click()
    page.get_by_role("status").get_by_role("heading", name="Payment successful").wait_for()

    # and once the intent succeeded, there is no next action to handle
    assert page.evaluate(THROWN, ["handleNextAction", {"clientSecret": intent.client_secret}]) == "IntegrationError"
    secret_key = "async () => { try { Stripe('sk_test_local'); return 'made'; } catch (error) { return error.name; } }"
    assert page.evaluate(secret_key) == "IntegrationError"


def stripe_intents_for(stack: Any, token: str) -> list[Any]:
    payable_id = stack.ledger.get_link(hash_token(token)).payable_id
    client = stripe_client(stack.urls["stripe"])
    return [
        pi
        for pi in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        if payable_of(pi) == payable_id
    ]
