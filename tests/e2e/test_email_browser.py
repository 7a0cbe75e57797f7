"""Emails as a client sees them in a browser: a confirmation email's HTML part, and the bill email's
"Pay online now" link, opened from the local outbox's message page."""

from __future__ import annotations

from typing import Any

from firmpay.models.ledger import PaymentStatus
from tests.e2e.conftest import screenshot
from tests.integration.conftest import US_KEY, FirmClient
from tests.support.factories import card_payment, create_billed


def _newest_about(stack: Any, number: str, to: str) -> dict[str, Any]:
    found = [m for m in stack.outbox.list_messages() if number in m["subject"] and to in m["to"]]
    assert found, f"no email about {number} to {to}"
    return stack.outbox.read(found[-1]["id"])  # type: ignore[no-any-return]


def test_a_payment_receipt_renders_in_chromium_with_its_title_and_amount(stack: Any, page: Any) -> None:
    # Given a settled card payment of $1,000.00 and the stream delivered
    billed = create_billed(stack.ledger, amounts=(150_050,))
    payment = card_payment(billed, 100_000)
    assert stack.ledger.reserve(payment)
    assert stack.ledger.settle(payment)
    stack.poller.drain()
    mail = _newest_about(stack, billed.payable.number, "jordan@example.com")
    assert stack.ledger.get_payment(billed.payable.payable_id, payment.payment_id).status is PaymentStatus.SUCCEEDED

    # When the client opens it (the outbox page shows the HTML part in a sandboxed frame)
    page.goto(f"{stack.urls['outbox']}/{mail['id']}")
    frame = page.frame_locator("iframe[title='HTML part of the message']")

    # Then its heading, amount and remaining balance are visible
    assert frame.get_by_role("heading", name="Payment received").is_visible()
    amount = frame.locator("strong").filter(has_text="$1,000.00")
    assert amount.is_visible()
    assert amount.inner_text() == "$1,000.00\u00a0USD"
    assert frame.get_by_text(payment.reference, exact=True).is_visible()
    shown = frame.locator("body").inner_text()
    assert "Remaining balance\t$500.50\u00a0USD" in shown or "Remaining balance\n$500.50\u00a0USD" in shown
    path = screenshot(page, "email-payment-received-375")
    assert path.stat().st_size > 10_000


def test_the_bill_emails_pay_online_now_link_opens_that_bills_pay_page(stack: Any, page: Any) -> None:
    # Given a bill, sent to its client through the firm API
    billed = create_billed(stack.ledger, amounts=(42_000,))
    firm_api = FirmClient(stack.urls["gateway"], US_KEY)
    answer = firm_api.call("POST", f"/firm/firms/{billed.firm.firm_id}/payables/{billed.payable.payable_id}/send")
    assert answer.status_code == 200, answer.text
    mail = _newest_about(stack, billed.payable.number, "jordan@example.com")

    # When the client clicks "Pay online now" in the email
    page.goto(f"{stack.urls['outbox']}/{mail['id']}")
    frame = page.frame_locator("iframe[title='HTML part of the message']")
    with page.context.expect_page() as opened:
        frame.get_by_role("link", name="Pay online now").click()
    pay_page = opened.value
    pay_page.wait_for_load_state()

    # Then that bill's pay page opens, with its number and balance
    assert pay_page.get_by_role("heading", level=1).inner_text() == f"Bill {billed.payable.number}"
    assert pay_page.locator("#balance-due").inner_text() == "$420.00\u00a0USD"
    assert pay_page.url == answer.json()["url"]
    screenshot(pay_page, "email-bill-link-pay-page")
