"""Logger and tracer, created once; no payment data ever goes into them (metrics: ``firmpay.metrics``).

The tracer exists only for the calls to Stripe and Plaid, and only once a function makes one: the
X-Ray SDK is imported when the Stripe or Plaid client is first built (~12 ms then, on top of the
100+ ms of importing stripe or plaid), never at cold start (docs/decisions.md). Its subsegments
carry the method, host, path and status of each call: no body, no query string, no response
(nothing calls ``capture_method``; the template also sets POWERTOOLS_TRACER_CAPTURE_RESPONSE and
_ERROR to false). Tests and the local stack run with POWERTOOLS_TRACE_DISABLED, so nothing is
imported or patched there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
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


def tracing_enabled() -> bool:
    """X-Ray records only in Lambda (``Tracing: Active``), never with POWERTOOLS_TRACE_DISABLED or
    under ``sam local`` (Powertools' own rule, read without importing the SDK)."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    return not disabled and bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL")


@lru_cache(maxsize=1)
def _tracer() -> Tracer | None:
    """The container's tracer, created on the first traced call; None when tracing is off or the
    X-Ray SDK is missing (logged once: the call itself must go on)."""
    if not tracing_enabled():
        return None
    try:
        from aws_lambda_powertools import Tracer

        return Tracer(service="firmpay", auto_patch=False)
    except ImportError:
        logger.warning("X-Ray SDK not installed: calls to Stripe and Plaid are not traced")
        return None


@lru_cache(maxsize=1)
def trace_requests() -> None:
    """From now on, every call through ``requests`` (stripe-python's RequestsClient) is an X-Ray
    subsegment named by its host. Called where the Stripe client is built."""
    tracer = _tracer()
    if tracer is not None:
        tracer.patch(["requests"])


@contextmanager
def outbound_call(method: str, url: str) -> Iterator[None]:
    """An X-Ray subsegment around one call whose library X-Ray does not patch (plaid-python talks
    through urllib3 directly): named by the host, with the method, the URL without its query and,
    on failure, the HTTP status. The exception itself stays out of the trace (X-Ray would keep its
    message, and plaid-python's quotes the response body); it is raised once the subsegment is closed."""
    tracer = _tracer()
    if tracer is None:
        yield
        return
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    failure: Exception | None = None
    with tracer.provider.in_subsegment(name=parts.hostname or "remote") as opened:
        subsegment: Any = opened  # the X-Ray SDK's Subsegment (Powertools types it as its base)
        if subsegment is not None:  # None when X-Ray has no segment to hang it on (logged by the SDK)
            subsegment.namespace = "remote"
            subsegment.put_http_meta("method", method)
            subsegment.put_http_meta("url", f"{parts.scheme}://{parts.netloc}{parts.path}")
        try:
            yield
        except Exception as error:
            failure = error
            if subsegment is not None:
                status = getattr(error, "status", None)
                subsegment.put_http_meta("status", status if isinstance(status, int) and status else 500)
    if failure is not None:
        raise failure
