"""The pages' languages: which one a page opens in, what it then says, and a complete catalogue."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from firmpay import i18n
from firmpay.errors import AmountBelowMinimum, AmountOverBalance
from firmpay.i18n import Language, Preferences, page_language, request_preferences
from firmpay.ledger import LinkContext
from firmpay.models.ledger import (
    Client,
    Consent,
    LineItem,
    MethodSummary,
    Payable,
    PayLink,
    StoredMethod,
    new_id,
)
from firmpay.money import Money
from firmpay.payments.checkout import STORE_METHOD_TEXT_VERSION, store_method_consent
from firmpay.payments.method_removal import RemovalView
from firmpay.web import pages
from local.catalogue import problems
from tests.support.factories import make_firm

US = make_firm("US")
CA_ENGLISH = make_firm("CA", language="en")
QUEBEC = make_firm("CA", language="fr")


def test_the_catalogue_translates_every_string_into_french_and_is_compiled() -> None:
    # Every string of the templates, the scripts' texts and the client-facing errors is in the
    # .po files, fr-CA translates each with the same placeholders, and the .mo files are current.
    assert problems() == []


@pytest.mark.parametrize(
    ("firm", "accept", "requested", "expected"),
    [
        (US, "fr-CA,fr;q=0.9", "", "en-US"),  # a US firm offers English only
        (US, "", "fr-CA", "en-US"),
        (CA_ENGLISH, "fr-CA,fr;q=0.9,en;q=0.8", "", "fr-CA"),  # follows the browser
        (CA_ENGLISH, "fr-FR", "", "fr-CA"),  # the same language, another country
        (CA_ENGLISH, "en-GB,en;q=0.9", "", "en-CA"),
        (CA_ENGLISH, "de-DE", "", "en-CA"),  # none offered: the firm's own
        (CA_ENGLISH, "fr;q=0.1, en;q=0.9", "", "en-CA"),  # by quality, not by order
        (CA_ENGLISH, "fr;q=0", "", "en-CA"),  # q=0 means "not this one"
        (CA_ENGLISH, "", "", "en-CA"),
        (QUEBEC, "en-US,en;q=0.9", "", "fr-CA"),  # a French-language firm's page opens in French
        (QUEBEC, "en-US", "en-CA", "en-CA"),  # ... and its switch leads to English
        (QUEBEC, "", "de-DE", "fr-CA"),  # a language it does not offer is ignored
    ],
)
def test_a_page_opens_in_a_language_the_firm_offers(firm, accept, requested, expected) -> None:  # type: ignore[no-untyped-def]
    assert page_language(firm, Preferences(accept_language=accept, requested=requested)) == expected


def test_a_page_without_a_firm_follows_the_browser_among_all_languages() -> None:
    assert page_language(None, Preferences(accept_language="fr")) == "fr-CA"
    assert page_language(None, Preferences(accept_language="es, *;q=0.5")) == "en-US"
    assert page_language(None, Preferences(accept_language="garbage;;q=x")) == "en-US"


def context_of(firm_language: str, kind: str = "bill") -> LinkContext:
    firm = QUEBEC if firm_language == "fr" else US
    client = Client(client_id=new_id("cli"), firm_id=firm.firm_id, name="Camille Gagnon", email="c@example.com")
    payable = Payable(
        payable_id=new_id("pbl"),
        firm_id=firm.firm_id,
        client_id=client.client_id,
        kind=kind,  # type: ignore[arg-type]
        number="F-3310",
        issued_on=datetime(2026, 11, 2, tzinfo=UTC).date(),
        due_on=datetime(2026, 12, 1, tzinfo=UTC).date(),
        currency=firm.currency,
        line_items=[LineItem(description="Title search", amount_minor=250_000)],
        total_minor=250_000,
        balance_minor=250_000,
    )
    link = PayLink(
        token_hash="0" * 64,
        payable_id=payable.payable_id,
        firm_id=firm.firm_id,
        client_id=client.client_id,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    return LinkContext(link=link, payable=payable, firm=firm, client=client)


def visible_text(html: str) -> str:
    without_scripts = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", without_scripts))


def test_a_quebec_firms_pay_page_is_in_french_with_a_switch_to_english() -> None:
    with request_preferences(Preferences(accept_language="en-US,en;q=0.9")):
        html = pages.render_pay_page(context_of("fr"))

    assert '<html lang="fr-CA">' in html
    text = visible_text(html)
    for french in (
        "Facture F-3310",
        "Payer par carte de crédit",
        "Vérifier le paiement",
        "Solde dû",
        "2 novembre 2026",
    ):
        assert french in text
    assert "2\u00a0500,00\u00a0$\u00a0CAD" in text
    assert 'value="2500,00"' in html  # the amount as a French reader types it
    assert '<a href="?lang=en-CA" hreflang="en-CA" lang="en-CA">English</a>' in html
    # Nothing of the English page is left (the texts of its scripts included)
    for english in ("Pay by Credit Card", "Review payment", "Balance due", "Submit payment", "Nothing was"):
        assert english not in html


def test_the_switch_opens_the_same_page_in_english() -> None:
    with request_preferences(Preferences(accept_language="fr-CA", requested="en-CA")):
        html = pages.render_pay_page(context_of("fr", kind="trust_request"))

    assert '<html lang="en-CA">' in html
    text = visible_text(html)
    assert "Trust request F-3310" in text
    assert "Pay by Credit Card" in text
    assert "$2,500.00\u00a0CAD" in text
    assert '<a href="?lang=fr-CA" hreflang="fr-CA" lang="fr-CA">Français</a>' in html


def test_a_us_firms_page_is_in_english_without_a_switch() -> None:
    with request_preferences(Preferences(accept_language="fr-CA")):
        html = pages.render_pay_page(context_of("en"))

    assert '<html lang="en-US">' in html
    assert "Pay by Credit Card" in html
    assert "?lang=" not in html


def test_every_other_page_says_its_language() -> None:
    with request_preferences(Preferences(accept_language="fr-CA,fr")):
        expired = pages.render_link_error(410, offer_new_link=True)
        removal = pages.render_method_removal("confirm", RemovalView(firm=QUEBEC, method=stored_card()))
        not_found = pages.render_method_removal("not_found")
    assert '<html lang="fr-CA">' in expired
    assert "Ce lien de paiement a expiré" in expired
    assert '<html lang="fr-CA">' in removal
    assert "Retirer Visa \u2022\u2022\u2022\u20224242 enregistré auprès de Tremblay Avocats?" in removal
    assert '<html lang="fr-CA">' in not_found
    with request_preferences(Preferences(accept_language="en-US")):
        english_removal = pages.render_method_removal("confirm", RemovalView(firm=QUEBEC, method=stored_card()))
    assert '<html lang="fr-CA">' in english_removal  # the French firm's page opens in French
    assert 'href="?lang=en-CA"' in english_removal


def stored_card() -> StoredMethod:
    return StoredMethod(
        method_id=new_id("mth"),
        firm_id=QUEBEC.firm_id,
        client_id="cli_x",
        summary=MethodSummary(type="card", brand="visa", last4="4242", exp_month=12, exp_year=2030),
        processor_customer_id="cus_x",
        processor_method_id="pm_x",
        consent=Consent(
            text_version=STORE_METHOD_TEXT_VERSION,
            text_sha256="0" * 64,
            accepted_at=datetime.now(UTC),
            ip_address="203.0.113.7",
            user_agent="test",
        ),
    )


def test_an_error_answers_in_the_language_the_page_asked_for() -> None:
    error = AmountBelowMinimum(
        "The balance left ({balance}) is less than the smallest payment that can be made online. "
        "Please contact the firm to settle it.",
        params={"balance": Money(amount_minor=25, currency="CAD")},
        minimum_minor=50,
    )
    assert error.body()["message"].startswith("The balance left ($0.25\u00a0CAD) is less")
    with request_preferences(Preferences(accept_language="fr-CA")):
        body = error.body()
        over = AmountOverBalance().body()
    assert body["message"].startswith("Le solde restant (0,25\u00a0$\u00a0CAD) est inférieur")
    assert body["details"] == {"minimum_minor": 50}
    assert over == {"code": "amount_over_balance", "message": "Le montant dépasse le solde dû."}


def test_the_store_consent_is_recorded_in_the_language_it_was_shown() -> None:
    english, english_version = store_method_consent("Tremblay Avocats")
    with i18n.language("fr-CA"):
        french, french_version = store_method_consent("Tremblay Avocats")
    assert english_version == STORE_METHOD_TEXT_VERSION
    assert english.startswith("Securely store this payment method")
    assert french_version == f"{STORE_METHOD_TEXT_VERSION}.fr-CA"
    assert french.startswith("Enregistrer ce mode de paiement de façon sécurisée")
    assert "J'autorise Tremblay Avocats à débiter ce mode de paiement" in french


def test_every_text_the_scripts_ask_for_is_on_the_page_and_every_text_is_used() -> None:
    web = Path(pages.__file__).parent
    defined = set(re.findall(r'^  "(\w+)": _\(', (web / "templates" / "_page_texts.html").read_text(), re.M))
    scripts = "".join((web / "static" / name).read_text() for name in ("pay.js", "card.js", "echeck.js"))
    asked = set(re.findall(r"\btext\('(\w+)'", scripts))
    literals = set(re.findall(r"'(\w+)'", scripts))
    assert asked <= defined, asked - defined
    assert defined <= literals | {"new_link_requested"}, defined - literals  # each one is shown somewhere


@pytest.mark.parametrize(
    ("locale", "amount", "day"),
    [
        ("en-US", "$3,500.50\u00a0USD", "November 1, 2026"),
        ("en-CA", "$3,500.50\u00a0CAD", "November 1, 2026"),
        ("fr-CA", "3\u00a0500,50\u00a0$\u00a0CAD", "1 novembre 2026"),  # CLDR: U+00A0 groups, no "1er"
    ],
)
def test_amounts_and_dates_read_as_each_language_writes_them(locale: Language, amount: str, day: str) -> None:
    currency = "USD" if locale == "en-US" else "CAD"
    assert Money(amount_minor=350_050, currency=currency).format(locale) == amount
    assert pages.format_date(date(2026, 11, 1), locale) == day
    assert Money(amount_minor=2_500, currency="USD").format("fr-CA") == "25,00\u00a0$\u00a0USD"  # the code says which $
