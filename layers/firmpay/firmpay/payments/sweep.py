"""The payment sweep (every 5 minutes): repair payments left reserved, by reading Stripe.

A payment stays reserved (pending, requires_action) when its function died between the Stripe
call and the ledger update, when a webhook was lost, or when a client walked away from a 3-D
Secure challenge. The sweep reads each such payment's intent and applies it exactly as the
webhook does; an intent that was never completed and is older than a review may live is canceled
at Stripe (with an Idempotency-Key) and the payment released, so its balance is payable again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from firmpay.ledger import Ledger
from firmpay.models.ledger import PaymentStatus
from firmpay.observability import logger
from firmpay.payments.processor import PaymentProcessor
from firmpay.payments.webhooks import reconcile_payment

SETTLE_AFTER = timedelta(minutes=3)
BATCH = 200


@dataclass
class SweepReport:
    examined: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return {"examined": self.examined, **self.outcomes}


def sweep_pending(
    ledger: Ledger,
    processor: PaymentProcessor,
    now: datetime,
    abandon_after: timedelta,
    settle_after: timedelta = SETTLE_AFTER,
    batch: int = BATCH,
) -> SweepReport:
    """Settle, release or cancel every payment reserved for longer than ``settle_after``."""
    report = SweepReport()
    for payment in ledger.pending_payments(now - settle_after, batch):
        report.examined += 1
        try:
            outcome = reconcile_payment(ledger, processor, payment, now, abandon_after)
        except Exception:  # one bad payment must not stop the sweep of the others
            logger.exception("sweep could not repair a payment", extra={"payment_id": payment.payment_id})
            outcome = "error"
        if outcome in ("unchanged", "error") and payment.status is not PaymentStatus.PROCESSING:
            # ACH debits process for days; anything else still reserved here deserves a look (alarm).
            logger.warning(
                "payment still pending",
                extra={
                    "payment_id": payment.payment_id,
                    "status": payment.status.value,
                    "since": str(payment.created_at),
                },
            )
        report.outcomes[outcome] += 1
    logger.info("sweep done", extra=report.as_dict())
    return report
