"""Translation of DynamoDB failures into domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from firmpay.errors import ServiceUnavailable

_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}


class InvariantViolation(AssertionError):
    """``total = paid + pending + balance`` (or a counter/payment agreement) does not hold."""


@contextmanager
def dynamodb_errors() -> Iterator[None]:
    """Turn throttling, timeouts and 5xx from DynamoDB into a 503 with nothing half-written.

    Every multi-item write is one transaction, so a failed call never leaves partial state.
    """
    from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _RETRYABLE:
            raise ServiceUnavailable() from error
        raise
    except (ConnectionError, ReadTimeoutError) as error:
        raise ServiceUnavailable() from error


class TransactionRefused(RuntimeError):
    """DynamoDB refused a transaction as invalid (``ValidationError`` and the like): a bug, not a busy table."""


class IdempotencyKeyTaken(Exception):
    """A firm's idempotency key already made a payment (for another request than this one)."""
