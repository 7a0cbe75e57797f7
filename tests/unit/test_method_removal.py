"""The "Remove it" link of a stored method in the client's confirmation email: the email context
and content (in-process), and the link issued once per sent email (``ledger`` fixture, DynamoDB Local)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import botocore.session
import pytest

from firmpay.emails.confirmations import MailSettings, payment_email, payment_email_context, send_payment_emails
from firmpay.emails.notifications import EmailKind, PaymentChange
from firmpay.ledger import Ledger
from firmpay.models.ledger import Client, MethodSummary, Payable, Payment, PaymentStatus, StoredMethod, new_id
from firmpay.payments.links import hash_token
from firmpay.payments.method_removal import RemovalOffer, find_removal, removable_method
from tests.support.autopay_stack import store_consent
from tests.support.factories import Billed, card_payment, create_billed, make_firm

SETTINGS = MailSettings("payments@firmpay.example", "https://pay.firmpay.example", 90)
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
OFFER = RemovalOffer(
    url="https://pay.firmpay.example/methods/remove/tok", method_label="Visa \u2022\u2022\u2022\u20224242"
)
ECHECK = MethodSummary(type="echeck", bank_name="First Platypus Bank", last4="0000")


def _billed(country: str = "US", language: str = "en") -> Billed:
    firm = make_firm(country, language=language)
    client = Client(client_id="cli_1", firm_id=firm.firm_id, name="Jordan Client", email="jordan@example.com")
    payable = Payable(
        payable_id="pbl_1",
        firm_id=firm.firm_id,
        client_id="cli_1",
        kind="bill",
        number="B-1042",
        issued_on=date(2026, 11, 2),
        due_on=date(2026, 12, 2),
        currency=firm.currency,
        total_minor=150_050,
        balance_minor=50_050,
        paid_minor=100_000,
    )
    return Billed(firm, client, payable)


def _parts(message: EmailMessage) -> tuple[str, str]:
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert isinstance(html, EmailMessage)
    assert isinstance(text, EmailMessage)
    return str(html.get_content()), str(text.get_content())


def _email(kind: EmailKind, billed: Billed, payment: Payment, removal: RemovalOffer | None) -> tuple[str, str]:
    message = payment_email(kind, billed.firm, billed.client, billed.payable, payment, "p@f.example", None, removal)
    return _parts(message)


# -- context and content ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [EmailKind.CLIENT_RECEIVED, EmailKind.CLIENT_SUBMITTED])
def test_the_context_carries_the_removal_link_only_when_a_method_was_stored(kind: EmailKind) -> None:
    billed = _billed()
    payment = card_payment(billed, 100_000).model_copy(update={"updated_at": NOW})
    args = (kind, billed.firm, billed.client, billed.payable, payment, None)

    offered = payment_email_context(*args, OFFER)
    plain = payment_email_context(*args)

    assert (offered["removal_url"], offered["removal_method"]) == (OFFER.url, OFFER.method_label)
    assert (plain["removal_url"], plain["removal_method"]) == (None, "")


def test_the_receipt_of_a_stored_card_says_it_was_stored_and_links_to_its_removal() -> None:
    billed = _billed()
    payment = card_payment(billed, 100_000).model_copy(update={"status": PaymentStatus.SUCCEEDED, "updated_at": NOW})

    html, text = _email(EmailKind.CLIENT_RECEIVED, billed, payment, OFFER)
    plain_html, plain_text = _email(EmailKind.CLIENT_RECEIVED, billed, payment, None)

    line = "You stored Visa \u2022\u2022\u2022\u20224242 for future payments to Hartley & Vance LLP."
    assert f"{line} Remove it: {OFFER.url}" in text
    assert f'{line.replace("&", "&amp;")} <a href="{OFFER.url}" style="color:#1f4fd1;">Remove it</a>' in html
    assert "/methods/remove/" not in plain_html + plain_text
    assert "You stored" not in plain_text


def test_a_french_canadian_client_reads_the_removal_line_in_french() -> None:
    billed = _billed("CA", "fr")
    payment = card_payment(billed, 100_000).model_copy(update={"status": PaymentStatus.SUCCEEDED, "updated_at": NOW})

    html, text = _email(EmailKind.CLIENT_RECEIVED, billed, payment, OFFER)

    line = "Vous avez enregistré Visa \u2022\u2022\u2022\u20224242 pour de futurs paiements à Tremblay Avocats."
    assert f"{line} Pour le retirer : {OFFER.url}" in text
    assert f'{line} <a href="{OFFER.url}" style="color:#1f4fd1;">Le retirer</a>' in html
    assert "You stored" not in text


def test_the_submitted_email_of_a_stored_bank_account_links_to_its_removal() -> None:
    billed = _billed()
    payment = card_payment(billed, 100_000).model_copy(
        update={"status": PaymentStatus.PROCESSING, "method": ECHECK, "updated_at": NOW}
    )
    offer = RemovalOffer(url=OFFER.url, method_label=ECHECK.label())

    _, text = _email(EmailKind.CLIENT_SUBMITTED, billed, payment, offer)

    assert f"You stored {ECHECK.label()} for future payments to Hartley & Vance LLP. Remove it: {OFFER.url}" in text


# -- issued once, after the claim, only for an active stored method ---------------------------------


class Outbox:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def __call__(self, message: EmailMessage) -> str:
        self.sent.append(message)
        return f"msg-{len(self.sent)}"


def _stored_card_payment(ledger: Ledger, store: bool = True) -> tuple[Billed, Payment, StoredMethod | None]:
    """A settled card payment; with ``store``, its card stored as the pay page stores it."""
    billed = create_billed(ledger)
    payment = card_payment(billed, 50_000).model_copy(
        update={
            "store_method": store,
            "store_consent": store_consent() if store else None,
            "stored_method_id": new_id("mth") if store else None,
        }
    )
    assert ledger.reserve(payment)
    assert ledger.settle(payment)
    settled = ledger.get_payment(billed.payable.payable_id, payment.payment_id)
    assert settled is not None
    if not store:
        return billed, settled, None
    assert payment.stored_method_id is not None
    method = StoredMethod(
        method_id=payment.stored_method_id,
        firm_id=billed.firm.firm_id,
        client_id=billed.client.client_id,
        summary=payment.method,
        processor_customer_id="cus_test",
        processor_method_id="pm_test",
        consent=store_consent(),
        created_from_payment_id=payment.payment_id,
        created_at=NOW,
    )
    ledger.put_method(method)
    return billed, settled, method


def _removal_items(ledger: Ledger, dynamodb_endpoint: str, method_id: str) -> list[dict[str, Any]]:
    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1"
    )
    answer = client.scan(  # type: ignore[attr-defined]
        TableName="ledger-under-test",
        FilterExpression="begins_with(pk, :remove) AND method_id = :method",
        ExpressionAttributeValues={":remove": {"S": "REMOVE#"}, ":method": {"S": method_id}},
        ConsistentRead=True,
    )
    return list(answer["Items"])


def _token(message: EmailMessage) -> str:
    _, text = _parts(message)
    found = re.search(r"/methods/remove/([A-Za-z0-9_-]{43})\b", text)
    assert found is not None, text
    return found.group(1)


def test_a_redelivered_record_issues_one_removal_link_for_the_one_email_sent(
    ledger: Ledger, dynamodb_endpoint: str
) -> None:
    # Given a settled card payment whose client stored the card
    billed, payment, method = _stored_card_payment(ledger)
    assert method is not None
    outbox = Outbox()

    # When the stream delivers its change three times
    for _ in range(3):
        send_payment_emails(ledger, PaymentChange(PaymentStatus.PENDING, payment), outbox, SETTINGS, NOW)

    # Then the client got one email whose link is the one removal link stored (as a hash), for that card
    client_mail, firm_mail = outbox.sent
    token = _token(client_mail)
    [item] = _removal_items(ledger, dynamodb_endpoint, method.method_id)
    assert item["pk"]["S"] == f"REMOVE#{hash_token(token)}"
    assert token not in str(item)
    assert int(item["expires_at"]["N"]) == int((NOW + timedelta(days=400)).timestamp())
    assert "/methods/remove/" not in str(firm_mail)
    view = find_removal(ledger, token, NOW)
    assert (view.method.method_id, view.firm.firm_id) == (method.method_id, billed.firm.firm_id)


def test_no_removal_link_when_the_card_was_not_stored_or_was_revoked_already(
    ledger: Ledger, dynamodb_endpoint: str
) -> None:
    _, unstored, _ = _stored_card_payment(ledger, store=False)
    _, revoked_payment, method = _stored_card_payment(ledger)
    assert method is not None
    ledger.set_method_status(method, "revoked")
    outbox = Outbox()

    for payment in (unstored, revoked_payment):
        send_payment_emails(ledger, PaymentChange(PaymentStatus.PENDING, payment), outbox, SETTINGS, NOW)

    assert len(outbox.sent) == 4
    assert all("/methods/remove/" not in "".join(_parts(m)) for m in outbox.sent)
    assert _removal_items(ledger, dynamodb_endpoint, method.method_id) == []


def test_an_echeck_image_without_the_stored_method_finds_it_on_the_ledgers_payment(ledger: Ledger) -> None:
    # Given an eCheck payment whose stream image (processing) predates recording its stored method
    billed = create_billed(ledger)
    payment = card_payment(billed, 40_000).model_copy(
        update={"method": ECHECK, "store_method": True, "store_consent": store_consent()}
    )
    assert ledger.reserve(payment)
    processing = ledger.update_reserved_payment(payment, status=PaymentStatus.PROCESSING)
    assert processing is not None
    method = StoredMethod(
        method_id="mth_bank_" + payment.payment_id[4:],
        firm_id=billed.firm.firm_id,
        client_id=billed.client.client_id,
        summary=ECHECK,
        processor_customer_id="cus_test",
        processor_method_id="ba_test",
        consent=store_consent(),
        created_from_payment_id=payment.payment_id,
    )
    ledger.put_method(method)
    assert ledger.update_reserved_payment(processing, stored_method_id=method.method_id) is not None

    # When the email looks for the method to offer, from the older image
    found = removable_method(ledger, processing)

    # Then it is the bank account the client stored
    assert processing.stored_method_id is None
    assert found is not None
    assert found.method_id == method.method_id
