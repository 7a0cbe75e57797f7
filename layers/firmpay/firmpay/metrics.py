"""CloudWatch metrics of payments, emails, Stripe webhooks and the sweep, as EMF log lines.

Powertools Metrics prints each line to stdout in CloudWatch's Embedded Metric Format; CloudWatch
Logs turns it into metrics, so emitting costs no API call and no wait. Each call here prints its
line at once (no state kept between invocations, nothing to flush at the end of a handler).

Names and dimensions (namespace ``POWERTOOLS_METRICS_NAMESPACE``, one per stage; dimension
``service`` = ``POWERTOOLS_SERVICE_NAME`` on every metric):

| metric | unit | dimensions | emitted by |
| --- | --- | --- | --- |
| PaymentSucceeded, PaymentFailed, PaymentReturned | Count | (service, method) and (service) | confirmation_email (the ledger's stream) |
| EmailsSent, EmailsFailed | Count | (service) | confirmation_email |
| WebhookLag | Seconds | (service) | stripe_webhook: Stripe's event ``created`` to its receipt |
| SweepRepairs, SweepCanceled, SweepErrors, PaymentsPendingTooLong, EmailsStuckSending | Count | (service) | payment_sweep, every run (zeros included) |

Every distinct set of dimension values is a custom metric CloudWatch bills monthly, so the only
dimension beyond ``service`` is the payment method, which has a handful of values (card, echeck,
one per registered method); never a firm, a payment id or an amount. Payment outcomes also roll up
under ``service`` alone (a second EMF dimension set on the same line), which the alarms read
without listing the methods.

Cold start pays nothing: callers import this module where they write a metric, and Powertools'
metrics module is loaded with its Logger anyway (``aws_lambda_powertools`` imports it); the first
line costs ~0.2 ms (docs/decisions.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from firmpay.models.ledger import Payment, PaymentStatus
from firmpay.observability import logger

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
# Runs without the template's environment (tests, tools): their lines still say where they belong.
LOCAL_NAMESPACE = "FirmPay/local"

PAYMENT_SUCCEEDED = "PaymentSucceeded"
PAYMENT_FAILED = "PaymentFailed"
PAYMENT_RETURNED = "PaymentReturned"
EMAILS_SENT = "EmailsSent"
EMAILS_FAILED = "EmailsFailed"
WEBHOOK_LAG = "WebhookLag"
SWEEP_REPAIRS = "SweepRepairs"
SWEEP_CANCELED = "SweepCanceled"
SWEEP_ERRORS = "SweepErrors"
PAYMENTS_PENDING_TOO_LONG = "PaymentsPendingTooLong"
EMAILS_STUCK_SENDING = "EmailsStuckSending"

# Sweep outcomes that are not a change of the payment's state (``payments.sweep.SweepReport``).
_SWEEP_NO_CHANGE = frozenset({"unchanged", "error", "resume_next_run"})


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    unit: str = "Count"


def publish(metrics: Iterable[Metric], method: str | None = None, context: Mapping[str, str] | None = None) -> None:
    """Print one EMF line with ``metrics`` (nothing when there are none).

    With ``method``, the line carries the dimension ``method`` and also rolls up under ``service``
    alone. ``context`` (a payment id, an event id) goes in as plain fields of the line (EMF
    metadata: not dimensions, no cost), so Logs Insights finds what is behind a count. Never
    raises: a metric that cannot be written must not fail a payment or an email.
    """
    wanted = list(metrics)
    if not wanted:
        return
    try:
        from aws_lambda_powertools.metrics import EphemeralMetrics

        line = EphemeralMetrics(namespace=os.environ.get(NAMESPACE_ENV) or LOCAL_NAMESPACE)
        if method is not None:
            line.add_dimension(name="method", value=method)
            if line.service:
                line.add_dimensions(service=line.service)
        for key, value in (context or {}).items():
            line.add_metadata(key=key, value=value)
        for metric in wanted:
            line.add_metric(name=metric.name, unit=metric.unit, value=metric.value)
        line.flush_metrics()
    except Exception:
        logger.exception("could not write metrics", extra={"metrics": [m.name for m in wanted]})


def payment_outcome(old_status: PaymentStatus | None, payment: Payment) -> str | None:
    """The outcome metric a payment's status change counts, or None (no change, or not an outcome).

    A debit that failed after it was processing came back from the bank (an ACH return): returned,
    not failed. Any other change to failed (a decline, an autopay or plan charge refused) is failed.
    """
    new = payment.status
    if old_status is new:
        return None
    if new is PaymentStatus.SUCCEEDED:
        return PAYMENT_SUCCEEDED
    if new is PaymentStatus.FAILED:
        return PAYMENT_RETURNED if old_status is PaymentStatus.PROCESSING else PAYMENT_FAILED
    return None


def count_payment_change(old_status: PaymentStatus | None, payment: Payment, email_results: Iterable[str]) -> None:
    """The stream consumer's metrics for one payment record: its outcome by method, and its emails
    by ``EmailOutcome.result`` (``sent``; ``rejected`` is a failure; the others sent nothing new).

    The stream delivers at least once: a record retried after a failure is counted again. The
    ledger is the record of truth; these counts are for alarms and graphs.
    """
    outcome = payment_outcome(old_status, payment)
    if outcome is not None:
        publish([Metric(outcome, 1)], method=payment.method.type, context={"payment_id": payment.payment_id})
    results = list(email_results)
    sent, failed = results.count("sent"), results.count("rejected")
    publish(
        [Metric(name, count) for name, count in ((EMAILS_SENT, sent), (EMAILS_FAILED, failed)) if count],
        context={"payment_id": payment.payment_id},
    )


def record_webhook_lag(event_id: str, created: int | None, now: datetime) -> None:
    """Seconds from Stripe creating an event to its receipt here (each delivery, retries included).

    Stripe retries a delivery it could not make for up to three days, so a large lag means Stripe
    could not reach the webhook, or an event was resent from the Dashboard.
    """
    if created is None:
        return
    publish([Metric(WEBHOOK_LAG, max(0.0, now.timestamp() - created), "Seconds")], context={"event_id": event_id})


def count_sweep(outcomes: Mapping[str, int], pending_too_long: int, emails_stuck_sending: int | None) -> None:
    """One sweep run's metrics, zeros included, so each alarm sees every run and clears by itself
    (``emails_stuck_sending`` None: not counted this run, so not written).

    ``outcomes`` counts each payment's new status (or ``unchanged``, ``error``): a repair is a
    payment the sweep brought in line with Stripe (the webhook had not); ``canceled`` is counted
    apart, since most are payments whose client left a 3-D Secure challenge (normal).
    """
    repairs = sum(n for outcome, n in outcomes.items() if outcome not in _SWEEP_NO_CHANGE and outcome != "canceled")
    publish(
        [
            Metric(SWEEP_REPAIRS, repairs),
            Metric(SWEEP_CANCELED, outcomes.get("canceled", 0)),
            Metric(SWEEP_ERRORS, outcomes.get("error", 0)),
            Metric(PAYMENTS_PENDING_TOO_LONG, pending_too_long),
            *([] if emails_stuck_sending is None else [Metric(EMAILS_STUCK_SENDING, emails_stuck_sending)]),
        ]
    )
