"""The ledger: the only code that reads and writes the DynamoDB table.

Money moves only through conditional writes and transactions, so ``total = paid + pending +
balance`` holds for every payable at every moment, whatever runs concurrently:

- ``reserve``: balance -> pending, and the PENDING payment row, in one transaction
  (condition ``balance >= amount``; the payment row must not exist yet).
- ``settle``: pending -> paid, the payment row -> succeeded (condition: it was still reserved).
- ``release``: pending -> balance, the payment row -> failed/canceled (same condition).
- ``open_refund``: the PENDING refund row, and its amount held on the succeeded payment
  (``refunding_minor``, conditional on the amounts read), in one transaction.
- ``settle_refund``: the refund -> succeeded; on the payment refunding -> refunded; on the payable
  paid goes down (and a bill's balance up). ``release_refund``: the hold is given back.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from firmpay.errors import (
    AmountOverBalance,
    Conflict,
    CurrencyNotAccepted,
    NotFound,
    PayableClosed,
    ServiceUnavailable,
)
from firmpay.ledger import keys
from firmpay.ledger.codec import from_attr, from_item, to_attr, to_item
from firmpay.ledger.errors import IdempotencyKeyTaken, InvariantViolation, TransactionRefused, dynamodb_errors
from firmpay.models.ledger import (
    RESERVED_STATUSES,
    BankConnection,
    Client,
    Firm,
    IdempotencyRecord,
    Item,
    MethodRemovalLink,
    Payable,
    PayLink,
    Payment,
    PaymentPlan,
    PaymentStatus,
    PlanStatus,
    Refund,
    RefundStatus,
    Review,
    StoredMethod,
    utcnow,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class DailyLimit:
    """A ``RATE#`` counter checked and bumped inside a transaction (eCheck payments per day, card
    attempts per link and per IP): one slot is taken while ``hits < limit``, else ``error``."""

    scope: str
    window: str
    limit: int
    expires_at: int
    error: Exception


@dataclass(frozen=True)
class LinkContext:
    """Everything the pay page needs, read in two requests."""

    link: PayLink
    payable: Payable
    firm: Firm
    client: Client


@dataclass(frozen=True)
class CheckoutState:
    """What a submit needs before it reserves: the review, the payable, the firm, some counters."""

    review: Review | None
    payable: Payable | None
    firm: Firm | None
    counts: dict[tuple[str, str], int]


@dataclass(frozen=True)
class PayableHistory:
    """A payable with its payments and refunds (oldest first), read in one query."""

    payable: Payable
    payments: list[Payment]
    refunds: list[Refund]


_RESERVED = [s.value for s in RESERVED_STATUSES]
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


class Ledger:
    """Repository of firms, clients, payables, links, payments, methods and reviews."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._db = client
        self._table = table

    # -- plumbing --------------------------------------------------------------------------------

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

    # -- firms and clients -----------------------------------------------------------------------

    def create_firm(self, firm: Firm) -> None:
        self._create(keys.firm(firm.firm_id), "firm", firm)

    def get_firm(self, firm_id: str) -> Firm | None:
        item = self._get(keys.firm(firm_id))
        return Firm.model_validate(item) if item else None

    def create_client(self, client: Client) -> None:
        self._create(keys.client(client.firm_id, client.client_id), "client", client)

    def get_client(self, firm_id: str, client_id: str) -> Client | None:
        item = self._get(keys.client(firm_id, client_id))
        return Client.model_validate(item) if item else None

    def set_client_customer(self, client: Client, customer_id: str) -> str:
        """Record the client's processor customer once; return the one that won a race."""
        from botocore.exceptions import ClientError

        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.client(client.firm_id, client.client_id),
                    UpdateExpression="SET processor_customer_id = :c",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(processor_customer_id)",
                    ExpressionAttributeValues=_values(c=customer_id),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current = self.get_client(client.firm_id, client.client_id)
            if current is None or current.processor_customer_id is None:
                raise
            return current.processor_customer_id
        return customer_id

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

    # -- payables --------------------------------------------------------------------------------

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

    # -- pay links -------------------------------------------------------------------------------

    def issue_link(self, link: PayLink, payable: Payable) -> None:
        """Store ``link`` as the payable's only valid link, revoking the one it replaces."""
        now = _iso(link.created_at)
        update: dict[str, Any] = {
            "Update": {
                "TableName": self._table,
                "Key": keys.payable(payable.payable_id),
                "UpdateExpression": "SET current_link_hash = :new",
                "ConditionExpression": "attribute_exists(pk) AND "
                + (
                    "current_link_hash = :old"
                    if payable.current_link_hash
                    else "(attribute_not_exists(current_link_hash) OR current_link_hash = :null)"
                ),
                "ExpressionAttributeValues": _values(new=link.token_hash)
                | (_values(old=payable.current_link_hash) if payable.current_link_hash else _values(null=None)),
            }
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._put(keys.link(link.token_hash), "link", link),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            update,
        ]
        if payable.current_link_hash:
            items.append(self._revoke_item(payable.current_link_hash, now))
        if self._transact(items):
            raise Conflict("The payable changed while the link was being issued; try again.")

    def _revoke_item(self, token_hash: str, at: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": keys.link(token_hash),
                "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :at)",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": _values(at=at),
            }
        }

    def revoke_current_link(self, payable: Payable, at: datetime) -> bool:
        """Revoke the payable's current link; False when it had none."""
        if not payable.current_link_hash:
            return False
        items = [
            self._revoke_item(payable.current_link_hash, _iso(at)),
            {
                "Update": {
                    "TableName": self._table,
                    "Key": keys.payable(payable.payable_id),
                    "UpdateExpression": "REMOVE current_link_hash",
                    "ConditionExpression": "current_link_hash = :old",
                    "ExpressionAttributeValues": _values(old=payable.current_link_hash),
                }
            },
        ]
        if self._transact(items):
            raise Conflict("The link changed meanwhile; reload and try again.")
        return True

    def get_link(self, token_hash: str) -> PayLink | None:
        item = self._get(keys.link(token_hash), consistent=False)
        return PayLink.model_validate(item) if item else None

    def load_link_context(self, link: PayLink) -> LinkContext:
        """Payable, firm and client of a link in one BatchGetItem (strongly consistent)."""
        wanted = [
            keys.payable(link.payable_id),
            keys.firm(link.firm_id),
            keys.client(link.firm_id, link.client_id),
        ]
        found = {item.pop("entity"): item for item in self._batch_get(wanted).values()}
        if {"payable", "firm", "client"} - found.keys():
            raise NotFound("The link points at a payable that no longer exists.")
        return LinkContext(
            link=link,
            payable=Payable.model_validate(found["payable"]),
            firm=Firm.model_validate(found["firm"]),
            client=Client.model_validate(found["client"]),
        )

    # -- reviews ---------------------------------------------------------------------------------

    def put_review(self, review: Review) -> None:
        with dynamodb_errors():
            self._put_review(review)

    def _put_review(self, review: Review) -> None:
        self._db.put_item(
            TableName=self._table,
            Item=self._put(
                keys.review(review.payable_id, review.review_id),
                "review",
                review,
                expires_at=int(review.expires_at.timestamp()),
            ),
        )

    def get_review_and_payable(self, payable_id: str, review_id: str) -> tuple[Review | None, Payable | None]:
        """A review and its payable in one BatchGetItem."""
        wanted = [keys.review(payable_id, review_id), keys.payable(payable_id)]
        found = {item.pop("entity"): item for item in self._batch_get(wanted).values()}
        review_item = found.get("review")
        return (
            Review.model_validate(review_item) if review_item else None,
            Payable.model_validate(found["payable"]) if "payable" in found else None,
        )

    # -- payments: reserve, settle, release ------------------------------------------------------

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
            raise PayableClosed(
                "This bill has been paid in full."
                if payable.pending_minor == 0
                else "A payment for the full balance is already in progress."
            )
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

    # -- refunds ---------------------------------------------------------------------------------

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

    # -- stored methods --------------------------------------------------------------------------

    def put_method(self, method: StoredMethod) -> None:
        self._create(keys.method(method.firm_id, method.client_id, method.method_id), "method", method)

    def get_method(self, firm_id: str, client_id: str, method_id: str) -> StoredMethod | None:
        item = self._get(keys.method(firm_id, client_id, method_id))
        return StoredMethod.model_validate(item) if item else None

    def list_methods(self, firm_id: str, client_id: str) -> list[StoredMethod]:
        items = self._query_partition(f"FIRM#{firm_id}", f"METHOD#{client_id}#")
        return [_load(StoredMethod, i) for i in items]

    def set_method_status(self, method: StoredMethod, status: str) -> None:
        """Mark a stored method revoked or unusable (never charged again)."""
        with dynamodb_errors():
            self._db.update_item(
                TableName=self._table,
                Key=keys.method(method.firm_id, method.client_id, method.method_id),
                UpdateExpression="SET #status = :status",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(status=status),
            )

    def put_removal_link(self, link: MethodRemovalLink) -> None:
        """Store a client's link to remove a stored method (one conditional put; TTL ``expires_at``)."""
        self._create(
            keys.method_removal(link.token_hash), "method_removal", link, expires_at=int(link.expires_at.timestamp())
        )

    def get_removal_link(self, token_hash: str) -> MethodRemovalLink | None:
        item = self._get(keys.method_removal(token_hash))
        return MethodRemovalLink.model_validate(item) if item else None

    # -- autopay: firms' idempotency keys and payment plans -------------------------------------

    def get_idempotency(self, firm_id: str, idempotency_key: str) -> IdempotencyRecord | None:
        item = self._get(keys.idempotency(firm_id, idempotency_key))
        return IdempotencyRecord.model_validate(item) if item else None

    def _plan_item(self, plan: PaymentPlan) -> dict[str, Any]:
        extra = (
            {"gsi1pk": keys.PLAN_DUE_INDEX_PK, "gsi1sk": _plan_due_sort_key(plan)}
            if plan.status is PlanStatus.ACTIVE
            else {}
        )
        return self._put(keys.plan(plan.payable_id, plan.plan_id), "plan", plan, **extra)

    def plan_slot(self, payable_id: str) -> str | None:
        """The id of the payable's latest plan, as its plan slot names it (None: no plan yet)."""
        item = self._get(keys.plan_slot(payable_id))
        return str(item["plan_id"]) if item else None

    def create_plan(self, plan: PaymentPlan, slot_was: str | None) -> bool:
        """Write the plan and take the payable's plan slot, in one conditional transaction.

        ``slot_was`` is the plan the slot named when the caller checked that no plan is running
        (None: no slot yet). Two creations racing on one payable both read the same slot; only one
        moves it, the other gets False (a 409 for the firm).
        """
        slot = {**keys.plan_slot(plan.payable_id), "entity": to_attr("plan_slot"), "plan_id": to_attr(plan.plan_id)}
        taken: dict[str, Any] = {"TableName": self._table, "Item": slot}
        if slot_was is None:
            taken["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            taken |= {"ConditionExpression": "plan_id = :was", "ExpressionAttributeValues": _values(was=slot_was)}
        plan_put = {
            "TableName": self._table,
            "Item": self._plan_item(plan),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return not self._transact([{"Put": taken}, {"Put": plan_put}])

    def get_plan(self, payable_id: str, plan_id: str) -> PaymentPlan | None:
        item = self._get(keys.plan(payable_id, plan_id))
        return PaymentPlan.model_validate(item) if item else None

    def list_plans(self, payable_id: str) -> list[PaymentPlan]:
        plans = [_load(PaymentPlan, i) for i in self._query_partition(f"PAYABLE#{payable_id}", "PLAN#")]
        return sorted(plans, key=lambda p: p.created_at)

    def update_plan(self, plan: PaymentPlan, **changes: Any) -> PaymentPlan | None:
        """Replace the plan with ``changes`` applied if nobody changed it since it was read.

        Returns the new plan, or None when its version moved on (a concurrent run, pause or
        cancel): the caller reads it again. An active plan stays on the ``PLANDUE`` index.
        """
        from botocore.exceptions import ClientError

        updated = plan.model_copy(update={**changes, "version": plan.version + 1})
        try:
            with dynamodb_errors():
                self._db.put_item(
                    TableName=self._table,
                    Item=self._plan_item(updated),
                    ConditionExpression="version = :version",
                    ExpressionAttributeValues=_values(version=plan.version),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return updated

    def due_plans(self, now: datetime, after: str | None = None) -> Iterator[tuple[str, PaymentPlan]]:
        """Active plans whose next installment is due at ``now`` or earlier, longest due first, each
        with its position on the index (resume with ``after``), read again by key, page after page."""
        for position, item in self._walk_index(keys.PLAN_DUE_INDEX_PK, _iso(now) + "~", after, keys.plan):
            plan = _load(PaymentPlan, item)
            if plan.status is PlanStatus.ACTIVE and plan.next_due_at <= now:
                yield position, plan

    # -- bank connections (eCheck, between Plaid Link and submit) -------------------------------

    def put_bank_connection(self, connection: BankConnection) -> None:
        item = self._put(
            keys.bank_connection(connection.payable_id, connection.connection_id),
            "bank_connection",
            connection,
            expires_at=int(connection.expires_at.timestamp()),
        )
        with dynamodb_errors():
            self._db.put_item(TableName=self._table, Item=item)

    def get_bank_connection(self, payable_id: str, connection_id: str) -> BankConnection | None:
        item = self._get(keys.bank_connection(payable_id, connection_id))
        return BankConnection.model_validate(item) if item else None

    def forget_bank_connection(self, connection: BankConnection) -> None:
        with dynamodb_errors():
            self._db.delete_item(
                TableName=self._table, Key=keys.bank_connection(connection.payable_id, connection.connection_id)
            )

    # -- card checkout state and card-testing counters (card payments) -------------------------

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

    def get_checkout_state(
        self, payable_id: str, review_id: str, firm_id: str, counters: list[tuple[str, str]]
    ) -> CheckoutState:
        """A review, its payable, the firm and some ``RATE#`` counters, in one BatchGetItem.

        What a card submit reads before it reserves: the whole submit then costs four requests
        (this one, the link, the reserve transaction and the settle transaction).
        """
        wanted = [keys.review(payable_id, review_id), keys.payable(payable_id), keys.firm(firm_id)]
        wanted += [keys.counter(scope, window) for scope, window in counters]
        found = self._batch_get(wanted)

        def load(key: keys.Key) -> dict[str, Any] | None:
            item = found.get((key["pk"]["S"], key["sk"]["S"]))
            return {k: v for k, v in item.items() if k != "entity"} if item else None

        review, payable, firm = (load(k) for k in wanted[:3])
        return CheckoutState(
            review=Review.model_validate(review) if review else None,
            payable=Payable.model_validate(payable) if payable else None,
            firm=Firm.model_validate(firm) if firm else None,
            counts={c: int((load(k) or {}).get("hits", 0)) for c, k in zip(counters, wanted[3:], strict=True)},
        )

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

    # -- invariant -------------------------------------------------------------------------------

    def check_invariant(self, payable_id: str) -> Payable:
        """Check the money rules of one payable against its payments; raise ``InvariantViolation``.

        - ``total = paid + pending + balance``, each counter >= 0;
        - ``pending`` equals the sum of its reserved payments;
        - ``paid`` equals the sum of its succeeded payments less what was refunded;
        - refunds: a trust request's refunds are trust disbursements, outside ``total = paid +
          pending + balance`` (it reads ``... + refunded``), a bill's went back to its balance;
          ``refunded`` equals the sum of its succeeded refunds, each payment's ``refunded`` and
          ``refunding`` equal its succeeded and pending refunds and never exceed what it paid.
        """
        history = self.get_payable_history(payable_id)
        payable, payments = history.payable, history.payments
        problems: list[str] = []
        disbursed = payable.refunded_minor if payable.kind == "trust_request" else 0
        if payable.total_minor != payable.paid_minor + payable.pending_minor + payable.balance_minor + disbursed:
            problems.append(
                f"total {payable.total_minor} != paid {payable.paid_minor} + pending "
                f"{payable.pending_minor} + balance {payable.balance_minor}"
                + (f" + disbursed {disbursed}" if disbursed else "")
            )
        problems += _refund_problems(payable, payments, history.refunds)
        for name in ("paid_minor", "pending_minor", "balance_minor", "refunded_minor"):
            if getattr(payable, name) < 0:
                problems.append(f"{name} is negative")
        reserved = sum(p.amount_minor for p in payments if p.reserved)
        if reserved != payable.pending_minor:
            problems.append(f"pending {payable.pending_minor} != reserved payments {reserved}")
        settled = sum(p.amount_minor - p.refunded_minor for p in payments if p.status is PaymentStatus.SUCCEEDED)
        if settled != payable.paid_minor:
            problems.append(f"paid {payable.paid_minor} != settled payments {settled}")
        if problems:
            raise InvariantViolation(f"payable {payable_id}: " + "; ".join(problems))
        return payable

    # -- confirmation emails: the payment's parties and sent-once markers ------------------------

    def get_payment_parties(self, payment: Payment) -> tuple[Firm, Client, Payable]:
        """The firm, client and payable of a payment, in one BatchGetItem; ``NotFound`` if one is gone."""
        wanted = [
            keys.firm(payment.firm_id),
            keys.client(payment.firm_id, payment.client_id),
            keys.payable(payment.payable_id),
        ]
        found = {item.pop("entity"): item for item in self._batch_get(wanted).values()}
        if {"firm", "client", "payable"} - found.keys():
            raise NotFound(f"payment {payment.payment_id} refers to a firm, client or payable that does not exist")
        return (
            Firm.model_validate(found["firm"]),
            Client.model_validate(found["client"]),
            Payable.model_validate(found["payable"]),
        )

    def claim_email(
        self,
        payment_id: str,
        kind: str,
        claim_id: str,
        now: int,
        lease_seconds: int,
        expires_at: int,
        status: Literal["claimed", "sending"] = "claimed",
    ) -> Literal["claimed", "done", "busy", "uncertain"]:
        """Take the right to send one email (``EMAIL#<payment>`` / ``<kind>``) for ``lease_seconds``.

        ``kind`` is the marker's sort key: the email kind, or ``<kind>#<refund_id>`` for a refund's
        email (one marker per refund).

        ``claimed``: ours to send (no marker yet, or a claim that never reached SES and whose lease
        ran out); ``done``: sent or refused for good by SES; ``uncertain``: being handed to SES, or
        handed to it by an attempt that then vanished (``sending``): never sent again from here (an
        attempt whose send fails gives its claim back and fails its own record, which is retried);
        ``busy``: another attempt holds an unexpired claim that has not reached SES yet. ``status="sending"`` claims straight into the sending state (the message
        is ready). One conditional PutItem; the old item comes back with the failed condition.
        """
        from botocore.exceptions import ClientError

        item = to_item(
            {
                "entity": "email_marker",
                "payment_id": payment_id,
                "kind": kind,
                "status": status,
                "claim_id": claim_id,
                "lease_until": now + lease_seconds,
                "expires_at": expires_at,
            }
        )
        try:
            with dynamodb_errors():
                self._db.put_item(
                    TableName=self._table,
                    Item=item | keys.email_marker(payment_id, kind),
                    ConditionExpression="attribute_not_exists(pk) OR (#status = :claimed AND lease_until < :now)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_values(claimed="claimed", now=now),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old = from_item(error.response.get("Item") or {})  # type: ignore[arg-type]
            if old.get("status") == "sending":
                return "uncertain"
            return "busy" if old.get("status") == "claimed" else "done"
        return "claimed"

    def mark_email_sending(self, payment_id: str, kind: str, claim_id: str) -> bool:
        """The claimed message is about to go to SES: from now on no retry sends it again."""
        from botocore.exceptions import ClientError

        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.email_marker(payment_id, kind),
                    UpdateExpression="SET #status = :sending",
                    ConditionExpression="claim_id = :claim AND #status = :claimed",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_values(sending="sending", claim=claim_id, claimed="claimed"),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def finish_email(
        self, payment_id: str, kind: str, claim_id: str, status: Literal["sent", "rejected"], detail: str, at: datetime
    ) -> bool:
        """Record the outcome of a claimed send (SES message id, or SES's refusal); False if the claim was lost."""
        from botocore.exceptions import ClientError

        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.email_marker(payment_id, kind),
                    UpdateExpression="SET #status = :status, detail = :detail, finished_at = :at REMOVE lease_until",
                    ConditionExpression="claim_id = :claim AND #status IN (:claimed, :sending)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_values(
                        status=status, detail=detail, at=_iso(at), claim=claim_id, claimed="claimed", sending="sending"
                    ),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_email_claim(self, payment_id: str, kind: str, claim_id: str) -> None:
        """Give a claim back after a failed send, so that the retry need not wait for the lease."""
        from botocore.exceptions import ClientError

        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.email_marker(payment_id, kind),
                    UpdateExpression="SET lease_until = :zero, #status = :claimed",
                    ConditionExpression="claim_id = :claim AND #status IN (:claimed, :sending)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_values(zero=0, claim=claim_id, claimed="claimed", sending="sending"),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def _refund_problems(payable: Payable, payments: list[Payment], refunds: list[Refund]) -> list[str]:
    problems: list[str] = []
    succeeded = sum(r.amount_minor for r in refunds if r.status is RefundStatus.SUCCEEDED)
    if succeeded != payable.refunded_minor:
        problems.append(f"refunded {payable.refunded_minor} != succeeded refunds {succeeded}")
    for p in payments:
        mine = [r for r in refunds if r.payment_id == p.payment_id]
        done = sum(r.amount_minor for r in mine if r.status is RefundStatus.SUCCEEDED)
        held = sum(r.amount_minor for r in mine if r.status is RefundStatus.PENDING)
        if (p.refunded_minor, p.refunding_minor) != (done, held):
            problems.append(
                f"payment {p.payment_id}: refunded {p.refunded_minor} / refunding {p.refunding_minor} "
                f"!= refunds {done} / {held}"
            )
        if p.refunded_minor + p.refunding_minor > (p.amount_minor if p.status is PaymentStatus.SUCCEEDED else 0):
            problems.append(f"payment {p.payment_id} refunds more than it paid")
    return problems


def _counter_is(name: str, placeholder: str, value: int) -> str:
    """``name = value``; a counter written before it existed counts as 0."""
    if value:
        return f"{name} = {placeholder}"
    return f"(attribute_not_exists({name}) OR {name} = {placeholder})"


def _load[M: Item](model: type[M], item: dict[str, Any]) -> M:
    return model.model_validate({k: v for k, v in item.items() if k != "entity"})


def _plan_due_sort_key(plan: PaymentPlan) -> str:
    return f"{_iso(plan.next_due_at)}#{plan.payable_id}#{plan.plan_id}"


def _payable_and_payment(gsi1sk: str) -> tuple[str, str]:
    _, payable_id, payment_id = gsi1sk.rsplit("#", 2)
    return payable_id, payment_id


_KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk")


def _strip(item: dict[str, Any]) -> dict[str, Any]:
    for name in _KEY_ATTRIBUTES:
        item.pop(name, None)
    return item


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
