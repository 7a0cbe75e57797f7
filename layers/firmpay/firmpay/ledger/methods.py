"""Payment methods: stored methods, the links that remove them, and bank connections (eCheck)."""

from __future__ import annotations

from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _load, _values
from firmpay.ledger.errors import dynamodb_errors
from firmpay.models.ledger import BankConnection, MethodRemovalLink, StoredMethod


class MethodsLedger(LedgerBase):
    """Stored methods, removal links and bank connections."""

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

    # -- bank connections (eCheck, between Plaid Link and submit) --------------------------------

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
