"""Payables (bills and trust requests): creation under a unique number, reads with their history, voiding."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firmpay.errors import Conflict, NotFound
from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _iso, _load, _strip, _values
from firmpay.ledger.codec import from_item, to_attr
from firmpay.ledger.errors import dynamodb_errors
from firmpay.models.ledger import Payable, Payment, Refund


@dataclass(frozen=True)
class PayableHistory:
    """A payable with its payments and refunds (oldest first), read in one query."""

    payable: Payable
    payments: list[Payment]
    refunds: list[Refund]


class PayablesLedger(LedgerBase):
    """Payables and their unique numbers."""

    def create_payable(self, payable: Payable) -> Payable:
        """Store a new payable; its number must be unique per firm and kind.

        Returns the stored payable. A repeat of the same request (the firm retrying after its
        answer was lost: same client, number, dates, items and memo) returns the payable the first
        call made instead of a 409; another payable under a used number is a ``Conflict``. The
        transaction's ``ClientRequestToken`` is derived from the payable, so the SDK's own retries
        of it (a lost DynamoDB answer) are applied once by DynamoDB for 10 minutes.
        """
        guard = keys.payable_number(payable.firm_id, payable.kind, payable.number)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._put(
                        keys.payable(payable.payable_id),
                        "payable",
                        payable,
                        gsi1pk=f"FIRM#{payable.firm_id}",
                        gsi1sk=f"PAYABLE#{_iso(payable.created_at)}",
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **guard,
                        "entity": {"S": "number"},
                        "payable_id": to_attr(payable.payable_id),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        token = hashlib.sha256(payable.model_dump_json().encode()).hexdigest()[:36]
        codes = self._transact(items, client_request_token=token)
        if not codes:
            return payable
        existing = self._payable_numbered(payable.firm_id, payable.kind, payable.number)
        if existing is not None and _same_request(existing, payable):
            return existing
        raise Conflict(f"A {payable.kind.replace('_', ' ')} numbered {payable.number} already exists.")

    def _payable_numbered(self, firm_id: str, kind: str, number: str) -> Payable | None:
        guard = self._get(keys.payable_number(firm_id, kind, number))
        return self.get_payable(str(guard["payable_id"])) if guard and guard.get("payable_id") else None

    def get_payable(self, payable_id: str) -> Payable | None:
        item = self._get(keys.payable(payable_id))
        return Payable.model_validate(item) if item else None

    def get_payable_with_payments(self, payable_id: str) -> tuple[Payable, list[Payment]]:
        """The payable and its payments, oldest first, in one query."""
        history = self.get_payable_history(payable_id)
        return history.payable, history.payments

    def get_payable_history(self, payable_id: str) -> PayableHistory:
        """The payable, its payments and its refunds, oldest first, in one query."""
        items = self._query_partition(f"PAYABLE#{payable_id}")
        payable = next((_load(Payable, i) for i in items if i["entity"] == "payable"), None)
        if payable is None:
            raise NotFound("No such bill or trust request.")
        payments = sorted((_load(Payment, i) for i in items if i["entity"] == "payment"), key=lambda p: p.created_at)
        refunds = sorted((_load(Refund, i) for i in items if i["entity"] == "refund"), key=lambda r: r.created_at)
        return PayableHistory(payable, payments, refunds)

    def void_payable(self, payable_id: str, at: datetime) -> Payable:
        """Void a payable with no payment in flight. Voiding twice is a no-op."""
        from botocore.exceptions import ClientError

        try:
            with dynamodb_errors():
                answer = self._db.update_item(
                    TableName=self._table,
                    Key=keys.payable(payable_id),
                    UpdateExpression="SET voided_at = :at, version = version + :one",
                    ConditionExpression="attribute_exists(pk) AND pending_minor = :zero "
                    "AND (attribute_not_exists(voided_at) OR voided_at = :null)",
                    ExpressionAttributeValues=_values(at=_iso(at), one=1, zero=0, null=None),
                    ReturnValues="ALL_NEW",
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current = self.get_payable(payable_id)
            if current is None:
                raise NotFound("No such bill or trust request.") from error
            if current.voided_at is not None:
                return current
            raise Conflict("A payment is in progress for this payable; try again once it completes.") from error
        return _load(Payable, _strip(from_item(answer["Attributes"])))


def _same_request(stored: Payable, asked: Payable) -> bool:
    """Whether ``asked`` repeats the request that created ``stored`` (ids and times aside)."""
    fields = (
        "firm_id",
        "client_id",
        "kind",
        "number",
        "issued_on",
        "due_on",
        "currency",
        "line_items",
        "memo",
        "total_minor",
    )
    return all(getattr(stored, name, None) == getattr(asked, name, None) for name in fields)
