"""A Lambda context object like the one AWS passes to handlers."""

from __future__ import annotations

import time
import uuid


class LambdaContext:
    def __init__(self, function_name: str, memory_mb: int = 512, timeout_s: int = 30) -> None:
        self.function_name = f"firmpay-local-{function_name}"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
