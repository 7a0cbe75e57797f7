"""The Stripe emulator's test controls for refunds and its clock (``local/stripe_emulator/refunds.py``)."""

from __future__ import annotations

from typing import Any

import requests

from local.stack import LocalStack


def _control(stack: LocalStack, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = requests.post(f"{stack.urls['stripe']}{path}", json=body or {}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def refunds_start_pending(stack: LocalStack, intent_id: str, pending: bool = True) -> None:
    """Refunds of this intent's charge start ``pending`` at Stripe (as a bank or an ACH refund does)."""
    _control(stack, "/_test/refunds/start_pending", {"payment_intent": intent_id, "pending": pending})


def finish_refund(stack: LocalStack, refund_id: str, outcome: str, failure_reason: str | None = None) -> dict[str, Any]:
    """A pending refund at Stripe succeeds (``succeed``) or fails (``fail``), emitting Stripe's events."""
    body = {"failure_reason": failure_reason} if failure_reason else {}
    return _control(stack, f"/_test/refunds/{refund_id}/{outcome}", body)


def advance_stripe_clock(stack: LocalStack, seconds: float) -> float:
    """Move the emulator's clock (idempotency keys expire 24 h after first use on it)."""
    return float(_control(stack, "/_test/clock", {"advance_seconds": seconds})["now"])
