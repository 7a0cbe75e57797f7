"""The DynamoDB client, created once per container.

botocore directly (not boto3's resource layer): the ledger speaks the low-level API anyway, and
skipping boto3's session saves ~50 ms of every cold start. ``AWS_ENDPOINT_URL`` (read by botocore
itself) points it at the local stack.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    import botocore.config
    import botocore.session

    from firmpay.config import get_settings

    config = botocore.config.Config(
        # 4 attempts in all, as before (botocore's max_attempts: 3 counted retries): said plainly
        retries={"mode": "standard", "total_max_attempts": 4},
        connect_timeout=2,
        read_timeout=get_settings().aws_read_timeout_seconds,
        max_pool_connections=32,
    )
    return botocore.session.get_session().create_client("dynamodb", config=config)  # type: ignore[return-value]
