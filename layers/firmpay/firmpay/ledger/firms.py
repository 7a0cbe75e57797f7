"""Firms and their clients."""

from __future__ import annotations

from firmpay.ledger import keys
from firmpay.ledger.base import LedgerBase, _values
from firmpay.ledger.errors import dynamodb_errors
from firmpay.models.ledger import Client, Firm


class FirmsLedger(LedgerBase):
    """Firms and clients, and the client's processor customer."""

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
