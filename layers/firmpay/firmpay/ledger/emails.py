"""Confirmation emails: the payment's parties and the sent-once markers (``EMAIL#``) that claim a send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from firmpay.errors import NotFound
from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _iso, _values
from firmpay.ledger.codec import from_item, to_item
from firmpay.ledger.errors import dynamodb_errors
from firmpay.models.ledger import Client, Firm, Payable, Payment


class EmailsLedger(LedgerBase):
    """Email claims: claimed, sending, sent or rejected, released."""

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
            | (_sending_index(payment_id, kind, now) if status == "sending" else {})
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

    def mark_email_sending(self, payment_id: str, kind: str, claim_id: str, now: int) -> bool:
        """The claimed message is about to go to SES: from now on no retry sends it again."""
        from botocore.exceptions import ClientError

        index = _sending_index(payment_id, kind, now)
        try:
            with dynamodb_errors():
                self._db.update_item(
                    TableName=self._table,
                    Key=keys.email_marker(payment_id, kind),
                    UpdateExpression="SET #status = :sending, gsi1pk = :index_pk, gsi1sk = :index_sk",
                    ConditionExpression="claim_id = :claim AND #status = :claimed",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_values(
                        sending="sending",
                        claim=claim_id,
                        claimed="claimed",
                        index_pk=index["gsi1pk"],
                        index_sk=index["gsi1sk"],
                    ),
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
                    UpdateExpression=(
                        "SET #status = :status, detail = :detail, finished_at = :at REMOVE lease_until, gsi1pk, gsi1sk"
                    ),
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
                    UpdateExpression="SET lease_until = :zero, #status = :claimed REMOVE gsi1pk, gsi1sk",
                    ConditionExpression="claim_id = :claim AND #status IN (:claimed, :sending)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=_values(zero=0, claim=claim_id, claimed="claimed", sending="sending"),
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def emails_stuck_sending(self, since_before: datetime) -> list[tuple[str, str]]:
        """(payment id, marker kind) of every email handed to SES before ``since_before`` and never
        marked sent or refused: SES may or may not have sent it, and nothing sends it again."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk < :before",
            "ExpressionAttributeValues": _values(pk=keys.EMAIL_SENDING_INDEX_PK, before=_iso(since_before)),
        }
        stuck: list[tuple[str, str]] = []
        while True:
            with dynamodb_errors():
                page = self._db.query(**query)
            for item in page.get("Items", []):
                marker = from_item(item)
                if marker.get("status") == "sending":  # the index lags the table
                    stuck.append((str(marker["payment_id"]), str(marker["kind"])))
            if "LastEvaluatedKey" not in page:
                return stuck
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _sending_index(payment_id: str, kind: str, now: int) -> dict[str, str]:
    """A ``sending`` marker's place on ``gsi1``: by the moment it went to SES."""
    return {
        "gsi1pk": keys.EMAIL_SENDING_INDEX_PK,
        "gsi1sk": f"{_iso(datetime.fromtimestamp(now, UTC))}#{payment_id}#{kind}",
    }
