"""Logger, metrics and tracer, created once; no payment data ever goes into them.

The tracer is created lazily: the X-Ray SDK costs ~300 ms of cold start, which the pay page
cannot afford, and local runs disable tracing anyway.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

_REDACTIONS = (
    (re.compile(r"/pay/[A-Za-z0-9_-]{16,}"), "/pay/<token>"),
    (re.compile(r"\b(sk|rk|whsec|pk)_(test|live)_[A-Za-z0-9]+"), r"\1_\2_<redacted>"),
    (re.compile(r"\b(access|public|link)-(sandbox|development|production)-[A-Za-z0-9-]+"), r"\1-\2-<redacted>"),
    (re.compile(r"\b\d{13,19}\b"), "<number>"),
    (re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"), r"\1***@\2"),
)


def redact(text: str) -> str:
    """Remove pay-link tokens, secrets, Plaid tokens, card-like numbers and full email addresses."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class _RedactingLogger(Logger):
    """A Powertools Logger whose every message and extra value passes through ``redact``."""

    def _redact_extra(self, kwargs: dict[str, Any]) -> None:
        extra = kwargs.get("extra")
        if isinstance(extra, dict):
            kwargs["extra"] = {k: redact(v) if isinstance(v, str) else v for k, v in extra.items()}

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._redact_extra(kwargs)
        super().info(redact(str(msg)), *args, **kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._redact_extra(kwargs)
        super().warning(redact(str(msg)), *args, **kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._redact_extra(kwargs)
        super().error(redact(str(msg)), *args, **kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._redact_extra(kwargs)
        super().exception(redact(str(msg)), *args, **kwargs)


logger = _RedactingLogger(service="firmpay")


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service="firmpay")
