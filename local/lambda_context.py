"""A Lambda context object shaped like the one the Python runtime passes to handlers.

Mirrors ``awslambdaric.lambda_context.LambdaContext``: the same attribute names and types (note
that ``memory_limit_in_mb`` is a string there, read from ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``), a
deadline in epoch milliseconds, and ``get_remaining_time_in_millis()`` counting down to it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's account: ARNs line up with the tables and queues it creates


@dataclass
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


class LambdaContext:
    """What ``lambda_handler(event, context)`` receives, for one invocation of one function."""

    def __init__(
        self,
        function_name: str,
        memory_mb: int = 128,
        timeout_s: int = 3,
        request_id: str | None = None,
        qualified_name: str | None = None,
    ) -> None:
        self.function_name = qualified_name or f"firmpay-local-{function_name}"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = str(memory_mb)
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.client_context = None
        self.identity = CognitoIdentity()
        self.tenant_id = None
        self.timeout_s = timeout_s
        self._deadline_ms = int(time.time() * 1000) + timeout_s * 1000

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout (never negative)."""
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg: str) -> None:
        print(msg, end="", flush=True)

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},invoked_function_arn={self.invoked_function_arn}])"
        )
