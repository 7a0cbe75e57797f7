"""Card-testing defence: card attempts per pay link and per IP, then reCAPTCHA.

Fraudsters "test" stolen card numbers on any form that charges small amounts. Two hourly counters
(``RATE#`` items with a TTL) hold the card attempts that failed or are still in flight: one for
the pay link, one for the caller's IP (hashed: the counters need no readable address).

The slot is taken **before** Stripe is called and atomically, so concurrent requests can never
get more attempts through than the limit (reading the counters first and bumping them after
Stripe answered let 20 parallel submits of prepared reviews all through):

- a submit takes a slot of both counters inside the reserve transaction (``attempt_slots``); a
  review takes one in its own conditional transaction before it asks Stripe about the card;
- the slot is given back when the attempt did not fail (the review was made, the charge
  succeeded), and kept when it failed (declined, refused card) or its outcome is still open.

Past either limit, review and submit answer 429 ``captcha_required`` unless the request carries a
reCAPTCHA token the verifier accepts; a verified attempt still counts, up to a ceiling. A review
made with a valid token is marked ``human_verified`` so its one submit does not ask again. The
optional WAF web ACL (template parameter ``PayRouteRateLimit``) rate-limits raw request floods on
the pay routes in front of this.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from firmpay.errors import CaptchaRequired, ServiceUnavailable
from firmpay.ledger import DailyLimit, Ledger
from firmpay.observability import logger
from firmpay.payments.ports import CaptchaUnavailable, CaptchaVerifier

Counter = tuple[str, str]
# A counter under attack stops growing here instead of taking writes forever.
COUNTER_CEILING = 10_000


@dataclass(frozen=True)
class CardTestingLimits:
    failures_per_link: int = 3
    failures_per_ip: int = 10
    window_seconds: int = 3600


DEFAULT_LIMITS = CardTestingLimits()


@dataclass(frozen=True)
class AttemptCounters:
    """The two counters of one caller on one link in the current window."""

    link: Counter
    ip: Counter
    expires_at: int

    @property
    def keys(self) -> list[Counter]:
        return [self.link, self.ip]


def attempt_counters(link_hash: str, ip_address: str, now: datetime, limits: CardTestingLimits) -> AttemptCounters:
    window_start = int(now.timestamp()) // limits.window_seconds * limits.window_seconds
    window = str(window_start)
    ip_hash = hashlib.sha256(f"firmpay-ip:{ip_address}".encode()).hexdigest()[:32]
    return AttemptCounters(
        link=(f"cardfail#link#{link_hash}", window),
        ip=(f"cardfail#ip#{ip_hash}", window),
        # Keep the item one more window than it counts, then let the TTL remove it.
        expires_at=window_start + 2 * limits.window_seconds,
    )


def over_limit(counts: dict[Counter, int], counters: AttemptCounters, limits: CardTestingLimits) -> bool:
    return (
        counts.get(counters.link, 0) >= limits.failures_per_link or counts.get(counters.ip, 0) >= limits.failures_per_ip
    )


def require_human(verifier: CaptchaVerifier, captcha_token: str | None, ip_address: str) -> None:
    """Raise ``CaptchaRequired`` unless ``captcha_token`` is a valid reCAPTCHA answer."""
    if not captcha_token:
        raise CaptchaRequired()
    try:
        valid = verifier.verify(captcha_token, ip_address)
    except CaptchaUnavailable as error:
        raise ServiceUnavailable() from error
    if not valid:
        raise CaptchaRequired("The reCAPTCHA check did not pass; please try it again.")


def check_attempt(
    counts: dict[Counter, int],
    counters: AttemptCounters,
    limits: CardTestingLimits,
    verifier: CaptchaVerifier,
    captcha_token: str | None,
    ip_address: str,
    already_verified: bool = False,
) -> bool:
    """Let a card attempt through, asking for reCAPTCHA past the limits; True if a human was verified."""
    if already_verified or not over_limit(counts, counters, limits):
        return already_verified
    require_human(verifier, captcha_token, ip_address)
    return True


def attempt_slots(counters: AttemptCounters, limits: CardTestingLimits, verified: bool) -> list[DailyLimit]:
    """One slot of each counter for an attempt about to reach Stripe; a verified human's attempt
    counts too but is only stopped at the ceiling."""
    return [
        DailyLimit(
            scope=scope,
            window=window,
            limit=COUNTER_CEILING if verified else limit,
            expires_at=counters.expires_at,
            error=CaptchaRequired(),
        )
        for (scope, window), limit in ((counters.link, limits.failures_per_link), (counters.ip, limits.failures_per_ip))
    ]


def give_back(ledger: Ledger, slots: list[DailyLimit]) -> None:
    """The attempt did not fail (review made, charge succeeded): its slots are free again."""
    try:
        ledger.give_back_counter_slots(slots)
    except ServiceUnavailable:  # the slot then stays counted until the window ends: only stricter
        logger.warning("could not give back a card-attempt slot")


def record_failure(ledger: Ledger, counters: AttemptCounters) -> None:
    """Count one failed card attempt against the link and the IP (each counter stops at a ceiling)."""
    for scope, window in counters.keys:
        ledger.take_rate_slot(scope, window, COUNTER_CEILING, counters.expires_at)
    logger.info("card attempt failed", extra={"window": counters.link[1]})
