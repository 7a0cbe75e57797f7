"""Operational metrics, read back from the EMF lines Powertools prints (what CloudWatch Logs turns into
metrics): payment outcomes by method and emails from the stream consumer's path, webhook lag,
and the sweep's repairs, waits and stuck emails.

The stream tests run the consumer's own steps on a stream record (``payment_change`` ->
``send_payment_emails`` with an in-memory SES -> ``count_payment_change``) against DynamoDB Local;
tests/integration/test_confirmation_email.py checks the deployed wiring through the local stack.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from firmpay import metrics
from firmpay.emails.confirmations import MailSettings, send_payment_emails
from firmpay.emails.notifications import payment_change
from firmpay.gateways.ses import MailRejected
from firmpay.gateways.stripe_gateway import webhook_signature_valid
from firmpay.ledger import Ledger
from firmpay.ledger.codec import to_item
from firmpay.models.ledger import MethodSummary, Payment, PaymentStatus
from firmpay.payments import webhooks
from firmpay.payments.sweep import sweep_pending
from tests.conftest import ledger_table_definition
from tests.support.card_fakes import CARD_3DS, FakeProcessor
from tests.support.factories import card_payment, create_billed
from tests.unit.test_card_payments import open_link, review, submit
from tests.unit.test_card_webhooks import SECRET, crashed_after_confirm, signed

P = PaymentStatus
NAMESPACE = "FirmPay/test"
SETTINGS = MailSettings("payments@firmpay.example", "https://pay.firmpay.example", 90)
ECHECK = MethodSummary(type="echeck", bank_name="First Platypus Bank", last4="0000")


@pytest.fixture(autouse=True)
def metrics_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What template.yaml's Globals give every function."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "firmpay")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)


def emf_lines(out: str) -> list[dict[str, Any]]:
    """The EMF documents among the captured stdout lines (log lines are JSON too, without ``_aws``)."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    for line in lines:
        [directive] = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
    return lines


def values(line: dict[str, Any]) -> dict[str, float]:
    """Metric name -> value of one EMF line (Powertools writes a one-element list per metric)."""
    [directive] = line["_aws"]["CloudWatchMetrics"]
    found = {}
    for metric in directive["Metrics"]:
        value = line[metric["Name"]]
        found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


def units(line: dict[str, Any]) -> dict[str, str]:
    [directive] = line["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}


def dimension_sets(line: dict[str, Any]) -> list[set[str]]:
    [directive] = line["_aws"]["CloudWatchMetrics"]
    return [set(names) for names in directive["Dimensions"]]


class Outbox:
    """An in-memory SES that refuses the addresses it is told to refuse."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.sent: list[EmailMessage] = []

    def __call__(self, message: EmailMessage) -> str:
        if message["To"] in self.refuse:
            raise MailRejected("MessageRejected")
        self.sent.append(message)
        return f"msg-{len(self.sent)}"


def stream_record(old: Payment | None, new: Payment) -> dict[str, Any]:
    """The DynamoDB stream record (Lambda's shape) of a payment item going from ``old`` to ``new``."""

    def image(payment: Payment) -> dict[str, Any]:
        return to_item(payment.model_dump(mode="json", exclude_none=True) | {"entity": "payment"})

    stream = {"NewImage": image(new)} | ({"OldImage": image(old)} if old else {})
    return {"eventName": "MODIFY" if old else "INSERT", "dynamodb": stream}


def consume(ledger: Ledger, record: dict[str, Any], outbox: Outbox) -> None:
    """What confirmation_email's record handler does with one record."""
    change = payment_change(record)
    assert change is not None
    sent = send_payment_emails(ledger, change, outbox, SETTINGS, datetime.now(UTC))
    metrics.count_payment_change(change.old_status, change.payment, (email.result for email in sent))


def reserved(ledger: Ledger, payment: Payment) -> Payment:
    assert ledger.reserve(payment)
    stored = ledger.get_payment(payment.payable_id, payment.payment_id)
    assert stored is not None
    return stored


# -- payment outcomes and emails (the stream consumer) -----------------------------------------------


def test_a_card_payment_that_succeeds_counts_one_success_for_card_and_its_two_emails(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a card payment that was reserved, then settled
    pending = reserved(ledger, card_payment(create_billed(ledger), 50_000))
    assert ledger.settle(pending)
    settled = ledger.get_payment(pending.payable_id, pending.payment_id)
    assert settled is not None

    # When the consumer handles the stream record of the settlement
    consume(ledger, stream_record(pending, settled), Outbox())

    # Then one success is counted for card, also rolled up for the service, and two emails sent
    outcome, emails = emf_lines(capsys.readouterr().out)
    assert values(outcome) == {"PaymentSucceeded": 1}
    assert (outcome["method"], outcome["service"]) == ("card", "firmpay")
    assert dimension_sets(outcome) == [{"method", "service"}, {"service"}]
    assert values(emails) == {"EmailsSent": 2}
    assert dimension_sets(emails) == [{"service"}]
    assert units(emails) == {"EmailsSent": "Count"}
    # the payment is named on both lines (for Logs Insights), never as a dimension
    assert outcome["payment_id"] == emails["payment_id"] == settled.payment_id


def test_a_declined_autopay_charge_counts_a_failure_for_its_method(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an autopay card charge that was reserved, then refused
    charge = card_payment(create_billed(ledger), 20_000).model_copy(update={"origin": "autopay"})
    pending = reserved(ledger, charge)
    failed = pending.model_copy(update={"status": P.FAILED, "failure_code": "card_declined"})

    # When the consumer handles the record
    consume(ledger, stream_record(pending, failed), Outbox())

    # Then a failure (not a return) is counted for card, and the client and firm are emailed
    outcome, emails = emf_lines(capsys.readouterr().out)
    assert values(outcome) == {"PaymentFailed": 1}
    assert outcome["method"] == "card"
    assert values(emails) == {"EmailsSent": 2}


def test_an_echeck_debit_that_fails_after_processing_counts_a_return_for_echeck(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an eCheck debit that was processing at the bank, then came back (R01)
    debit = card_payment(create_billed(ledger), 40_000).model_copy(update={"method": ECHECK})
    processing = ledger.update_reserved_payment(reserved(ledger, debit), status=P.PROCESSING)
    assert processing is not None
    returned = processing.model_copy(update={"status": P.FAILED, "return_code": "R01"})

    # When the consumer handles the record
    consume(ledger, stream_record(processing, returned), Outbox())

    # Then it is a return, by method echeck, not a failure
    outcome, emails = emf_lines(capsys.readouterr().out)
    assert values(outcome) == {"PaymentReturned": 1}
    assert outcome["method"] == "echeck"
    assert dimension_sets(outcome) == [{"method", "service"}, {"service"}]
    assert values(emails) == {"EmailsSent": 2}


def test_an_email_ses_refuses_counts_as_failed_and_the_other_as_sent(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a settled card payment and an SES that refuses the client's address for good
    pending = reserved(ledger, card_payment(create_billed(ledger), 10_000))
    assert ledger.settle(pending)
    settled = ledger.get_payment(pending.payable_id, pending.payment_id)
    assert settled is not None

    # When the consumer handles the record
    consume(ledger, stream_record(pending, settled), Outbox(refuse=("jordan@example.com",)))

    # Then the firm's email counts as sent and the client's as failed
    _, emails = emf_lines(capsys.readouterr().out)
    assert values(emails) == {"EmailsSent": 1, "EmailsFailed": 1}


def test_a_record_that_changes_no_outcome_and_sends_nothing_writes_no_metric(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the INSERT of a payment being reserved (pending: no outcome, no email)
    pending = reserved(ledger, card_payment(create_billed(ledger), 10_000))

    # When the consumer handles it
    consume(ledger, stream_record(None, pending), Outbox())

    # Then no metric line is written
    assert emf_lines(capsys.readouterr().out) == []


def test_a_metric_that_cannot_be_written_never_fails_the_caller(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a metric CloudWatch would refuse (an unknown unit)
    # When it is published, then nothing raises and nothing is written
    metrics.publish([metrics.Metric("PaymentSucceeded", 1, "Furlongs")])
    assert emf_lines(capsys.readouterr().out) == []


# -- webhook lag -------------------------------------------------------------------------------------


def test_the_webhook_records_the_seconds_since_stripe_created_the_event(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a signed event Stripe created 42 seconds before it arrives
    now = datetime.now(UTC)
    payload = json.dumps(
        {"id": "evt_lag", "type": "customer.created", "created": int(now.timestamp()) - 42, "data": {"object": {}}}
    )
    event = webhooks.read_event(payload, signed(payload), SECRET, webhook_signature_valid)

    # When the webhook reconciles it
    webhooks.reconcile_event(ledger, FakeProcessor(), event, now)

    # Then the lag is written in seconds, for the service
    [lag] = emf_lines(capsys.readouterr().out)
    assert values(lag) == {"WebhookLag": pytest.approx(42, abs=1)}
    assert units(lag) == {"WebhookLag": "Seconds"}
    assert dimension_sets(lag) == [{"service"}]
    assert lag["event_id"] == "evt_lag"


def test_an_event_without_a_creation_time_records_no_lag(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    payload = json.dumps({"id": "evt_old", "type": "customer.created", "data": {"object": {}}})
    event = webhooks.read_event(payload, signed(payload, int(time.time())), SECRET, webhook_signature_valid)

    webhooks.reconcile_event(ledger, FakeProcessor(), event, datetime.now(UTC))

    assert emf_lines(capsys.readouterr().out) == []


# -- the sweep ---------------------------------------------------------------------------------------


@pytest.fixture
def own_ledger(dynamodb_endpoint: str) -> Iterator[Ledger]:
    """A table of its own on the session's DynamoDB Local: the sweep walks every reserved payment
    and every stuck email of its table, and counts must not include other tests' leftovers."""
    import botocore.session

    table = f"ledger-metrics-{uuid.uuid4().hex[:8]}"
    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1"
    )
    client.create_table(TableName=table, **ledger_table_definition())
    yield Ledger(client, table)
    client.delete_table(TableName=table)


def on_sending_index(ledger: Ledger) -> int:
    """How many items the ``sending`` part of gsi1 holds, whatever their status."""
    answer = ledger._db.query(
        TableName=ledger._table,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "EMAILSENDING"}},
        Select="COUNT",
    )
    return int(answer["Count"])


def sweep_line(out: str) -> dict[str, Any]:
    [line] = emf_lines(out)
    assert dimension_sets(line) == [{"service"}]
    return line


def test_the_sweep_counts_a_payment_it_repaired_because_the_webhook_never_came(
    own_ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a payment charged at Stripe whose function died before the ledger heard of it
    stripe = FakeProcessor()
    crashed_after_confirm(own_ledger, stripe, open_link(own_ledger))
    capsys.readouterr()

    # When the sweep runs
    sweep_pending(own_ledger, stripe, datetime.now(UTC) + timedelta(minutes=4), timedelta(minutes=15))

    # Then one repair is counted, and the other counts are written as zeros
    assert values(sweep_line(capsys.readouterr().out)) == {
        "SweepRepairs": 1,
        "SweepCanceled": 0,
        "SweepErrors": 0,
        "PaymentsPendingTooLong": 0,
        "EmailsStuckSending": 0,
    }


def test_the_sweep_counts_an_abandoned_challenge_it_canceled_apart_from_repairs(
    own_ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a client who left a 3-D Secure challenge unanswered
    stripe = FakeProcessor()
    context = open_link(own_ledger)
    asked = submit(own_ledger, stripe, context, review(own_ledger, stripe, context, method=CARD_3DS).review_id)
    assert asked.payment.status is P.REQUIRES_ACTION
    capsys.readouterr()

    # When the sweep runs after a review's lifetime
    sweep_pending(own_ledger, stripe, datetime.now(UTC) + timedelta(minutes=16), timedelta(minutes=15))

    # Then it counts as canceled, not as a repair (nothing was lost; the client walked away)
    counts = values(sweep_line(capsys.readouterr().out))
    assert (counts["SweepCanceled"], counts["SweepRepairs"]) == (1, 0)


@pytest.mark.parametrize(("age_minutes", "too_long"), [(4, 0), (16, 1)])
def test_the_sweep_counts_an_error_and_a_payment_pending_past_a_review_s_lifetime(
    own_ledger: Ledger, capsys: pytest.CaptureFixture[str], age_minutes: int, too_long: int
) -> None:
    # Given a crashed payment and Stripe not answering
    stripe = FakeProcessor()
    crashed_after_confirm(own_ledger, stripe, open_link(own_ledger))
    stripe.unavailable = True
    capsys.readouterr()

    # When the sweep runs some minutes later (a review lives 15)
    sweep_pending(own_ledger, stripe, datetime.now(UTC) + timedelta(minutes=age_minutes), timedelta(minutes=15))

    # Then it counts an error, no repair, and a payment pending too long only past 15 minutes
    counts = values(sweep_line(capsys.readouterr().out))
    assert (counts["SweepRepairs"], counts["SweepErrors"], counts["PaymentsPendingTooLong"]) == (0, 1, too_long)


def test_the_sweep_counts_emails_stuck_in_sending_until_they_are_settled(
    own_ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an email handed to SES ten minutes ago whose outcome never came, and one handed over just now
    now = datetime.now(UTC)
    old, recent = int((now - timedelta(minutes=10)).timestamp()), int(now.timestamp())
    expires = recent + 3600
    assert own_ledger.claim_email("pay_stuck", "client_payment_received", "c1", old, 60, expires, "sending") == (
        "claimed"
    )
    assert own_ledger.claim_email("pay_busy", "client_payment_received", "c2", recent, 60, expires, "sending") == (
        "claimed"
    )

    # When the sweep runs, only the old one counts
    sweep_pending(own_ledger, FakeProcessor(), now, timedelta(minutes=15))
    assert values(sweep_line(capsys.readouterr().out))["EmailsStuckSending"] == 1

    # And once both are marked sent (an operator found the first in SES's send events), the next
    # run counts none, and the index no longer holds them (every run reads all it holds)
    assert own_ledger.finish_email("pay_stuck", "client_payment_received", "c1", "sent", "ses-id", now)
    assert own_ledger.finish_email("pay_busy", "client_payment_received", "c2", "sent", "ses-id", now)
    sweep_pending(own_ledger, FakeProcessor(), now + timedelta(minutes=10), timedelta(minutes=15))
    assert values(sweep_line(capsys.readouterr().out))["EmailsStuckSending"] == 0
    assert on_sending_index(own_ledger) == 0


def test_an_email_claimed_then_marked_sending_is_on_the_stuck_index_and_leaves_it_when_released(
    own_ledger: Ledger,
) -> None:
    # Given a claim that needed a pay link first, then was marked sending
    now = int(datetime.now(UTC).timestamp())
    assert own_ledger.claim_email("pay_link", "client_payment_failed", "c1", now - 600, 60, now + 3600) == "claimed"
    assert own_ledger.emails_stuck_sending(datetime.now(UTC)) == []
    assert own_ledger.mark_email_sending("pay_link", "client_payment_failed", "c1", now - 600)

    # Then it is listed as stuck
    assert own_ledger.emails_stuck_sending(datetime.now(UTC)) == [("pay_link", "client_payment_failed")]

    # And a send that failed with no doubt (the claim given back) takes it off the list and the index
    own_ledger.release_email_claim("pay_link", "client_payment_failed", "c1")
    assert own_ledger.emails_stuck_sending(datetime.now(UTC)) == []
    assert on_sending_index(own_ledger) == 0
