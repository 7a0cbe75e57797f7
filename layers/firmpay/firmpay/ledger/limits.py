"""``RATE#`` counters: eCheck payments per day, card attempts per link and per IP, rate slots."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from firmpay.errors import ServiceUnavailable
from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _values
from firmpay.ledger.errors import dynamodb_errors


@dataclass(frozen=True)
class DailyLimit:
    """A ``RATE#`` counter checked and bumped inside a transaction (eCheck payments per day, card
    attempts per link and per IP): one slot is taken while ``hits < limit``, else ``error``."""

    scope: str
    window: str
    limit: int
    expires_at: int
    error: Exception


class LimitsLedger(LedgerBase):
    """Counters taken and given back, alone or inside a money transaction."""

    def read_counters(self, counters: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Current values of ``RATE#`` counters (0 when absent), in one BatchGetItem."""
        found = self._batch_get([keys.counter(scope, window) for scope, window in counters])
        return {
            (scope, window): int(found.get((f"RATE#{scope}", window), {}).get("hits", 0)) for scope, window in counters
        }

    def _counter_slot_item(self, slot: DailyLimit) -> dict[str, Any]:
        """A transaction item taking one slot of a ``RATE#`` counter while it is under its limit."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.counter(slot.scope, slot.window),
                "UpdateExpression": "SET hits = if_not_exists(hits, :zero) + :one, expires_at = :ttl, entity = :entity",
                "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
                "ExpressionAttributeValues": _values(
                    zero=0, one=1, ttl=slot.expires_at, limit=slot.limit, entity="counter"
                ),
            }
        }

    def _give_back_slot_item(self, scope: str, window: str) -> dict[str, Any]:
        """A transaction item returning one slot of a ``RATE#`` counter. Unconditional, so it can
        never make the settle it rides on fail; a counter removed meanwhile comes back at -1 (one
        more attempt in that window) and still expires."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.counter(scope, window),
                "UpdateExpression": "SET hits = if_not_exists(hits, :zero) - :one, "
                "expires_at = if_not_exists(expires_at, :ttl), entity = :entity",
                "ExpressionAttributeValues": _values(
                    zero=0, one=1, ttl=int(time.time()) + 2 * 86_400, entity="counter"
                ),
            }
        }

    def take_counter_slots(self, slots: Sequence[DailyLimit]) -> None:
        """Take one slot of each counter in one transaction (all or none); the first full one raises its ``error``."""
        codes = self._transact([self._counter_slot_item(slot) for slot in slots])
        for code, slot in zip(codes, slots, strict=False):
            if code == "ConditionalCheckFailed":
                raise slot.error
        if codes:
            raise ServiceUnavailable()

    def give_back_counter_slots(self, slots: Sequence[DailyLimit]) -> None:
        """Return one slot of each counter, in one request: the attempt they counted did not fail."""
        if slots:
            self._transact([self._give_back_slot_item(slot.scope, slot.window) for slot in slots])

    def take_rate_slot(self, scope: str, window: str, limit: int, expires_at: int) -> bool:
        """Count one use of ``scope`` in ``window``; False (nothing counted) once ``limit`` is reached."""
        from botocore.exceptions import ClientError

        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.counter(scope, window),
                    UpdateExpression="SET hits = if_not_exists(hits, :zero) + :one, expires_at = :ttl, entity = :entity",
                    ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                    ExpressionAttributeValues=_values(zero=0, one=1, ttl=expires_at, limit=limit, entity="counter"),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
