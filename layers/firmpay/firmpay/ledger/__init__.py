"""The ledger: DynamoDB access, money transactions and the invariant check."""

from firmpay.ledger.client import dynamodb_client
from firmpay.ledger.errors import InvariantViolation
from firmpay.ledger.repository import DailyLimit, Ledger, LinkContext

__all__ = ["DailyLimit", "InvariantViolation", "Ledger", "LinkContext", "default_ledger", "dynamodb_client"]


def default_ledger() -> Ledger:
    """The ledger of this deployment (table from settings, client once per container)."""
    from firmpay.config import get_settings

    return Ledger(dynamodb_client(), get_settings().ledger_table)
