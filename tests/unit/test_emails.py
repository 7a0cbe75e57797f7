"""Confirmation emails: which change sends what, the rendered content, and the sent-once markers.

Content tests render in-process; marker tests use the ``ledger`` fixture (DynamoDB Local) and
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
from firmpay.emails.notifications import EmailKind, PaymentChange, emails_for, marker_key, payment_change
from firmpay.gateways.ses import MailRejected, MailUnavailable
from firmpay.ledger import Ledger
from firmpay.ledger.codec import to_item
from firmpay.models.ledger import (
    Client,
    MethodSummary,
    Payable,
    Payment,
    PaymentStatus,
    Refund,
    RefundReason,
    RefundStatus,
    RefundSummary,
)
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


def _summary(
    refund_id: str = "rfd_1",
    status: RefundStatus = RefundStatus.SUCCEEDED,
    amount: int = 20_000,
    currency: str = "USD",
    booking: str = "balance_restored",
) -> RefundSummary:
    return RefundSummary.model_validate(
        {
            "refund_id": refund_id,
            "amount_minor": amount,
            "currency": currency,
            "status": status,
            "reason": "requested_by_customer",
            "booking": booking,
            "updated_at": NOW,
        }
    )


def _refund_change(old: RefundSummary | None, new: RefundSummary | None) -> PaymentChange:
    """A stream MODIFY of a succeeded payment whose ``last_refund`` went from ``old`` to ``new``."""
    return PaymentChange(P.SUCCEEDED, _payment(P.SUCCEEDED, last_refund=new), old_refund=old)


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
        (P.PENDING, P.FAILED, None, "autopay", ["client_payment_failed", "firm_payment_failed"]),
        (P.PENDING, P.FAILED, None, "plan", ["client_payment_failed", "firm_payment_failed"]),
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
    payment = _payment(P.SUCCEEDED, last_refund=_summary())
    for kind in EmailKind:
        message = payment_email(kind, billed.firm, billed.client, billed.payable, payment, "p@f.example")
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
    assert "1\u00a0234,56\u00a0$\u00a0CAD" in text
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


# -- refunds ---------------------------------------------------------------------------------------

RS = RefundStatus


@pytest.mark.parametrize(
    ("old", "new", "kinds"),
    [
        (None, _summary(status=RS.PENDING), []),
        (_summary(status=RS.PENDING), _summary(), ["client_payment_refunded"]),
        (None, _summary(), ["client_payment_refunded"]),
        (_summary(status=RS.PENDING), _summary(status=RS.FAILED), []),
        (_summary(status=RS.PENDING), _summary(status=RS.CANCELED), []),
        (_summary(), _summary(), []),  # the same refund, seen again (another change of the payment)
        (_summary(), _summary("rfd_2", RS.PENDING), []),
        (_summary("rfd_2", RS.PENDING), _summary("rfd_2"), ["client_payment_refunded"]),
        (_summary(), _summary("rfd_2"), ["client_payment_refunded"]),
        (None, None, []),
    ],
)
def test_only_a_refund_that_just_succeeded_emails_the_client(
    old: RefundSummary | None, new: RefundSummary | None, kinds: list[str]
) -> None:
    assert [str(k) for k in emails_for(_refund_change(old, new))] == kinds


def test_a_stream_record_of_a_refund_carries_the_refund_the_old_image_showed() -> None:
    pending, done = _summary(status=RS.PENDING), _summary()
    payment = _payment(P.SUCCEEDED, last_refund=done, refunded_minor=20_000)
    image = payment.model_dump(mode="json", exclude_none=True) | {"entity": "payment", "pk": "PAYABLE#x", "sk": "P"}
    old = image | {"last_refund": pending.model_dump(mode="json"), "refunded_minor": 0, "refunding_minor": 20_000}

    change = payment_change(_record(image, old))

    assert change == PaymentChange(P.SUCCEEDED, payment, old_refund=pending)
    assert emails_for(change) == [EmailKind.CLIENT_REFUNDED]


def test_each_refund_has_its_own_marker_and_the_same_refund_keeps_its_marker() -> None:
    first = _refund_change(_summary(status=RS.PENDING), _summary("rfd_a"))
    first_again = _refund_change(None, _summary("rfd_a"))
    second = _refund_change(_summary("rfd_b", RS.PENDING), _summary("rfd_b"))
    keys_of = [marker_key(EmailKind.CLIENT_REFUNDED, c.payment) for c in (first, first_again, second)]
    assert keys_of == [
        "client_payment_refunded#rfd_a",
        "client_payment_refunded#rfd_a",
        "client_payment_refunded#rfd_b",
    ]
    assert marker_key(EmailKind.CLIENT_RECEIVED, first.payment) == "client_payment_received"


def _refund_email(billed: Billed, payment: Payment, balance: int) -> tuple[EmailMessage, str, str]:
    payable = billed.payable.model_copy(update={"balance_minor": balance})
    message = payment_email(EmailKind.CLIENT_REFUNDED, billed.firm, billed.client, payable, payment, "p@f.example")
    html, text = _parts(message)
    return message, html, text


def test_the_refund_email_says_refund_payment_method_totals_and_that_the_bill_is_due_again() -> None:
    # Given a $1,000.00 card payment of bill B-1042, of which $200.00 was just refunded
    billed = _billed()
    payment = _payment(P.SUCCEEDED, last_refund=_summary(amount=20_000), refunded_minor=20_000)

    # When the client's refund email is rendered (the bill's balance is $700.50 again)
    message, html, text = _refund_email(billed, payment, 70_050)

    # Then it goes to the client, answers to the firm, and says what was refunded and what is due
    assert (message["To"], message["Reply-To"]) == ("jordan@example.com", "billing@hartleyvance.example")
    assert message["Subject"] == "Refund issued \u2013 Bill B-1042 \u2013 Hartley & Vance LLP"
    assert (
        "Hartley & Vance LLP refunded $200.00\u00a0USD of your payment of $1,000.00\u00a0USD for bill B-1042." in text
    )
    for line in (
        "Bill: B-1042",
        "Refund amount: $200.00\u00a0USD",
        "Original payment: $1,000.00\u00a0USD",
        "Payment method: Visa \u2022\u2022\u2022\u20224242",
        "Refund date: December 1, 2026",
        "Reference number: FP-TEST-0001",
        "Total refunded on this payment: $200.00\u00a0USD",
        "Remaining balance: $700.50\u00a0USD",
    ):
        assert line in text
    assert "The bill's balance is open again: $700.50\u00a0USD is now due." in text
    assert "5\u201310 business days" in text
    assert "trust account" not in text
    assert "Hartley &amp; Vance LLP refunded <strong>$200.00\u00a0USD</strong>" in html
    assert "<strong>$700.50\u00a0USD</strong> is now due" in html
    assert "5\u201310 business days" in html


def test_a_second_partial_refund_email_shows_the_total_refunded_so_far() -> None:
    billed = _billed()
    payment = _payment(P.SUCCEEDED, last_refund=_summary("rfd_2", amount=5_000), refunded_minor=25_000)
    _, _, text = _refund_email(billed, payment, 75_050)
    assert "Refund amount: $50.00\u00a0USD" in text
    assert "Total refunded on this payment: $250.00\u00a0USD" in text


def test_a_refund_that_leaves_nothing_due_does_not_say_the_bill_is_due_again() -> None:
    billed = _billed()
    payment = _payment(P.SUCCEEDED, last_refund=_summary(), refunded_minor=20_000)
    _, html, text = _refund_email(billed, payment, 0)
    assert "now due" not in text
    assert "now due" not in html
    assert "Remaining balance: $0.00\u00a0USD" in text


def test_a_trust_refund_says_the_money_came_back_from_the_trust_account() -> None:
    base = _billed()
    billed = Billed(base.firm, base.client, base.payable.model_copy(update={"kind": "trust_request"}))
    payment = _payment(P.SUCCEEDED, last_refund=_summary(booking="trust_disbursement"), refunded_minor=20_000)
    message, html, text = _refund_email(billed, payment, 0)
    assert message["Subject"] == "Refund issued \u2013 Trust request B-1042 \u2013 Hartley & Vance LLP"
    assert "The money was returned to you from Hartley & Vance LLP's trust account." in text
    assert "returned to you from Hartley &amp; Vance LLP's trust account" in html
    assert "now due" not in text


def test_an_echeck_refund_says_a_few_business_days() -> None:
    billed = _billed()
    payment = _payment(P.SUCCEEDED, ECHECK, last_refund=_summary(), refunded_minor=20_000)
    _, html, text = _refund_email(billed, payment, 70_050)
    assert "The refund should reach your bank account in a few business days." in text
    assert "Payment method: First Platypus Bank \u2022\u2022\u2022\u20220000" in text
    assert "5\u201310" not in text
    assert "5\u201310" not in html


def test_a_french_canadian_firm_sends_the_refund_email_in_french_with_fr_ca_amounts() -> None:
    billed = _billed("CA", "fr")
    payment = _payment(
        P.SUCCEEDED, currency="CAD", last_refund=_summary(amount=20_000, currency="CAD"), refunded_minor=20_000
    )
    message, html, text = _refund_email(billed, payment, 70_050)
    assert message["Subject"] == "Remboursement effectué \u2013 Facture B-1042 \u2013 Tremblay Avocats"
    assert 'lang="fr"' in html
    assert "Bonjour Jordan Client" in text
    assert (
        "Tremblay Avocats vous a remboursé 200,00\u00a0$\u00a0CAD sur votre paiement de 1\u00a0000,00\u00a0$\u00a0CAD "
        "pour la facture B-1042." in text
    )
    for line in (
        "Montant remboursé\u00a0: 200,00\u00a0$\u00a0CAD",
        "Paiement initial\u00a0: 1\u00a0000,00\u00a0$\u00a0CAD",
        "Date du remboursement\u00a0: 1 décembre 2026",
        "Total remboursé sur ce paiement\u00a0: 200,00\u00a0$\u00a0CAD",
        "Solde restant\u00a0: 700,50\u00a0$\u00a0CAD",
    ):
        assert line in text
    assert "Le solde de la facture est de nouveau exigible : 700,50\u00a0$\u00a0CAD." in text
    assert "dans un délai de 5 à 10 jours ouvrables" in text
    assert "Refund" not in text


def test_names_and_numbers_with_markup_are_escaped_in_the_refund_email() -> None:
    base = _billed(client_name='<img src=x onerror="alert(1)">')
    billed = Billed(base.firm, base.client, base.payable.model_copy(update={"number": "<b>B-1</b>"}))
    payment = _payment(P.SUCCEEDED, last_refund=_summary(), refunded_minor=20_000)
    message, html, text = _refund_email(billed, payment, 70_050)
    assert "<img" not in html
    assert "<b>" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "&lt;b&gt;B-1&lt;/b&gt;" in html
    assert '<img src=x onerror="alert(1)">' in text
    assert "<b>B-1</b>" in message["Subject"]


def _refund(ledger: Ledger, payment: Payment, refund_id: str, amount: int) -> tuple[RefundSummary, Payment]:
    """Open and settle a refund through the ledger: the payment's refund as the stream's old image showed
    it (pending), and the payment once the refund succeeded."""
    refund = Refund(
        refund_id=refund_id,
        payable_id=payment.payable_id,
        payment_id=payment.payment_id,
        firm_id=payment.firm_id,
        client_id=payment.client_id,
        amount_minor=amount,
        currency=payment.currency,
        reason=RefundReason.REQUESTED_BY_CUSTOMER,
        booking="balance_restored",
        idempotency_key=f"fp-refund-{refund_id}",
        request_sha256="0" * 64,
        created_at=NOW,
        updated_at=NOW,
    )
    assert ledger.open_refund(refund, payment) == "opened"
    held = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert held is not None
    assert held.last_refund is not None
    assert ledger.settle_refund(refund, f"re_{refund_id}", NOW)
    done = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert done is not None
    return held.last_refund, done


def test_each_partial_refund_emails_the_client_once_whatever_the_redeliveries(ledger: Ledger) -> None:
    # Given a settled $500.00 card payment
    billed, settled = _settled(ledger)
    outbox = Outbox()

    # When a first partial refund succeeds and its stream record is handled twice
    held, first = _refund(ledger, settled.payment, "rfd_first", 10_000)
    first_change = PaymentChange(P.SUCCEEDED, first, old_refund=held)
    results = [send_payment_emails(ledger, first_change, outbox, SETTINGS, NOW) for _ in range(2)]

    # Then one email was sent, about that refund
    assert [[o.result for o in r] for r in results] == [["sent"], ["already_sent"]]
    assert len(outbox.sent) == 1

    # When a second partial refund succeeds
    held, second = _refund(ledger, first, "rfd_second", 5_000)
    send_payment_emails(ledger, PaymentChange(P.SUCCEEDED, second, old_refund=held), outbox, SETTINGS, NOW)
    send_payment_emails(ledger, first_change, outbox, SETTINGS, NOW)  # the first one, once more

    # Then a second email, with its own amount and the running total, and one marker per refund
    assert len(outbox.sent) == 2
    _, first_text = _parts(outbox.sent[0])
    _, second_text = _parts(outbox.sent[1])
    assert "Refund amount: $100.00\u00a0USD" in first_text
    assert "Refund amount: $50.00\u00a0USD" in second_text
    assert "Total refunded on this payment: $150.00\u00a0USD" in second_text
    assert [m["To"] for m in outbox.sent] == ["jordan@example.com"] * 2
    epoch = int(NOW.timestamp())
    for refund_id in ("rfd_first", "rfd_second"):
        marker = f"client_payment_refunded#{refund_id}"
        assert ledger.claim_email(settled.payment.payment_id, marker, "probe", epoch, 60, epoch + 9) == "done"
    ledger.check_invariant(billed.payable.payable_id)


def test_a_refund_made_outside_firmpay_emails_the_client_and_the_firm_once_each() -> None:
    outside = _summary().model_copy(update={"origin": "outside"})
    change = _refund_change(None, outside)

    assert emails_for(change) == [EmailKind.CLIENT_REFUNDED, EmailKind.FIRM_REFUNDED_OUTSIDE]
    assert marker_key(EmailKind.FIRM_REFUNDED_OUTSIDE, change.payment) == "firm_refund_outside#rfd_1"
    assert emails_for(_refund_change(outside, outside)) == []  # the same refund seen again


@pytest.mark.parametrize(
    ("country", "language", "subject", "says"),
    [
        ("US", "en", "Refund made outside FirmPay: Jordan Client", "was made directly in Stripe (not through FirmPay)"),
        ("CA", "fr", "Remboursement fait hors de FirmPay : Jordan Client", "a été fait directement dans Stripe"),
    ],
)
def test_the_firm_is_told_of_a_refund_made_outside_firmpay_in_its_language(
    country: str, language: str, subject: str, says: str
) -> None:
    billed = _billed(country, language)
    currency = billed.payable.currency
    refund = _summary(currency=currency).model_copy(update={"origin": "outside"})
    payment = _payment(P.SUCCEEDED, last_refund=refund, refunded_minor=20_000).model_copy(update={"currency": currency})

    message = payment_email(
        EmailKind.FIRM_REFUNDED_OUTSIDE, billed.firm, billed.client, billed.payable, payment, "p@f.example"
    )

    html, text = _parts(message)
    assert message["To"] == billed.firm.reply_to_email
    assert message["Subject"].startswith(subject)
    assert says in text
    assert says.replace("'", "&#39;") in html
