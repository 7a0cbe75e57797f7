"""Many ledger rows at once, written with the ledger's own item encoding in BatchWriteItem calls
(cheap: no HTTP, no transaction per row), for tests of walks over a whole index."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from firmpay.ledger import Ledger, keys
from firmpay.models.ledger import MethodSummary, Payment, PaymentPlan, PaymentStatus
from local.stack import LocalStack
from tests.support.factories import Billed, card_payment


def batch_write(stack: LocalStack, items: list[dict[str, Any]], delete: bool = False) -> None:
    """Put ``items`` (DynamoDB JSON; with ``delete``, keys to delete) in batches of 25, retrying
    what DynamoDB left unprocessed."""
    dynamodb = stack.client("dynamodb")
    table = stack.env["LEDGER_TABLE"]
    for start in range(0, len(items), 25):
        batch = items[start : start + 25]
        writes = [{"DeleteRequest": {"Key": i}} if delete else {"PutRequest": {"Item": i}} for i in batch]
        requests: Any = {table: writes}
        for _ in range(10):
            requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems")
            if not requests:
                break
        assert not requests, f"DynamoDB left {requests} unwritten"


def processing_debits(
    stack: LocalStack, billed: Billed, intent_id: str, count: int, amount: int, since: datetime
) -> list[Payment]:
    """``count`` eCheck debits still processing on ``billed``'s payable (its whole total, reserved),
    created a microsecond apart from ``since`` on, all on one processing intent at Stripe."""
    ledger: Ledger = stack.ledger
    payable = billed.payable
    assert payable.total_minor == count * amount, "the payable's total is what the debits reserve"
    debits = [
        card_payment(billed, amount).model_copy(
            update={
                "method": MethodSummary(type="echeck", bank_name="Platypus Bank", last4="0000"),
                "status": PaymentStatus.PROCESSING,
                "processor_intent_id": intent_id,
                "created_at": since + timedelta(microseconds=i),
                "updated_at": since + timedelta(microseconds=i),
            }
        )
        for i in range(count)
    ]
    reserved = payable.model_copy(update={"balance_minor": 0, "pending_minor": payable.total_minor})
    items = [
        ledger._put(
            keys.payable(payable.payable_id),
            "payable",
            reserved,
            gsi1pk=f"FIRM#{payable.firm_id}",
            gsi1sk=f"PAYABLE#{payable.created_at.isoformat(timespec='microseconds')}",
        )
    ]
    items += [
        ledger._put(
            keys.payment(d.payable_id, d.payment_id),
            "payment",
            d,
            gsi1pk=keys.PENDING_INDEX_PK,
            gsi1sk=f"{d.created_at.isoformat(timespec='microseconds')}#{d.payable_id}#{d.payment_id}",
        )
        for d in debits
    ]
    batch_write(stack, items)
    return debits


def forget(stack: LocalStack, payments: list[Payment]) -> None:
    """Delete bulk payment rows again, so later sweeps on this stack do not walk them."""
    batch_write(stack, [keys.payment(p.payable_id, p.payment_id) for p in payments], delete=True)


def due_plans(stack: LocalStack, plans: list[PaymentPlan]) -> None:
    """Store active plans (on the ``PLANDUE`` index, as ``Ledger.create_plan`` does) in batches."""
    ledger: Ledger = stack.ledger
    batch_write(stack, [ledger._plan_item(p) for p in plans])


def forget_plans(stack: LocalStack, plans: list[PaymentPlan]) -> None:
    """Delete bulk plan rows again, so later plan runs on this stack do not walk them."""
    batch_write(stack, [keys.plan(p.payable_id, p.plan_id) for p in plans], delete=True)
