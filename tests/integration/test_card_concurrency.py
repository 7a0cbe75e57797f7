"""Exactly-once money under concurrency: many submits of one review, two reviews for the last dollar."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from local.stack import LocalStack
from tests.support.card_stack import forget_failed_attempts, open_link

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_attempts(stack: LocalStack) -> Iterator[None]:
    yield
    forget_failed_attempts(stack)


def all_at_once(calls: list[object]) -> list[requests.Response]:
    """Run the calls on threads released together; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def test_twenty_simultaneous_submits_of_one_review_charge_once(stack: LocalStack) -> None:
    link = open_link(stack)
    review_id = link.review().json()["review_id"]

    answers = all_at_once([lambda: link.submit(review_id) for _ in range(20)])

    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    statuses = Counter(a.json()["status"] for a in answers)
    assert set(statuses) <= {"succeeded", "pending"}
    assert statuses["succeeded"] >= 1
    assert len({a.json()["payment_id"] for a in answers}) == 1
    assert len(link.charges()) == 1
    assert len(link.intents()) == 1
    payment = link.wait_for_status(answers[0].json()["payment_id"], "succeeded")
    assert payment.amount_minor == 150_050
    payable = link.invariant()
    assert (payable.paid_minor, payable.pending_minor, payable.balance_minor) == (150_050, 0, 0)


def test_two_reviews_racing_for_the_last_dollar_one_wins(stack: LocalStack) -> None:
    link = open_link(stack, amounts=(10_000,))
    first = link.review(amount=10_000).json()["review_id"]
    second = link.review(amount=10_000).json()["review_id"]

    answers = all_at_once([lambda: link.submit(first), lambda: link.submit(second)])

    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["code"] in ("payable_closed", "review_expired")
    winner = next(a for a in answers if a.status_code == 200)
    assert winner.json()["status"] == "succeeded"
    assert len(link.charges()) == 1
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor) == (10_000, 0)
