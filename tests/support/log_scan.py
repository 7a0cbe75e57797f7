"""Capture what the handlers log and find what must never be there.

``LogCollector`` attaches to the ``firmpay`` logger (formatting each record with the Powertools
formatter, so it sees the exact JSON line Lambda would ship) and to the root logger (every other
library's warnings). ``find_leaks`` reports card numbers (Luhn-valid, brand prefixes), the given
pay-link tokens, Plaid tokens, Stripe secrets and full email addresses in a text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from firmpay.observability import logger as firmpay_logger

# 13-19 digits, optionally grouped by spaces or dashes, starting like a card brand's number.
_PAN = re.compile(r"(?<![\dA-Za-z])(?:3[47]|4|5[1-5]|2[2-7]|6[05])\d(?:[ -]?\d){11,17}(?![\dA-Za-z])")
_PLAID = re.compile(r"\b(?:access|public|link)-(?:sandbox|development|production)-[A-Za-z0-9][A-Za-z0-9-]*")
_STRIPE_SECRET = re.compile(r"\b(?:(?:sk|rk)_(?:test|live)_|whsec_)[A-Za-z0-9+/=][A-Za-z0-9+/=_]*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def find_leaks(text: str, tokens: Iterable[str] = ()) -> list[str]:
    """What in ``text`` must never be logged, each as ``kind: excerpt`` (empty when clean)."""
    leaks = []
    for found in _PAN.finditer(text):
        digits = re.sub(r"\D", "", found.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            leaks.append(f"card number: {found.group()}")
    leaks += [f"pay-link token: {token[:6]}..." for token in sorted(set(tokens)) if token and token in text]
    leaks += [f"plaid token: {m.group()[:24]}" for m in _PLAID.finditer(text)]
    leaks += [f"stripe secret: {m.group()[:12]}" for m in _STRIPE_SECRET.finditer(text)]
    leaks += [f"email address: {m.group()}" for m in _EMAIL.finditer(text)]
    return leaks


class _Capture(logging.Handler):
    def __init__(self, collector: LogCollector, skip_prefix: str | None, formatter: logging.Formatter) -> None:
        super().__init__(logging.NOTSET)
        self.collector = collector
        self.skip_prefix = skip_prefix
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        if self.skip_prefix and (record.name == self.skip_prefix or record.name.startswith(self.skip_prefix + ".")):
            return
        try:
            line = self.format(record)
        except Exception as error:
            line = f"<unformattable record {record.name}: {error!r}> {record.msg!r} {record.args!r}"
        self.collector.append(line)


class LogCollector:
    """``with LogCollector() as logs: ...``; then ``logs.text``, ``logs.records``, ``logs.add_file(path)``.

    While active the ``firmpay`` logger logs at INFO at least (the local stack asks for WARNING),
    so everything a deployed function would log at its default level is seen.
    """

    def __init__(self, level: int = logging.INFO) -> None:
        self.level = level
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._saved_level = logging.NOTSET
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []

    def append(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def add_file(self, path: Path) -> None:
        if path.is_file():
            self.append(path.read_text(encoding="utf-8", errors="replace"))

    @property
    def records(self) -> int:
        return len(self.lines)

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def start(self) -> LogCollector:
        inner = logging.getLogger(firmpay_logger.name)
        self._saved_level = inner.level
        if inner.getEffectiveLevel() > self.level:
            inner.setLevel(self.level)
        plain = logging.Formatter("%(levelname)s %(name)s %(message)s")
        self._handlers = [
            (inner, _Capture(self, None, firmpay_logger.registered_formatter)),
            (logging.getLogger(), _Capture(self, firmpay_logger.name, plain)),
        ]
        for target, handler in self._handlers:
            target.addHandler(handler)
        return self

    def stop(self) -> None:
        for target, handler in self._handlers:
            target.removeHandler(handler)
        self._handlers = []
        logging.getLogger(firmpay_logger.name).setLevel(self._saved_level)

    def __enter__(self) -> LogCollector:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
