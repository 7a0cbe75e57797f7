"""The card-testing limit under concurrency: the attempt slot is taken atomically before Stripe is
called, so parallel submits of prepared reviews cannot get more attempts through than the limit.
Requests reaching Stripe are counted at the Stripe emulator itself (a pass-through "fault" on the
PaymentIntent routes, whose remaining count the emulator reports)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from firmpay.payments.card_testing import DEFAULT_LIMITS
from local.stack import STRIPE_SECRET, LocalStack
from tests.support.card_stack import forget_failed_attempts, open_link

DECLINED = "4000000000000002"  # declines when charged (the emulator's generic decline)
COUNTED = 10_000
AUTH = {"Authorization": f"Bearer {STRIPE_SECRET}"}


class StripeRequestCount:
    """Requests to one path prefix at the Stripe emulator, counted by a pass-through fault."""

    def __init__(self, stack: LocalStack, path: str, method: str) -> None:
        self._url = f"{stack.urls['stripe']}/_test/faults"
        self._path = path
        requests.delete(self._url, headers=AUTH, timeout=5).raise_for_status()
        fault = {"path": path, "method": method, "status": None, "delay": 0.001, "times": COUNTED}
        requests.post(self._url, json=fault, headers=AUTH, timeout=5).raise_for_status()

    def stop(self) -> int:
        armed = requests.get(self._url, headers=AUTH, timeout=5).json()
        requests.delete(self._url, headers=AUTH, timeout=5).raise_for_status()
        left = sum(f["times"] for f in armed if f["path"] == self._path)
        return COUNTED - left


def test_twenty_parallel_submits_of_declining_reviews_reach_stripe_at_most_three_times(stack: LocalStack) -> None:
    # Given 20 reviews of a declining card prepared on one link (reviews made one by one pass)
    forget_failed_attempts(stack)
    link = open_link(stack)
    before = link.invariant()
    reviews = []
    for _ in range(20):
        reviewed = link.review(DECLINED, 1_000)
        assert reviewed.status_code == 200, reviewed.text
        reviews.append(reviewed.json()["review_id"])

    # When all 20 are submitted at once
    # (POST /v1/payment_intents/pi_.../confirm: a charge attempt at the issuer)
    confirmations = StripeRequestCount(stack, "/v1/payment_intents/pi_", "POST")
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers: list[Any] = list(pool.map(lambda review_id: link.submit(review_id), reviews))
    reached = confirmations.stop()

    # Then at most 3 (the per-link limit) reached Stripe, each a declined payment; the rest were
    # asked for a reCAPTCHA before anything was reserved or charged
    assert 1 <= reached <= DEFAULT_LIMITS.failures_per_link
    codes = Counter(
        answer.json().get("status") if answer.status_code == 200 else answer.json()["code"] for answer in answers
    )
    assert codes["failed"] <= DEFAULT_LIMITS.failures_per_link
    assert codes["failed"] + codes["captcha_required"] == 20, codes
    assert link.charges() == []
    after = link.invariant()
    assert (after.balance_minor, after.pending_minor, after.paid_minor) == (
        before.balance_minor,
        0,
        before.paid_minor,
    )
    forget_failed_attempts(stack)


def test_a_recaptcha_token_solved_on_another_site_or_for_another_action_does_not_pass(stack: LocalStack) -> None:
    # Given a link past its failed-attempt limit (reCAPTCHA asked)
    forget_failed_attempts(stack)
    link = open_link(stack)
    for _ in range(DEFAULT_LIMITS.failures_per_link):
        assert link.pay(DECLINED, 1_000)["status"] == "failed"
    assert link.review().json()["code"] == "captcha_required"
    try:
        # When a valid token solved on another site comes with the review
        stack.recaptcha.hostname = "cardtester.example"
        elsewhere = link.review(captcha_token="local-elsewhere-1")
        stack.recaptcha.hostname = "127.0.0.1"
        # or a score-based token made for another action of our site
        other_action = link.review(captcha_token="v3.login.local-2")
        # Then both are refused (Google said success: true to each)
        assert (elsewhere.status_code, elsewhere.json()["code"]) == (429, "captcha_required")
        assert (other_action.status_code, other_action.json()["code"]) == (429, "captcha_required")
        assert [v.success for v in stack.recaptcha.verifications[-2:]] == [True, True]
        # and a token solved on our pay page for our action passes
        ours = link.review(captcha_token="v3.card_payment.local-3")
        assert ours.status_code == 200, ours.text
    finally:
        stack.recaptcha.hostname = "127.0.0.1"
        forget_failed_attempts(stack)
    link.invariant()


def test_an_amount_above_stripes_maximum_for_one_charge_is_a_clear_422_at_review(stack: LocalStack) -> None:
    # Given a bill of 1,500,000.00 (above Stripe's 999,999.99 for one charge)
    link = open_link(stack, amounts=(100_000_000, 50_000_000))

    # When the client reviews one payment of the whole balance, then of exactly the maximum
    too_large = link.review(amount=150_000_000)
    largest = link.review(amount=99_999_999)

    # Then the first is refused before Stripe hears of it, saying what one payment can be
    assert (too_large.status_code, too_large.json()["code"]) == (422, "amount_above_maximum")
    assert too_large.json()["details"] == {"maximum_minor": 99_999_999}
    assert largest.status_code == 200, largest.text
    assert [intent.amount for intent in link.intents()] == [99_999_999]
    assert link.invariant().balance_minor == 150_000_000
