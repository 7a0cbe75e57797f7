"""What every part of the ledger shares: the table, item building, reads, transactions, index walks."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from firmpay.errors import Conflict, ServiceUnavailable
from firmpay.ledger import keys
from firmpay.ledger.codec import from_attr, from_item, to_attr, to_item
from firmpay.ledger.errors import TransactionRefused, dynamodb_errors
from firmpay.models.ledger import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


_CONDITION_FAILED = "ConditionalCheckFailed"
# Cancellation reasons that a retry cannot cure (TransactWriteItems API reference).
_INVALID_TRANSACTION = frozenset({"ValidationError", "ItemCollectionSizeLimitExceeded"})
# Six tries, full-jitter exponential backoff (at most 0.78 s of waiting in all): well inside a
# Lambda's timeout, long enough to get past a conflict or a brief throttle.
_TRANSACT_ATTEMPTS = 6
_BACKOFF_BASE = 0.025
_BACKOFF_CAP = 0.4


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _values(**values: Any) -> dict[str, Any]:
    return {f":{k}": to_attr(v) for k, v in values.items()}


def _load[M: Item](model: type[M], item: dict[str, Any]) -> M:
    return model.model_validate({k: v for k, v in item.items() if k != "entity"})


def _payable_and_payment(gsi1sk: str) -> tuple[str, str]:
    _, payable_id, payment_id = gsi1sk.rsplit("#", 2)
    return payable_id, payment_id


_KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk")


def _strip(item: dict[str, Any]) -> dict[str, Any]:
    for name in _KEY_ATTRIBUTES:
        item.pop(name, None)
    return item


class LedgerBase:
    """The DynamoDB client and table, and the low-level reads and writes every item kind is built on."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    def _put(self, key: keys.Key, entity: str, model: Item, **extra: Any) -> dict[str, Any]:
        item = to_item({**model.model_dump(mode="json", exclude_none=True), **extra, "entity": entity})
        item.update(key)
        return item

    def _get(self, key: keys.Key, consistent: bool = True) -> dict[str, Any] | None:
        with dynamodb_errors():
            answer = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=consistent)
        item = answer.get("Item")
        if not item:
            return None
        found = _strip(from_item(item))
        found.pop("entity", None)
        return found

    def _create(self, key: keys.Key, entity: str, model: Item, **extra: Any) -> None:
        from botocore.exceptions import ClientError

        item = self._put(key, entity, model, **extra)
        try:
            with dynamodb_errors():
                self._db.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                if error.response.get("Item") == item:
                    return  # our own write, retried by the SDK after a lost answer: done already
                raise Conflict(f"This {entity} already exists.") from error
            raise

    def _query_partition(self, pk: str, sk_prefix: str | None = None) -> list[dict[str, Any]]:
        condition = "pk = :pk" + (" AND begins_with(sk, :prefix)" if sk_prefix else "")
        values = {":pk": {"S": pk}} | ({":prefix": {"S": sk_prefix}} if sk_prefix else {})
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        while True:
            with dynamodb_errors():
                page = self._db.query(**kwargs)
            items.extend(_strip(from_item(i)) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(self, wanted: list[keys.Key]) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by ``(pk, sk)`` in one BatchGetItem (strongly consistent; retries unprocessed keys)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        request: dict[str, Any] = {self._table: {"Keys": wanted, "ConsistentRead": True}}
        while request:
            with dynamodb_errors():
                answer = self._db.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(self._table, []):
                item = from_item(raw)
                key = (item["pk"], item["sk"])
                found[key] = _strip(item)
            request = answer.get("UnprocessedKeys") or {}
        return found

    def _transact(self, items: list[dict[str, Any]], client_request_token: str | None = None) -> list[str | None]:
        """Run a transaction; on a failed condition return each item's cancellation code.

        A cancellation for any other reason says nothing about the conditions: another
        transaction held an item (``TransactionConflict``) or DynamoDB throttled it
        (``ThrottlingError``, ``ProvisionedThroughputExceeded``). DynamoDB wrote nothing, so it
        is sent again with exponential backoff and jitter; if it never goes through,
        ``ServiceUnavailable`` (503 with Retry-After: the client tries again, nothing changed).
        A request DynamoDB finds invalid (``ValidationError``, ``ItemCollectionSizeLimitExceeded``)
        would fail the same way every time: ``TransactionRefused``, never retried.

        ``client_request_token`` (DynamoDB's idempotency token, 10 minutes) replaces the one
        botocore draws per call, when the caller can derive it from the request itself.
        """
        from botocore.exceptions import ClientError

        for attempt in range(_TRANSACT_ATTEMPTS):
            try:
                with dynamodb_errors():
                    if client_request_token is None:
                        self._db.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                    else:
                        self._db.transact_write_items(
                            TransactItems=items,  # type: ignore[arg-type]
                            ClientRequestToken=client_request_token,
                        )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons") or []
                codes = [None if r.get("Code") in (None, "None") else r.get("Code") for r in reasons]
                others = {c for c in codes if c not in (None, _CONDITION_FAILED)}
                if not others:
                    return codes or ["Unknown"]
                if others & _INVALID_TRANSACTION:
                    raise TransactionRefused(f"DynamoDB refused the transaction: {codes}") from error
                if attempt + 1 == _TRANSACT_ATTEMPTS:
                    raise ServiceUnavailable(
                        "We could not record this just now; please try again in a moment "
                        "(a retry never charges or refunds twice)."
                    ) from error
                time.sleep(random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)))
                continue
            return []
        return []

    def _walk_index(
        self, index_pk: str, upto: str, after: str | None, key_of: Callable[[str, str], keys.Key], page_size: int = 100
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The items of ``index_pk`` up to sort key ``upto`` (inclusive) and after ``after``, in
        order, with their sort keys, following ``LastEvaluatedKey`` to the end. Each page is read
        again from the table (one consistent BatchGetItem): the index lags the table."""
        condition, values = "gsi1pk = :pk AND gsi1sk <= :upto", {"pk": index_pk, "upto": upto}
        if after is not None and after < upto:
            condition, values = "gsi1pk = :pk AND gsi1sk BETWEEN :after AND :upto", values | {"after": after}
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _values(**values),
            "Limit": page_size,
        }
        while True:
            with dynamodb_errors():
                page = self._db.query(**query)
            positions = [str(from_attr(i["gsi1sk"])) for i in page.get("Items", [])]
            positions = [p for p in positions if p != after]
            wanted = {p: key_of(*_payable_and_payment(p)) for p in positions}
            found = self._batch_get(list(wanted.values())) if wanted else {}
            for position, key in wanted.items():
                item = found.get((key["pk"]["S"], key["sk"]["S"]))
                if item is not None:
                    yield position, item
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- cursors of scheduled walks --------------------------------------------------------------

    def get_cursor(self, walk: str) -> str | None:
        """Where the scheduled ``walk`` stopped last time (None: start from the oldest)."""
        item = self._get(keys.cursor(walk))
        return str(item["position"]) if item and item.get("position") else None

    def save_cursor(self, walk: str, position: str | None) -> None:
        """Remember where ``walk`` stopped (None: it reached the end; the next run starts over)."""
        item = {**keys.cursor(walk), "entity": to_attr("cursor")}
        if position is not None:
            item["position"] = to_attr(position)
        with dynamodb_errors():
            self._db.put_item(TableName=self._table, Item=item)
