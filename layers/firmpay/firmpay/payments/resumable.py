"""Scheduled walks over a ledger index that may not fit in one invocation (the sweep, the plan run).

A walk reads the whole index, page after page, oldest first, and handles one item at a time while
the invocation has time left for one more (``reserve``: the worst case of one item, retries
included). When time runs out it stores where it stopped (``Ledger.save_cursor``); the next run
starts there, and once it reaches the end it goes on from the oldest item up to where it started.
So a long head of items that stay on the index (eCheck debits process for days) can slow a walk,
never starve the items behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from firmpay.ledger import Ledger

# Seconds left in this invocation (Lambda: ``context.get_remaining_time_in_millis() / 1000``).
TimeLeft = Callable[[], float]


def unlimited() -> float:
    """No deadline (tests and tools that call a walk directly)."""
    return float("inf")


@dataclass
class WalkResult:
    handled: int = 0
    finished: bool = True  # False: time ran out; the next run resumes at the cursor


def walk_resumably[T](
    ledger: Ledger,
    walk: str,
    positions: Callable[[str | None], Iterable[tuple[str, T]]],
    handle: Callable[[T], None],
    time_left: TimeLeft,
    reserve_seconds: float,
) -> WalkResult:
    """Call ``handle`` on each item of ``positions(after)``, from the stored cursor round to it again.

    ``handle`` must not raise: one item's failure must not stop the walk (it logs and moves on).
    """
    start = ledger.get_cursor(walk)
    result = WalkResult()
    stopped_at: str | None = None
    passes = [start, None] if start is not None else [None]
    for after in passes:
        for position, item in positions(after):
            if after is None and start is not None and position >= start:
                break  # the second pass came round to where this run began
            if time_left() < reserve_seconds:
                result.finished = False
                break
            handle(item)
            result.handled += 1
            stopped_at = position
        if not result.finished:
            break
    cursor = None if result.finished else (stopped_at or start)
    if cursor != start:
        ledger.save_cursor(walk, cursor)
    return result
