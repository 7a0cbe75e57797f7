"""Logger, metrics and tracer, created once; no payment data ever goes into them.

The tracer is created lazily: the X-Ray SDK costs ~300 ms of cold start, which the pay page
cannot afford, and local runs disable tracing anyway.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

_REDACTIONS = (
    (re.compile(r"/pay/[A-Za-z0-9_-]{16,}"), "/pay/<token>"),
    (re.compile(r"/methods/remove/[A-Za-z0-9_-]{16,}"), "/methods/remove/<token>"),
    (re.compile(r"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9_]+"), r"\1_\2_<redacted>"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_]+"), "whsec_<redacted>"),
    (re.compile(r"\b(access|public|link)-(sandbox|development|production)-[A-Za-z0-9-]+"), r"\1-\2-<redacted>"),
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "<number>"),  # card-like, also grouped "4242 4242 ..."
    (re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"), r"\1***@\2"),
)


def redact(text: str) -> str:
    """Remove pay-link and removal-link tokens, secrets, Plaid tokens, card-like numbers and full email addresses."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _redact_values(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_values(item) for item in value]
    if value is None or isinstance(value, int | float):
        return value
    return redact(str(value))  # what the JSON serializer would write (an exception object, a date)


class _RedactingFormatter(LambdaPowertoolsFormatter):
    """Redacts every string of the finished log entry: nested extras, exception text and stack trace
    included (a traceback quotes the exception's message, which may hold anything)."""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(_redact_values(log))


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


logger = _RedactingLogger(service="firmpay", logger_formatter=_RedactingFormatter())


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service="firmpay")
