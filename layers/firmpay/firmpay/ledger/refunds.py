"""Refunds: opened with their amount held on the payment, then settled or released."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _iso, _load, _values
from firmpay.ledger.codec import to_attr
from firmpay.ledger.errors import InvariantViolation, dynamodb_errors
from firmpay.models.ledger import Payment, PaymentStatus, Refund, RefundStatus


class RefundsLedger(LedgerBase):
    """Refunds and the payment and payable counters they move."""

    def get_refund(self, payable_id: str, refund_id: str) -> Refund | None:
        item = self._get(keys.refund(payable_id, refund_id))
        return Refund.model_validate(item) if item else None

    def list_refunds(self, payable_id: str) -> list[Refund]:
        """The payable's refunds, oldest first."""
        items = self._query_partition(f"PAYABLE#{payable_id}", "REFUND#")
        return sorted((_load(Refund, i) for i in items), key=lambda r: r.created_at)

    def open_refund(self, refund: Refund, seen: Payment) -> Literal["opened", "exists", "stale"]:
        """Write the PENDING refund and hold its amount on the payment, in one transaction.

        The payment must still be as ``seen`` (succeeded, same refunded and refunding amounts), so
        two refunds racing on one payment can never hold more than was paid: the one that loses
        gets ``stale`` and decides again on a fresh read. ``exists``: this refund row is there
        already (a retry with the same idempotency key).
        """
        if refund.amount_minor > seen.refundable_minor:
            raise ValueError("a refund cannot exceed what is left to refund")
        held = seen.refunding_minor + refund.amount_minor
        pending = refund.model_copy(update={"status": RefundStatus.PENDING})
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._put(keys.refund(refund.payable_id, refund.refund_id), "refund", pending),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.payment(seen.payable_id, seen.payment_id),
                    "UpdateExpression": "SET refunding_minor = :held, last_refund = :summary, updated_at = :at",
                    "ConditionExpression": "#status = :succeeded AND amount_minor = :amount AND "
                    + _counter_is("refunded_minor", ":refunded", seen.refunded_minor)
                    + " AND "
                    + _counter_is("refunding_minor", ":refunding", seen.refunding_minor),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": _values(
                        held=held,
                        summary=pending.summary().model_dump(mode="json"),
                        at=_iso(refund.created_at),
                        succeeded=PaymentStatus.SUCCEEDED.value,
                        amount=seen.amount_minor,
                        refunded=seen.refunded_minor,
                        refunding=seen.refunding_minor,
                    ),
                }
            },
        ]
        codes = self._transact(items)
        if not codes:
            return "opened"
        if codes[0] == "ConditionalCheckFailed":
            return "exists"
        return "stale"

    def settle_refund(self, refund: Refund, processor_refund_id: str | None, at: datetime) -> bool:
        """The pending refund succeeded: book it on the refund, the payment and the payable.

        A bill's balance goes back up (the money is owed again); a trust request's does not (the
        refund is a trust disbursement back to the client). False when the refund was already
        final (settled or released by a webhook or a retry first).
        """
        done = refund.model_copy(
            update={
                "status": RefundStatus.SUCCEEDED,
                "processor_refund_id": processor_refund_id or refund.processor_refund_id,
                "completed_at": at,
                "updated_at": at,
            }
        )
        counters = "SET paid_minor = paid_minor - :amount, refunded_minor = refunded_minor + :amount"
        if done.booking == "balance_restored":
            counters += ", balance_minor = balance_minor + :amount"
        items = [
            self._finish_refund_item(done),
            self._payment_refund_item(
                done, "refunding_minor = refunding_minor - :amount, refunded_minor = refunded_minor + :amount"
            ),
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.payable(refund.payable_id),
                    "UpdateExpression": f"{counters}, version = version + :one",
                    "ConditionExpression": "paid_minor >= :amount",
                    "ExpressionAttributeValues": _values(amount=refund.amount_minor, one=1),
                }
            },
        ]
        return self._finish_refund(done, items)

    def release_refund(self, refund: Refund, status: RefundStatus, failure_reason: str | None, at: datetime) -> bool:
        """The processor refused or canceled the refund: give its held amount back to the payment."""
        if status not in (RefundStatus.FAILED, RefundStatus.CANCELED):
            raise ValueError("release ends a refund as failed or canceled")
        done = refund.model_copy(
            update={"status": status, "failure_reason": failure_reason, "completed_at": at, "updated_at": at}
        )
        items = [
            self._finish_refund_item(done),
            self._payment_refund_item(done, "refunding_minor = refunding_minor - :amount"),
        ]
        return self._finish_refund(done, items)

    def note_processor_refund(self, refund: Refund, processor_refund_id: str) -> None:
        """Remember the processor's refund id of a refund it has not finished yet."""
        from botocore.exceptions import ClientError

        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.refund(refund.payable_id, refund.refund_id),
                    UpdateExpression="SET processor_refund_id = :id",
                    ConditionExpression="#status = :pending",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_values(id=processor_refund_id, pending=RefundStatus.PENDING.value),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _finish_refund_item(self, done: Refund) -> dict[str, Any]:
        changes = ("status", "processor_refund_id", "failure_reason", "completed_at", "updated_at")
        dumped = done.model_dump(mode="json")
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.refund(done.payable_id, done.refund_id),
                "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))),
                "ConditionExpression": "#status = :pending AND amount_minor = :amount",
                "ExpressionAttributeNames": {f"#f{i}": n for i, n in enumerate(changes)} | {"#status": "status"},
                "ExpressionAttributeValues": {f":v{i}": to_attr(dumped[n]) for i, n in enumerate(changes)}
                | _values(pending=RefundStatus.PENDING.value, amount=done.amount_minor),
            }
        }

    def _payment_refund_item(self, done: Refund, counters: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.payment(done.payable_id, done.payment_id),
                "UpdateExpression": f"SET {counters}, last_refund = :summary, updated_at = :at",
                "ConditionExpression": "refunding_minor >= :amount",
                "ExpressionAttributeValues": _values(
                    amount=done.amount_minor, summary=done.summary().model_dump(mode="json"), at=_iso(done.updated_at)
                ),
            }
        }

    def _finish_refund(self, done: Refund, items: list[dict[str, Any]]) -> bool:
        codes = self._transact(items)
        if not codes:
            return True
        if codes[0] == "ConditionalCheckFailed":
            return False
        raise InvariantViolation(f"payment {done.payment_id} does not hold refund {done.refund_id}")


def _counter_is(name: str, placeholder: str, value: int) -> str:
    """``name = value``; a counter written before it existed counts as 0."""
    if value:
        return f"{name} = {placeholder}"
    return f"(attribute_not_exists({name}) OR {name} = {placeholder})"
