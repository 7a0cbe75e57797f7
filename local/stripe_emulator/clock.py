"""The Stripe emulator's clock: real time plus an offset the tests can move forward.

Only what Stripe documents as time-bound reads it: how long an ``Idempotency-Key`` is kept
("keys ... removed from the system automatically after they're at least 24 hours old", Stripe,
"Idempotent requests", https://docs.stripe.com/api/idempotent_requests). Object ``created``
stamps and webhook signatures stay on real time, so a signed event still passes the receiver's
five-minute tolerance after the clock moved.

    POST /_test/clock  {"advance_seconds": 90000}   ->  {"now": <emulator unix time>}
    GET  /_test/clock                               ->  {"now": ...}
"""

from __future__ import annotations

import time

IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 60 * 60

_offset = 0.0


def now() -> float:
    """The emulator's current time (unix seconds)."""
    return time.time() + _offset


def advance(seconds: float) -> float:
    """Move the clock forward (never back: Stripe's time does not rewind); the new time."""
    global _offset
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    _offset += seconds
    return now()
