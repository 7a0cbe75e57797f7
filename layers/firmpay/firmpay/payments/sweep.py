"""The payment sweep (every 5 minutes): repair payments left reserved, by reading Stripe.

A payment stays reserved (pending, requires_action) when its function died between the Stripe
call and the ledger update, when a webhook was lost, or when a client walked away from a 3-D
Secure challenge. The sweep reads each such payment's intent and applies it exactly as the
webhook does; an intent that was never completed and is older than a review may live is canceled
at Stripe (with an Idempotency-Key) and the payment released, so its balance is payable again.

It walks every reserved payment, oldest first, within the invocation's time (``resumable``): eCheck
debits stay reserved for days while they process, and however many there are, a newer abandoned
3-D Secure payment behind them is reached, in this run or, from where it stopped, the next.

Each run also counts the confirmation emails stuck in ``sending`` (handed to SES, outcome unknown)
and writes its counts as metrics (``firmpay.metrics.count_sweep``), which the template's alarms read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from firmpay.ledger import Ledger
from firmpay.models.ledger import Payment, PaymentStatus
from firmpay.observability import logger
from firmpay.payments.ports import PaymentProcessor
from firmpay.payments.resumable import TimeLeft, unlimited, walk_resumably
from firmpay.payments.webhooks import reconcile_payment

SETTLE_AFTER = timedelta(minutes=3)
# The worst case of one payment: a retrieve and a cancel, each up to 3 tries of 2 s connect + 5 s read.
RESERVE_SECONDS = 45.0
WALK = "sweep"
# An email still `sending` this long after it went to SES will not be marked sent by anyone: SES
# answers within 51.3 s at worst (three tries of 2 s connect + 15 s read).
EMAIL_STUCK_AFTER = timedelta(minutes=5)


@dataclass
class SweepReport:
    examined: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    # Reserved longer than a review may live, not an ACH debit processing, and neither settled,
    # released nor canceled by this run: nothing will move it by itself (alarm).
    pending_too_long: int = 0
    emails_stuck_sending: int | None = None  # None: this run could not count them

    def as_dict(self) -> dict[str, int]:
        counts = {"examined": self.examined, **self.outcomes, "pending_too_long": self.pending_too_long}
        if self.emails_stuck_sending is not None:
            counts["emails_stuck_sending"] = self.emails_stuck_sending
        return counts


def sweep_pending(
    ledger: Ledger,
    processor: PaymentProcessor,
    now: datetime,
    abandon_after: timedelta,
    settle_after: timedelta = SETTLE_AFTER,
    time_left: TimeLeft = unlimited,
) -> SweepReport:
    """Settle, release or cancel every payment reserved for longer than ``settle_after``, while
    ``time_left()`` leaves room for one more; the next run resumes where this one stopped."""
    report = SweepReport()

    def repair(payment: Payment) -> None:
        report.examined += 1
        try:
            outcome = reconcile_payment(ledger, processor, payment, now, abandon_after)
        except Exception:  # one bad payment must not stop the sweep of the others
            logger.exception("sweep could not repair a payment", extra={"payment_id": payment.payment_id})
            outcome = "error"
        if outcome in ("unchanged", "error") and payment.status is not PaymentStatus.PROCESSING:
            # ACH debits process for days; anything else still reserved here deserves a look, and
            # one past a review's lifetime should have been canceled already (alarm).
            if payment.created_at <= now - abandon_after:
                report.pending_too_long += 1
            logger.warning(
                "payment still pending",
                extra={
                    "payment_id": payment.payment_id,
                    "status": payment.status.value,
                    "since": str(payment.created_at),
                },
            )
        report.outcomes[outcome] += 1

    walked = walk_resumably(
        ledger,
        WALK,
        lambda after: ledger.pending_payments(now - settle_after, after),
        repair,
        time_left,
        RESERVE_SECONDS,
    )
    if not walked.finished:
        report.outcomes["resume_next_run"] += 1
        logger.warning("sweep ran out of time; the next run resumes where it stopped", extra=report.as_dict())
    report.emails_stuck_sending = _count_emails_stuck_sending(ledger, now)
    logger.info("sweep done", extra=report.as_dict())
    from firmpay.metrics import count_sweep  # at the end of the first run, not at cold start

    count_sweep(report.outcomes, report.pending_too_long, report.emails_stuck_sending)
    return report


def _count_emails_stuck_sending(ledger: Ledger, now: datetime) -> int | None:
    """How many emails wait on an operator (docs/operations.md), each logged with its payment;
    None if the ledger did not answer (no count is better than a zero that clears the alarm)."""
    try:
        stuck = ledger.emails_stuck_sending(now - EMAIL_STUCK_AFTER)
    except Exception:  # a count must not fail the sweep's repairs; the next run counts again
        logger.exception("sweep could not count the emails stuck in sending")
        return None
    for payment_id, kind in stuck:
        logger.warning(
            "email stuck in sending: SES may or may not have sent it", extra={"payment_id": payment_id, "kind": kind}
        )
    return len(stuck)
