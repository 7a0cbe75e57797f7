"""A client of the seeded Quebec firm pays its bill in French, from the first screen to the result,
a declined card included; then switches the page to English."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from firmpay.models.ledger import PaymentStatus
from firmpay.payments.links import hash_token
from tests.e2e.conftest import screenshot
from tests.e2e.test_card_browser import FRENCH, card_section, enter_billing, enter_card

pytestmark = pytest.mark.e2e

CAD = "\u00a0$\u00a0CAD"


def test_a_client_pays_the_quebec_firms_bill_in_french(page: Any, link: dict[str, str], stack: Any) -> None:
    ca_bill = link["ca_bill"]
    # Given the Quebec firm's bill, opened by a browser that asks for English first (Playwright's)
    page.goto(ca_bill)

    # Then the page is in French: its language, its words, its amounts and dates
    assert page.evaluate("() => document.documentElement.lang") == "fr-CA"
    assert page.get_by_role("heading", level=1).inner_text() == "Facture F-3310"
    assert page.locator("#balance-due").inner_text() == f"1\u00a0605,75{CAD}"
    section = card_section(page, FRENCH)
    assert section.get_by_label("Montant du paiement (CAD)").input_value() == "1605,75"
    assert section.get_by_label(FRENCH["name"]).input_value() == "Camille Gagnon"
    assert "Solde dû\u00a0: 1\u00a0605,75" in section.locator("#card-amount-hint").inner_text()
    screenshot(page, "pay-page-fr-375")

    # When they review with half a card number: Stripe.js says so in the page's language
    section.get_by_placeholder("number").fill("4000")
    enter_billing(page, FRENCH)
    section.get_by_role("button", name=FRENCH["review"]).click()
    section.locator("#card-error").get_by_text("Le numéro de votre carte est incomplet.").wait_for()

    # When they pay with a card that the bank declines
    enter_card(page, "4000000000000002", FRENCH)
    section.get_by_role("button", name=FRENCH["review"]).click()
    section.get_by_role("heading", name=FRENCH["review_title"]).wait_for()
    review = section.locator("#card-review").inner_text()
    assert f"1\u00a0605,75{CAD}" in review
    assert "Facture F-3310" in review
    assert (
        "Paiement au compte d'exploitation du cabinet (Opérations (Desjardins) \u2022\u2022\u2022\u20221188)" in review
    )
    assert "Visa se terminant par 0002" in review
    assert "J'autorise Tremblay Avocats s.e.n.c.r.l. à débiter" in section.locator("#card-store-text").inner_text()
    screenshot(page, "card-review-fr-375")
    section.get_by_role("button", name=FRENCH["submit"]).click()

    # Then the refusal is in French, in the card's error box
    refusal = section.locator("#card-error")
    refusal.wait_for(state="visible")
    assert refusal.inner_text() == "Votre carte a été refusée. Veuillez utiliser une autre carte."

    # When they pay with another card and keep it for later
    enter_card(page, "4242424242424242", FRENCH)
    section.get_by_role("button", name=FRENCH["review"]).click()
    section.get_by_role("heading", name=FRENCH["review_title"]).wait_for()
    section.get_by_role("checkbox", name=FRENCH["store"]).check()
    section.get_by_role("button", name=FRENCH["submit"]).click()

    # Then the result, the summary and the ledger say it is paid, and the consent is the French text
    result = page.locator("#result")
    result.get_by_role("heading", name="Paiement réussi").wait_for()
    text = result.inner_text()
    assert "Un courriel de confirmation vous sera envoyé sous peu." in text
    assert "Nouveau solde" in text
    assert f"0,00{CAD}" in text
    page.locator("#paid-so-far").get_by_text(f"1\u00a0605,75{CAD}").wait_for()  # the summary, in French too
    screenshot(page, "card-paid-fr-375")
    payable_id = stack.ledger.get_link(hash_token(ca_bill.rsplit("/", 1)[1])).payable_id
    payable, payments = stack.ledger.get_payable_with_payments(payable_id)
    assert sorted(p.status for p in payments) == [PaymentStatus.FAILED, PaymentStatus.SUCCEEDED]
    assert payable.balance_minor == 0
    stack.ledger.check_invariant(payable_id)
    (method,) = stack.ledger.list_methods(payable.firm_id, payable.client_id)
    assert method.consent.text_version == "store-method-v1.fr-CA"
    shown = page.locator("#card-store-text").text_content()  # the section is hidden behind the result
    label = FRENCH["store"] + ". "
    assert method.consent.text_sha256 == hashlib.sha256((label + shown).encode()).hexdigest()
    assert [e for e in page.console_errors if "FirmPay" in e or "Content Security Policy" in e] == []

    # When they switch the page to English
    page.get_by_role("link", name="English").click()

    # Then the same bill is shown in English, paid
    page.get_by_role("heading", name="Bill F-3310").wait_for()
    assert page.evaluate("() => document.documentElement.lang") == "en-CA"
    assert page.get_by_role("heading", name="Paid in full — thank you").is_visible()
    assert page.locator("#balance-due").inner_text() == "$0.00\u00a0CAD"
    assert page.get_by_role("link", name="Français").is_visible()
