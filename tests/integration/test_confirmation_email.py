"""Confirmation emails through the real stream (moto), the local poller and SES (moto + outbox).

Each test makes its own firm and payable (random numbers), so the emails of one test are the
outbox messages whose subject names its payable.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from firmpay.ledger import keys
from firmpay.models.ledger import Payment, PaymentStatus, new_id
from local.replay_dlq import replay
from local.stack import LocalStack
from tests.support.card_stack import StackLink, open_link
from tests.support.echeck_stack import open_echeck_link, stripe_test_control
from tests.support.factories import Billed, card_payment, create_billed

CLIENT_EMAIL = "jordan@example.com"
FIRM_EMAIL = "billing@hartleyvance.example"
SES_ATTEMPTS = 3  # one SendEmail call of firmpay.gateways.ses: the first try and 2 retries


def emails_about(stack: LocalStack, number: str) -> list[dict[str, Any]]:
    """Every message in the outbox whose subject names payable ``number`` (with its bodies)."""
    return [stack.outbox.read(m["id"]) for m in stack.outbox.list_messages() if number in m["subject"]]  # type: ignore[misc]


def wait_for_emails(stack: LocalStack, number: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """The emails about payable ``number`` once ``count`` of them are out (the stream, then SES)."""
    deadline = time.monotonic() + timeout
    while True:
        stack.poller.drain()
        messages = emails_about(stack, number)
        if len(messages) >= count:
            return messages
        if time.monotonic() > deadline:
            subjects = [m["subject"] for m in messages]
            raise AssertionError(f"waited {timeout:.0f}s for {count} emails about {number}; got {subjects}")
        time.sleep(0.2)


def to(messages: list[dict[str, Any]], address: str) -> list[dict[str, Any]]:
    return [m for m in messages if address in m["to"]]


def settled_card_payment(stack: LocalStack, billed: Billed, amount: int) -> Payment:
    """A card payment reserved then settled through the Ledger: the stream records a real one makes."""
    payment = card_payment(billed, amount)
    assert stack.ledger.reserve(payment)
    assert stack.ledger.settle(payment, processor_intent_id=f"pi_{payment.payment_id}")
    return payment


def dlq_bodies(stack: LocalStack) -> list[tuple[dict[str, Any], str]]:
    sqs = stack.client("sqs")
    found = []
    deadline = time.monotonic() + 30
    while True:
        answer = sqs.receive_message(QueueUrl=stack.env["EMAIL_DLQ_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = answer.get("Messages") or []
        if not messages:
            break
        assert time.monotonic() < deadline, f"the dead-letter queue still gave messages after 30s ({len(found)} read)"
        found += [(json.loads(m["Body"]), m["ReceiptHandle"]) for m in messages]
    for _, handle in found:  # visible again for whoever looks next
        sqs.change_message_visibility(QueueUrl=stack.env["EMAIL_DLQ_URL"], ReceiptHandle=handle, VisibilityTimeout=0)
    return found


def dlq_message_about(stack: LocalStack, payment_id: str) -> tuple[dict[str, Any], str]:
    for body, handle in dlq_bodies(stack):
        keys_in = [r["dynamodb"]["Keys"]["sk"]["S"] for r in body.get("records", [])]
        if f"PAYMENT#{payment_id}" in keys_in:
            return body, handle
    raise AssertionError(f"no dead-letter message holds payment {payment_id}")


def take_out_of_dlq(stack: LocalStack, payment_id: str) -> dict[str, Any]:
    body, _ = dlq_message_about(stack, payment_id)
    sqs = stack.client("sqs")
    answer = sqs.receive_message(QueueUrl=stack.env["EMAIL_DLQ_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
    for message in answer.get("Messages") or []:
        if json.loads(message["Body"]) == body:
            sqs.delete_message(QueueUrl=stack.env["EMAIL_DLQ_URL"], ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(
                QueueUrl=stack.env["EMAIL_DLQ_URL"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return body


def invoke_handler(stack: LocalStack) -> Any:
    return lambda event: stack.invoke("confirmation_email", event)


@pytest.fixture(autouse=True)
def _stream_quiet(stack: LocalStack) -> Any:
    stack.poller.drain()
    yield
    stack.proxy.clear_faults()
    stack.poller.resume()


# -- one payment, one email each -------------------------------------------------------------------


def test_a_card_payment_sends_one_client_and_one_firm_email_with_its_details(stack: LocalStack) -> None:
    # Given a bill of $1,500.50 and its pay link
    link: StackLink = open_link(stack, amounts=(120_000, 30_050))
    number = link.billed.payable.number

    # When the client pays $1,000.00 by card through the pay page, and the stream is delivered
    result = link.pay(amount=100_000)
    assert result["status"] == "succeeded"
    stack.poller.drain()

    # Then exactly one email went to the client and one to the firm
    messages = emails_about(stack, number)
    (client_mail,) = to(messages, CLIENT_EMAIL)
    (firm_mail,) = to(messages, FIRM_EMAIL)
    assert len(messages) == 2
    reference = result["reference"]
    for mail in (client_mail, firm_mail):
        for text in (mail["text"], mail["html"]):
            assert "$1,000.00\u00a0USD" in text
            assert "Visa \u2022\u2022\u2022\u20224242" in text
            assert reference in text
            assert "$500.50\u00a0USD" in text  # remaining balance
            assert number in text
            assert "Hartley &amp; Vance LLP" in text or "Hartley & Vance LLP" in text
    assert client_mail["subject"] == f"Payment received \u2013 Bill {number} \u2013 Hartley & Vance LLP"
    assert client_mail["reply_to"] == FIRM_EMAIL
    assert "Dear Jordan Client" in client_mail["text"]
    assert firm_mail["subject"] == f"Payment received from Jordan Client \u2013 Bill {number} \u2013 $1,000.00\u00a0USD"
    assert "Operating \u2022\u2022\u2022\u20226789" in firm_mail["text"]  # deposit account
    assert "Client: Jordan Client" in firm_mail["text"]
    link.invariant()


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_the_emails_are_in_moto_ses_and_listed_on_the_local_outbox_page(stack: LocalStack) -> None:
    billed = create_billed(stack.ledger)
    settled_card_payment(stack, billed, 10_000)
    stack.poller.drain()

    ids = {m["id"] for m in emails_about(stack, billed.payable.number)}
    listed = requests.get(f"{stack.urls['gateway']}/_local/outbox.json", timeout=60).json()
    assert ids <= {m["id"] for m in listed}
    assert len(ids) == 2
    sent = requests.get(f"{stack.urls['moto']}/moto-api/data.json", timeout=60).json()["ses"]
    assert billed.payable.number in json.dumps(sent)


def test_a_trust_request_payment_says_the_money_went_to_the_trust_account(stack: LocalStack) -> None:
    link = open_link(stack, kind="trust_request", amounts=(250_000,))
    billed = link.billed
    assert link.pay()["status"] == "succeeded"
    stack.poller.drain()

    (client_mail,) = to(emails_about(stack, billed.payable.number), CLIENT_EMAIL)
    assert (
        "deposited into Hartley & Vance LLP's trust account (IOLTA Trust \u2022\u2022\u2022\u20224321)"
        in (client_mail["text"])
    )
    assert f"Payment received \u2013 Trust request {billed.payable.number}" in client_mail["subject"]
    assert "$0.00\u00a0USD" in client_mail["text"]


# -- exactly once ----------------------------------------------------------------------------------


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_the_same_stream_records_delivered_three_times_send_one_email_each(stack: LocalStack) -> None:
    billed = create_billed(stack.ledger)
    stack.poller.pause()
    payment = settled_card_payment(stack, billed, 20_000)
    stack.poller.drain()
    batch = list(stack.poller.last_batch)
    assert f"PAYMENT#{payment.payment_id}" in [r["dynamodb"]["Keys"]["sk"]["S"] for r in batch]

    assert stack.poller.redeliver_last_batch() == {"batchItemFailures": []}
    assert stack.invoke("confirmation_email", {"Records": batch}) == {"batchItemFailures": []}

    messages = emails_about(stack, billed.payable.number)
    assert len(to(messages, CLIENT_EMAIL)) == 1
    assert len(to(messages, FIRM_EMAIL)) == 1
    assert len(messages) == 2


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
@pytest.mark.parametrize("failures", [2, SES_ATTEMPTS + 1], ids=["within-one-send", "record-retried-by-the-stream"])
def test_ses_failing_then_recovering_sends_one_email_each(stack: LocalStack, failures: int) -> None:
    # Two failures are absorbed by the SES client's own retry; more fail the record, whose claim is
    # given back, and the stream's retry sends.
    billed = create_billed(stack.ledger)
    stack.poller.pause()
    stack.proxy.inject("ses", "SendEmail", 500, times=failures)

    settled_card_payment(stack, billed, 20_000)
    stack.poller.drain()

    assert not stack.proxy.pending_faults  # every failure happened
    messages = emails_about(stack, billed.payable.number)
    assert len(to(messages, CLIENT_EMAIL)) == 1
    assert len(to(messages, FIRM_EMAIL)) == 1


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_a_poison_record_ends_in_the_dead_letter_queue_while_the_rest_of_its_batch_is_sent(
    stack: LocalStack,
) -> None:
    # Given one good payment and, in the same batch after it, a payment item that is not valid
    billed = create_billed(stack.ledger)
    stack.poller.pause()
    settled_card_payment(stack, billed, 20_000)
    poison_id = new_id("pay")
    stack.client("dynamodb").put_item(
        TableName=stack.env["LEDGER_TABLE"],
        Item=keys.payment(billed.payable.payable_id, poison_id)
        | {"entity": {"S": "payment"}, "payment_id": {"S": poison_id}, "status": {"S": "succeeded"}},
    )

    # When the stream is delivered (with every retry the mapping allows)
    try:
        stack.poller.drain()
    finally:  # the poison item goes (a REMOVE wakes no one): other tests scan every payment
        stack.client("dynamodb").delete_item(
            TableName=stack.env["LEDGER_TABLE"], Key=keys.payment(billed.payable.payable_id, poison_id)
        )

    # Then the good payment's two emails are sent, and only the poison record is in the DLQ
    assert len(emails_about(stack, billed.payable.number)) == 2
    body = take_out_of_dlq(stack, poison_id)
    assert [r["dynamodb"]["Keys"]["sk"]["S"] for r in body["records"]] == [f"PAYMENT#{poison_id}"]
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1


def test_an_echeck_submitted_then_returned_sends_two_client_emails_the_second_with_a_fresh_link(
    stack: LocalStack,
) -> None:
    # Given an open bill with a pay link the client already has
    link = open_echeck_link(stack, amounts=(80_000,))
    billed = link.billed

    # When the client pays by eCheck (processing) and the bank returns the debit (R01): Stripe's
    # payment_intent.payment_failed webhook, as the emulator sends it, releases the payment
    result = link.pay_echeck()
    assert result["status"] == "processing"
    stack.poller.drain()
    returned_by_bank = stripe_test_control(stack, link.intent_of(result["payment_id"]), "return", "R01")
    assert returned_by_bank.status_code == 200, returned_by_bank.text
    failed = link.wait_for_status(result["payment_id"], "failed")
    assert failed.return_code == "R01"

    # Then the client got "submitted" and "returned" (with a new link), and the firm a return notice
    messages = wait_for_emails(stack, billed.payable.number, 3)
    submitted, returned = to(messages, CLIENT_EMAIL)
    (firm_notice,) = to(messages, FIRM_EMAIL)
    assert submitted["subject"].startswith("Payment submitted")
    assert "First Platypus Bank \u2022\u2022\u2022\u20220000" in submitted["text"]
    assert returned["subject"].startswith("Your payment was returned")
    assert "there were not enough funds in the account (return code R01)" in returned["text"]
    assert "$800.00\u00a0USD" in returned["text"]
    assert firm_notice["subject"].startswith("Payment returned: Jordan Client")
    assert "the client was emailed a new pay link" in firm_notice["text"]

    (fresh,) = [u for u in returned["links"] if "/pay/" in u]
    new_token = fresh.rsplit("/", 1)[1]
    assert new_token != link.token
    assert requests.get(f"{stack.urls['gateway']}/api/pay/{new_token}", timeout=10).status_code == 200
    assert requests.get(f"{stack.urls['gateway']}/api/pay/{link.token}", timeout=10).status_code != 200
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (0, 0, 80_000)


def test_a_pay_page_card_decline_sends_nothing_but_an_autopay_failure_emails_a_new_link(stack: LocalStack) -> None:
    billed = create_billed(stack.ledger)
    declined = card_payment(billed, 10_000)
    assert stack.ledger.reserve(declined)
    assert stack.ledger.release(declined, PaymentStatus.FAILED, failure_code="card_declined")
    stack.poller.drain()
    assert emails_about(stack, billed.payable.number) == []

    autopay = card_payment(billed, 10_000).model_copy(update={"origin": "autopay"})
    assert stack.ledger.reserve(autopay)
    assert stack.ledger.release(autopay, PaymentStatus.FAILED, failure_code="card_declined")
    stack.poller.drain()
    messages = emails_about(stack, billed.payable.number)
    (mail,) = to(messages, CLIENT_EMAIL)
    assert mail["subject"].startswith("Your payment did not go through")
    assert any("/pay/" in u for u in mail["links"])
    (notice,) = to(messages, FIRM_EMAIL)  # and the firm hears that its automatic charge failed
    assert notice["subject"].startswith("Automatic charge failed: Jordan Client")
    assert "card_declined" in notice["text"]
    assert len(messages) == 2


# -- replaying the dead-letter queue ---------------------------------------------------------------


def _payment_in_dlq(stack: LocalStack) -> tuple[Billed, Payment, dict[str, Any]]:
    """A settled payment whose emails failed every retry (SES down), and its DLQ message."""
    billed = create_billed(stack.ledger)
    stack.poller.pause()
    stack.proxy.inject("ses", "SendEmail", 503, times=1000, code="ServiceUnavailable")  # down for every retry
    payment = settled_card_payment(stack, billed, 30_000)
    stack.poller.drain()
    stack.proxy.clear_faults()
    assert emails_about(stack, billed.payable.number) == []
    return billed, payment, take_out_of_dlq(stack, payment.payment_id)


def _replay(stack: LocalStack, body: dict[str, Any]) -> Any:
    stack.client("sqs").send_message(QueueUrl=stack.env["EMAIL_DLQ_URL"], MessageBody=json.dumps(body))
    return replay(
        stack.client("sqs"),
        stack.env["EMAIL_DLQ_URL"],
        invoke_handler(stack),
        streams=stack.client("dynamodbstreams"),
        dynamodb=stack.client("dynamodb"),
        table=stack.env["LEDGER_TABLE"],
        log=lambda line: None,
    )


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_replaying_a_dlq_message_that_carries_its_records_sends_once_and_deletes_it(stack: LocalStack) -> None:
    billed, _, body = _payment_in_dlq(stack)

    report = _replay(stack, body)
    again = _replay(stack, body)  # a second replay of the same message: markers say "sent"

    assert report.replayed >= 1
    assert again.replayed >= 1
    messages = emails_about(stack, billed.payable.number)
    assert len(to(messages, CLIENT_EMAIL)) == 1
    assert len(to(messages, FIRM_EMAIL)) == 1
    assert all(body != b for b, _ in dlq_bodies(stack))


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_replaying_a_dlq_message_with_only_the_sequence_range_reads_the_records_back_from_the_stream(
    stack: LocalStack,
) -> None:
    billed, _payment, body = _payment_in_dlq(stack)
    aws_shaped = {k: v for k, v in body.items() if k != "records"}  # what Lambda's OnFailure sends

    report = _replay(stack, aws_shaped)

    assert report.rederived == 0
    assert report.records >= 1
    messages = emails_about(stack, billed.payable.number)
    assert len(to(messages, CLIENT_EMAIL)) == 1
    assert len(to(messages, FIRM_EMAIL)) == 1


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_replaying_a_message_whose_records_left_the_stream_re_derives_them_from_the_payment(
    stack: LocalStack,
) -> None:
    billed, _payment, body = _payment_in_dlq(stack)
    gone = {k: v for k, v in body.items() if k != "records"}
    gone["DDBStreamBatchInfo"] = body["DDBStreamBatchInfo"] | {"shardId": "shardId-00000000000000000000-trimmed"}

    report = _replay(stack, gone)

    assert report.rederived >= 1
    messages = emails_about(stack, billed.payable.number)
    assert len(to(messages, CLIENT_EMAIL)) == 1
    assert len(to(messages, FIRM_EMAIL)) == 1


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_a_message_that_fails_again_stays_in_the_queue(stack: LocalStack) -> None:
    billed, payment, body = _payment_in_dlq(stack)
    stack.proxy.inject("ses", "SendEmail", 503, times=SES_ATTEMPTS, code="ServiceUnavailable")

    report = _replay(stack, body)

    assert report.kept >= 1
    assert emails_about(stack, billed.payable.number) == []
    assert take_out_of_dlq(stack, payment.payment_id) == body


@pytest.mark.unreconciled("payments written straight to the ledger, with made-up intents, to feed the stream")
def test_the_consumer_writes_the_payment_outcome_by_method_and_its_emails_as_metrics(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a card payment settled in the ledger
    billed = create_billed(stack.ledger)
    payment = settled_card_payment(stack, billed, 12_345)

    # When the stream delivers it to confirmation_email and both emails go out
    wait_for_emails(stack, billed.payable.number, 2)

    # Then the function printed its EMF lines for this payment: a card success and two emails
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    mine = [line for line in lines if line.get("payment_id") == payment.payment_id]
    outcome = next(line for line in mine if "PaymentSucceeded" in line)
    emails = next(line for line in mine if "EmailsSent" in line)
    assert (outcome["PaymentSucceeded"], outcome["method"]) == ([1.0], "card")
    assert emails["EmailsSent"] == [2.0]
    namespaces = {line["_aws"]["CloudWatchMetrics"][0]["Namespace"] for line in (outcome, emails)}
    assert namespaces == {stack.env["POWERTOOLS_METRICS_NAMESPACE"]}
