"""Confirmation emails: which change sends what, the rendered content, and the sent-once markers.

Content tests render in-process; marker tests use the ``ledger`` fixture (moto, in-process) and
an in-memory sender in place of SES.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from firmpay.emails.confirmations import (
    LEASE_SECONDS,
    EmailInFlight,
    MailSettings,
    payment_email,
    send_payment_emails,
)
from firmpay.emails.notifications import EmailKind, PaymentChange, emails_for, payment_change
from firmpay.gateways.ses import MailRejected, MailUnavailable
from firmpay.ledger import Ledger
from firmpay.ledger.codec import to_item
from firmpay.models.ledger import Client, MethodSummary, Payable, Payment, PaymentStatus
from tests.support.factories import Billed, card_payment, create_billed, make_firm

P = PaymentStatus
SETTINGS = MailSettings("payments@firmpay.example", "https://pay.firmpay.example", 90)
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
ECHECK = MethodSummary(type="echeck", bank_name="First Platypus Bank", last4="0000")


def _billed(country: str = "US", language: str = "en", client_name: str = "Jordan Client") -> Billed:
    firm = make_firm(country, language=language)
    client = Client(client_id="cli_1", firm_id=firm.firm_id, name=client_name, email="jordan@example.com")
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


def _payment(status: PaymentStatus, method: MethodSummary | None = None, **changes: Any) -> Payment:
    payment = card_payment(_billed(), 100_000).model_copy(update={"status": status, "updated_at": NOW, **changes})
    return payment.model_copy(update={"method": method}) if method else payment


def _parts(message: EmailMessage) -> tuple[str, str]:
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert isinstance(html, EmailMessage)
    assert isinstance(text, EmailMessage)
    return str(html.get_content()), str(text.get_content())


# -- which emails ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "method", "origin", "kinds"),
    [
        (P.PENDING, P.SUCCEEDED, None, "pay_page", ["client_payment_received", "firm_payment_received"]),
        (P.REQUIRES_ACTION, P.SUCCEEDED, None, "pay_page", ["client_payment_received", "firm_payment_received"]),
        (P.PENDING, P.PROCESSING, ECHECK, "pay_page", ["client_payment_submitted"]),
        (P.PROCESSING, P.SUCCEEDED, ECHECK, "pay_page", ["firm_payment_received"]),
        (P.PROCESSING, P.FAILED, ECHECK, "pay_page", ["client_payment_failed", "firm_payment_returned"]),
        (P.PENDING, P.FAILED, None, "pay_page", []),
        (P.REQUIRES_ACTION, P.FAILED, None, "pay_page", []),
        (P.PENDING, P.FAILED, None, "autopay", ["client_payment_failed"]),
        (P.PENDING, P.FAILED, None, "plan", ["client_payment_failed"]),
        (P.PENDING, P.CANCELED, None, "pay_page", []),
        (None, P.PENDING, None, "pay_page", []),
        (P.SUCCEEDED, P.SUCCEEDED, None, "pay_page", []),
        (P.PROCESSING, P.PROCESSING, ECHECK, "pay_page", []),
    ],
)
def test_each_state_change_produces_its_emails(
    old: PaymentStatus | None, new: PaymentStatus, method: MethodSummary | None, origin: str, kinds: list[str]
) -> None:
    change = PaymentChange(old, _payment(new, method, origin=origin))
    assert [str(k) for k in emails_for(change)] == kinds


def _record(new: dict[str, Any], old: dict[str, Any] | None, event: str = "MODIFY") -> dict[str, Any]:
    stream: dict[str, Any] = {"NewImage": to_item(new)}
    if old is not None:
        stream["OldImage"] = to_item(old)
    return {"eventName": event, "dynamodb": stream}


def test_a_stream_record_maps_to_the_payment_and_its_previous_status() -> None:
    payment = _payment(P.SUCCEEDED)
    image = payment.model_dump(mode="json", exclude_none=True) | {"entity": "payment", "pk": "PAYABLE#x", "sk": "P"}
    change = payment_change(_record(image, image | {"status": "pending", "gsi1pk": "PENDING"}))
    assert change == PaymentChange(P.PENDING, payment)


def test_records_that_are_not_payments_map_to_nothing_and_an_invalid_payment_raises() -> None:
    assert payment_change(_record({"entity": "payable", "pk": "PAYABLE#x"}, None, "INSERT")) is None
    assert payment_change({"eventName": "REMOVE", "dynamodb": {"OldImage": to_item({"entity": "payment"})}}) is None
    with pytest.raises(ValidationError):
        payment_change(_record({"entity": "payment", "payment_id": "pay_x", "status": "succeeded"}, None, "INSERT"))


# -- content ---------------------------------------------------------------------------------------


def test_the_client_receipt_says_firm_bill_amount_method_date_reference_and_balance() -> None:
    billed = _billed()
    message = payment_email(
        EmailKind.CLIENT_RECEIVED, billed.firm, billed.client, billed.payable, _payment(P.SUCCEEDED), "p@f.example"
    )
    html, text = _parts(message)
    assert message["To"] == "jordan@example.com"
    assert message["Reply-To"] == "billing@hartleyvance.example"
    assert message["Subject"] == "Payment received \u2013 Bill B-1042 \u2013 Hartley & Vance LLP"
    assert message["X-FirmPay-Reference"] == "FP-TEST-0001"
    for body in (html, text):
        for expected in ("B-1042", "$1,000.00\u00a0USD", "Visa \u2022\u2022\u2022\u20224242", "December 1, 2026"):
            assert expected in body
        assert "FP-TEST-0001" in body
        assert "$500.50\u00a0USD" in body
    assert "Remaining balance: $500.50\u00a0USD" in text
    assert "<script" not in html


def test_a_client_name_with_markup_is_escaped_in_html_and_kept_verbatim_in_text() -> None:
    billed = _billed(client_name="<script>alert(1)</script>")
    for kind in EmailKind:
        message = payment_email(kind, billed.firm, billed.client, billed.payable, _payment(P.SUCCEEDED), "p@f.example")
        html, text = _parts(message)
        assert "<script" not in html.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert(1)</script>" in text


def test_a_french_canadian_firm_gets_french_emails_with_fr_ca_amounts() -> None:
    billed = _billed("CA", "fr")
    payment = _payment(P.SUCCEEDED, currency="CAD", amount_minor=123_456)
    message = payment_email(EmailKind.CLIENT_RECEIVED, billed.firm, billed.client, billed.payable, payment, "p@f.e")
    html, text = _parts(message)
    assert message["Subject"] == "Paiement reçu \u2013 Facture B-1042 \u2013 Tremblay Avocats"
    assert 'lang="fr"' in html
    assert "1\u202f234,56\u00a0$\u00a0CAD" in text
    assert "Solde restant\u00a0: 500,50\u00a0$\u00a0CAD" in text
    assert "1 décembre 2026" in html
    assert "Bonjour Jordan Client" in text


def test_an_english_canadian_firm_gets_cad_amounts_in_english() -> None:
    billed = _billed("CA", "en")
    payment = _payment(P.SUCCEEDED, currency="CAD")
    _, text = _parts(
        payment_email(EmailKind.FIRM_RECEIVED, billed.firm, billed.client, billed.payable, payment, "a@b.c")
    )
    assert "Jordan Client paid $1,000.00\u00a0CAD toward bill B-1042" in text


def test_a_returned_echeck_email_explains_the_return_code_and_carries_the_pay_link() -> None:
    billed = _billed()
    payment = _payment(P.FAILED, ECHECK, return_code="R02")
    message = payment_email(
        EmailKind.CLIENT_FAILED, billed.firm, billed.client, billed.payable, payment, "p@f.e", "https://x/pay/tok"
    )
    html, text = _parts(message)
    assert "the account is closed (return code R02)" in text
    assert 'href="https://x/pay/tok"' in html
    assert "Pay online now: https://x/pay/tok" in text


# -- sent-once markers -----------------------------------------------------------------------------


class Outbox:
    """An in-memory SES: records messages, or fails the next calls as told."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.failures: list[Exception] = []

    def __call__(self, message: EmailMessage) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return f"msg-{len(self.sent)}"


def _settled(ledger: Ledger) -> tuple[Billed, PaymentChange]:
    billed = create_billed(ledger)
    payment = card_payment(billed, 50_000)
    assert ledger.reserve(payment)
    assert ledger.settle(payment)
    settled = ledger.get_payment(billed.payable.payable_id, payment.payment_id)
    assert settled is not None
    return billed, PaymentChange(P.PENDING, settled)


def test_the_same_change_handled_three_times_sends_each_email_once(ledger: Ledger) -> None:
    _, change = _settled(ledger)
    outbox = Outbox()
    results = [send_payment_emails(ledger, change, outbox, SETTINGS, NOW) for _ in range(3)]
    assert [o.result for o in results[0]] == ["sent", "sent"]
    assert [o.result for o in results[1] + results[2]] == ["already_sent"] * 4
    assert [m["To"] for m in outbox.sent] == ["jordan@example.com", "billing@hartleyvance.example"]


def test_a_crash_after_the_claim_is_retried_once_the_lease_runs_out(ledger: Ledger) -> None:
    # Given an attempt that claimed the client email and died before sending
    _, change = _settled(ledger)
    epoch = int(NOW.timestamp())
    payment_id = change.payment.payment_id
    assert ledger.claim_email(payment_id, EmailKind.CLIENT_RECEIVED, "crashed", epoch, LEASE_SECONDS, epoch + 9) == (
        "claimed"
    )
    outbox = Outbox()

    # When the record is retried within the lease, nothing is sent and the record fails
    with pytest.raises(EmailInFlight):
        send_payment_emails(ledger, change, outbox, SETTINGS, NOW + timedelta(seconds=LEASE_SECONDS - 1))
    assert outbox.sent == []

    # Then after the lease the email is sent, once
    later = NOW + timedelta(seconds=LEASE_SECONDS + 1)
    assert [o.result for o in send_payment_emails(ledger, change, outbox, SETTINGS, later)] == ["sent", "sent"]
    assert len(outbox.sent) == 2


def test_a_failed_send_gives_the_claim_back_at_once(ledger: Ledger) -> None:
    _, change = _settled(ledger)
    outbox = Outbox()
    outbox.failures.append(MailUnavailable("Throttling"))
    with pytest.raises(MailUnavailable):
        send_payment_emails(ledger, change, outbox, SETTINGS, NOW)
    assert [o.result for o in send_payment_emails(ledger, change, outbox, SETTINGS, NOW)] == ["sent", "sent"]


def test_an_address_ses_refuses_for_good_is_not_retried(ledger: Ledger) -> None:
    _, change = _settled(ledger)
    outbox = Outbox()
    outbox.failures.append(MailRejected("MessageRejected"))
    first = send_payment_emails(ledger, change, outbox, SETTINGS, NOW)
    assert [o.result for o in first] == ["rejected", "sent"]
    again = send_payment_emails(ledger, change, outbox, SETTINGS, NOW)
    assert [o.result for o in again] == ["already_sent", "already_sent"]
    assert len(outbox.sent) == 1


def test_a_returned_echeck_reissues_the_pay_link_once(ledger: Ledger) -> None:
    billed = create_billed(ledger)
    payment = card_payment(billed, 40_000).model_copy(update={"method": ECHECK})
    assert ledger.reserve(payment)
    processing = ledger.update_reserved_payment(payment, status=P.PROCESSING)
    assert processing is not None
    assert ledger.release(processing, P.FAILED, return_code="R01")
    failed = ledger.get_payment(billed.payable.payable_id, payment.payment_id)
    assert failed is not None
    outbox = Outbox()

    for _ in range(2):
        send_payment_emails(ledger, PaymentChange(P.PROCESSING, failed), outbox, SETTINGS, NOW)

    client_mail, firm_mail = outbox.sent
    _, text = _parts(client_mail)
    payable = ledger.get_payable(billed.payable.payable_id)
    assert payable is not None
    assert payable.current_link_hash is not None
    assert f"{SETTINGS.public_base_url}/pay/" in text
    assert firm_mail["Subject"].startswith("Payment returned: Jordan Client")
