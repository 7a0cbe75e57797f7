"""Payments: reserve (balance -> pending), settle (pending -> paid), release (pending -> balance)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from firmpay.errors import AmountOverBalance, CurrencyNotAccepted, NotFound, PayableClosed
from firmpay.i18n import N_
from firmpay.ledger import keys
from firmpay.ledger.base import _iso, _load, _values
from firmpay.ledger.codec import to_attr
from firmpay.ledger.errors import IdempotencyKeyTaken, InvariantViolation, dynamodb_errors
from firmpay.ledger.limits import DailyLimit, LimitsLedger
from firmpay.ledger.payables import PayablesLedger
from firmpay.models.ledger import RESERVED_STATUSES, IdempotencyRecord, Payment, PaymentStatus, utcnow

_RESERVED = [s.value for s in RESERVED_STATUSES]


class PaymentsLedger(PayablesLedger, LimitsLedger):
    """Payments and the payable counters they move, in one transaction each."""

    def reserve(
        self,
        payment: Payment,
        daily_limit: DailyLimit | None = None,
        idempotency: IdempotencyRecord | None = None,
        attempt_slots: Sequence[DailyLimit] = (),
    ) -> bool:
        """Move ``payment.amount`` from balance to pending and write the PENDING payment row.

        Returns False when this very payment row already exists (a retry of the same submit);
        raises ``AmountOverBalance`` / ``PayableClosed`` when the payable cannot take it, and
        ``daily_limit.error`` when the optional per-day counter (same transaction) is full.
        With ``idempotency`` (a firm's key, autopay), the ``IDEM#`` item is written in the same
        transaction; ``IdempotencyKeyTaken`` when the key already made another payment.
        ``attempt_slots`` (card-testing counters) each take one slot in the same transaction, so
        no more attempts than their limits can ever reach the processor; a full one raises its
        ``error``.
        """
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.payable(payment.payable_id),
                    "UpdateExpression": "SET balance_minor = balance_minor - :amount, "
                    "pending_minor = pending_minor + :amount, version = version + :one",
                    "ConditionExpression": "attribute_exists(pk) AND balance_minor >= :amount "
                    "AND currency = :currency AND (attribute_not_exists(voided_at) OR voided_at = :null)",
                    "ExpressionAttributeValues": _values(
                        amount=payment.amount_minor, one=1, currency=payment.currency, null=None
                    ),
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._put(
                        keys.payment(payment.payable_id, payment.payment_id),
                        "payment",
                        payment,
                        gsi1pk=keys.PENDING_INDEX_PK,
                        gsi1sk=f"{_iso(payment.created_at)}#{payment.payable_id}#{payment.payment_id}",
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        if daily_limit is not None:
            items.append(self._counter_slot_item(daily_limit))
        if idempotency is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._put(
                            keys.idempotency(idempotency.firm_id, idempotency.idempotency_key),
                            "idempotency",
                            idempotency,
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        slots_from = len(items)
        items.extend(self._counter_slot_item(slot) for slot in attempt_slots)
        codes = self._transact(items)
        if not codes:
            return True

        def failed(index: int) -> bool:
            return index < len(codes) and codes[index] == "ConditionalCheckFailed"

        if failed(1):
            return False
        if idempotency is not None and failed(slots_from - 1):
            raise IdempotencyKeyTaken(idempotency.idempotency_key)
        if daily_limit is not None and failed(2) and not codes[0]:
            raise daily_limit.error
        for offset, slot in enumerate(attempt_slots):
            if failed(slots_from + offset) and not codes[0]:
                raise slot.error
        payable = self.get_payable(payment.payable_id)
        if payable is None:
            raise NotFound("No such bill or trust request.")
        if payable.voided_at is not None:
            raise PayableClosed("This bill was voided and can no longer be paid.")
        if payable.currency != payment.currency:
            raise CurrencyNotAccepted()
        if payable.balance_minor == 0:
            closed = (
                N_("This bill has been paid in full.")
                if payable.pending_minor == 0
                else N_("A payment for the full balance is already in progress.")
            )
            raise PayableClosed(closed)
        raise AmountOverBalance("The amount is more than the balance due.", balance_minor=payable.balance_minor)

    def get_payment(self, payable_id: str, payment_id: str) -> Payment | None:
        item = self._get(keys.payment(payable_id, payment_id))
        return Payment.model_validate(item) if item else None

    def update_reserved_payment(self, payment: Payment, **changes: Any) -> Payment | None:
        """Change fields of a payment that is still reserved (e.g. intent id, requires_action).

        Returns the updated payment, or None when it is no longer reserved (settled or released
        meanwhile: the caller then reads the final state instead).
        """
        from botocore.exceptions import ClientError

        changes["updated_at"] = utcnow()
        updated = payment.model_copy(update=changes)
        dumped = updated.model_dump(mode="json")
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": to_attr(dumped[name]) for i, name in enumerate(changes)}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.payment(payment.payable_id, payment.payment_id),
                    UpdateExpression=f"SET {assignments}",
                    ConditionExpression="#status IN (:r0, :r1, :r2)",
                    ExpressionAttributeNames=names | {"#status": "status"},
                    ExpressionAttributeValues=values | {f":r{i}": {"S": s} for i, s in enumerate(_RESERVED)},
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return updated

    def settle(self, payment: Payment, **changes: Any) -> bool:
        """pending -> paid for a reserved payment. False if it was already settled or released."""
        return self._complete(payment, PaymentStatus.SUCCEEDED, changes)

    def release(self, payment: Payment, status: PaymentStatus, **changes: Any) -> bool:
        """pending -> balance for a reserved payment that failed or was canceled."""
        if status not in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
            raise ValueError("release ends a payment as failed or canceled")
        return self._complete(payment, status, changes)

    def _complete(self, payment: Payment, status: PaymentStatus, changes: dict[str, Any]) -> bool:
        changes = {**changes, "status": status, "updated_at": utcnow()}
        dumped = payment.model_copy(update=changes).model_dump(mode="json")
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": to_attr(dumped[name]) for i, name in enumerate(changes)}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
        if status is PaymentStatus.SUCCEEDED:
            counters = "SET pending_minor = pending_minor - :amount, paid_minor = paid_minor + :amount"
        else:
            counters = "SET pending_minor = pending_minor - :amount, balance_minor = balance_minor + :amount"
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.payment(payment.payable_id, payment.payment_id),
                    "UpdateExpression": f"SET {assignments} REMOVE gsi1pk, gsi1sk",
                    "ConditionExpression": "#status IN (:r0, :r1, :r2) AND amount_minor = :amount",
                    "ExpressionAttributeNames": names | {"#status": "status"},
                    "ExpressionAttributeValues": values
                    | {f":r{i}": {"S": s} for i, s in enumerate(_RESERVED)}
                    | _values(amount=payment.amount_minor),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.payable(payment.payable_id),
                    "UpdateExpression": f"{counters}, version = version + :one",
                    "ConditionExpression": "pending_minor >= :amount",
                    "ExpressionAttributeValues": _values(amount=payment.amount_minor, one=1),
                }
            },
        ]
        if status is PaymentStatus.SUCCEEDED:
            items.extend(self._give_back_slot_item(scope, window) for scope, window in payment.attempt_slots)
        codes = self._transact(items)
        if not codes:
            return True
        if codes[0] == "ConditionalCheckFailed":
            return False
        raise InvariantViolation(f"payable {payment.payable_id} holds less pending than payment {payment.payment_id}")

    def pending_payments(self, older_than: datetime, after: str | None = None) -> Iterator[tuple[str, Payment]]:
        """Payments still reserved that were created before ``older_than`` (for the sweep), oldest
        first, each with its position on the index (resume with ``after``), read page after page."""
        for position, item in self._walk_index(keys.PENDING_INDEX_PK, _iso(older_than), after, keys.payment):
            payment = _load(Payment, item)
            if payment.reserved:
                yield position, payment
