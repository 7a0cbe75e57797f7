"""`make load`: a realistic mix of clients, firms and Stripe webhooks against the local stack, then
the money checks ("nothing lost, nothing doubled") over every payable it touched.

It starts its own ``LocalStack`` (free ports, 127.0.0.1), seeds firms, clients and payables, and
for ``--seconds`` (60 by default) runs ``--workers`` threads (8), each repeating one scenario after
another, picked at random with these weights:

- link resolution (most): ``GET /api/pay/{token}`` or ``GET /pay/{token}``, as clients open emails;
- card payment: the page's JSON, a card made at the Stripe emulator (Stripe.js's part), review,
  submit, for part of the balance (a bill takes several; clients race for the last of it);
- eCheck payment (US firms): link token, Plaid Link over HTTP (the stand-in Link page's calls),
  exchange, review, submit; then the Stripe emulator settles or returns the debit, and its signed
  webhooks reach ``/webhooks/stripe`` on their own;
- firm API reads (SigV4): the firm, a payable with its payments, a client's stored methods;
- autopay: the firm reads the payable and charges the client's stored card through
  ``POST /firm/autopay``, racing the clients on the same bills.

Then it waits for the reserved payments to settle, the webhooks to stop and the stream poller to
drain, and checks for every payable touched: the ledger invariant; the succeeded payments adding
up to ``paid``; one PaymentIntent at Stripe per payment (its metadata ``payment_id``), at most one
charge per payment, no succeeded intent without a succeeded payment; one client confirmation email
marker (``EMAIL#<payment>`` / ``client_payment_received``, sent) and one such email per succeeded
card payment; an empty email dead-letter queue. The exit code is 1 if any check fails.

Expected refusals (a client paying a balance another payment just took: 409 ``payable_closed``,
``review_expired``, 422 ``amount_over_balance``) are counted apart from errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

ROUTE_PAY_JSON = "GET /api/pay/{token}"
ROUTE_PAY_PAGE = "GET /pay/{token}"
ROUTE_CARD_REVIEW = "POST /api/pay/{token}/card/review"
ROUTE_CARD_SUBMIT = "POST /api/pay/{token}/card/submit"
ROUTE_LINK_TOKEN = "POST /api/pay/{token}/echeck/link-token"
ROUTE_EXCHANGE = "POST /api/pay/{token}/echeck/exchange"
ROUTE_ECHECK_REVIEW = "POST /api/pay/{token}/echeck/review"
ROUTE_ECHECK_SUBMIT = "POST /api/pay/{token}/echeck/submit"
ROUTE_FIRM = "GET /firm/firms/{firm}"
ROUTE_PAYABLE = "GET /firm/firms/{firm}/payables/{payable}"
ROUTE_METHODS = "GET /firm/firms/{firm}/clients/{client}/methods"
ROUTE_AUTOPAY = "POST /firm/autopay"
ROUTE_WEBHOOK = "POST /webhooks/stripe"
# Calls to the emulators that stand in for the browser's Stripe.js, Plaid Link and Stripe's own
# processing: timed, shown apart, not counted as FirmPay requests.
OUTSIDE_CARD = "stripe.js: create PaymentMethod"
OUTSIDE_LINK = "plaid link: sign in, pick account"
OUTSIDE_ACH = "stripe: settle/return ACH debit"

# A client racing another payment for the same balance is refused; that is the system working.
PAYMENT_REFUSALS = frozenset({(409, "payable_closed"), (409, "review_expired"), (422, "amount_over_balance")})
CARD_AMOUNTS = (5_000, 10_000, 20_000, 35_000)
ECHECK_AMOUNTS = (10_000, 25_000, 40_000)
AUTOPAY_AMOUNTS = (7_500, 15_000, 30_000)
MINIMUM = 50  # firmpay.money.MINIMUM_CHARGE_MINOR
CARD_POOL = 24  # bills shared by card clients and autopay at any time
ECHECK_POOL = 12  # eCheck bills, each used by one client at a time
VIEW_POOL = 16  # bills and trust requests (US and Canadian firms) that are only looked at
MAX_PAYABLES = 3_000  # bound on what the run may seed
WEIGHTS = {"resolve": 50, "card": 18, "echeck": 9, "firm_read": 13, "autopay": 10}


# -- figures --------------------------------------------------------------------------------------


@dataclass
class RouteFigures:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    errors: int = 0


class Recorder:
    """Per-route latencies and outcomes, from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.routes: dict[str, RouteFigures] = defaultdict(RouteFigures)
        self.error_samples: list[str] = []
        self.notes: list[str] = []
        self.scenarios: Counter[str] = Counter()
        self.scenario_failures: Counter[str] = Counter()

    def record(self, route: str, status: int, ms: float, outcome: str, detail: str = "") -> None:
        with self._lock:
            figures = self.routes[route]
            figures.latencies_ms.append(ms)
            figures.statuses[status] += 1
            if outcome == "refused":
                figures.refused += 1
            elif outcome == "error":
                figures.errors += 1
                if len(self.error_samples) < 15:
                    self.error_samples.append(f"{route}: {status} {detail[:200]}")

    def started(self, scenario: str) -> None:
        with self._lock:
            self.scenarios[scenario] += 1

    def failed(self, scenario: str, error: Exception) -> None:
        with self._lock:
            self.scenario_failures[scenario] += 1
            self.notes.append(f"{scenario} scenario failed: {type(error).__name__}: {str(error)[:200]}")

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def count(self, routes: Iterable[str] | None = None) -> int:
        with self._lock:
            wanted = self.routes.keys() if routes is None else routes
            return sum(len(self.routes[r].latencies_ms) for r in wanted if r in self.routes)


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Expected(Exception):
    """A scenario met an answer it cannot go on from (already recorded); it ends there."""


_local = threading.local()


def _session() -> requests.Session:
    """One keep-alive session per worker thread, like one browser per client."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def timed_call(
    recorder: Recorder,
    route: str,
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    refusals: frozenset[tuple[int, str]] = frozenset(),
) -> requests.Response:
    """One HTTP request, recorded under ``route``; raises ``Expected`` unless it answered 2xx."""
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    sent_headers = {"User-Agent": "firmpay-load/1.0", **(headers or {})}
    if payload is not None:
        sent_headers.setdefault("Content-Type", "application/json")
    began = time.perf_counter()
    try:
        answer = _session().request(method, url, data=payload, headers=sent_headers, timeout=60)
    except requests.RequestException as error:
        recorder.record(route, 0, (time.perf_counter() - began) * 1000, "error", f"{type(error).__name__}: {error}")
        raise Expected(route) from error
    ms = (time.perf_counter() - began) * 1000
    if 200 <= answer.status_code < 300:
        recorder.record(route, answer.status_code, ms, "ok")
        return answer
    code = ""
    with contextlib.suppress(ValueError, AttributeError):
        code = str(answer.json().get("code", ""))
    outcome = "refused" if (answer.status_code, code) in refusals else "error"
    recorder.record(route, answer.status_code, ms, outcome, answer.text)
    raise Expected(f"{route}: {answer.status_code} {code}")


def timed_outside(recorder: Recorder, route: str, call: Callable[[], Any]) -> Any:
    """A call to an emulator standing in for the browser or the processor, recorded apart."""
    began = time.perf_counter()
    try:
        result = call()
    except Exception as error:
        recorder.record(route, 0, (time.perf_counter() - began) * 1000, "error", f"{type(error).__name__}: {error}")
        raise Expected(route) from error
    recorder.record(route, 200, (time.perf_counter() - began) * 1000, "ok")
    return result


# -- the payables under load ----------------------------------------------------------------------


class Payables:
    """The seeded payables: a shared card pool (with stored cards for autopay), eCheck bills taken
    one client at a time, and bills that are only looked at; replaced as their balances run out."""

    def __init__(self, stack: Any, recorder: Recorder) -> None:
        self.stack = stack
        self.recorder = recorder
        self._lock = threading.Lock()
        self.touched: set[str] = set()
        self.card: list[Any] = []
        self.echeck: queue.Queue[Any] = queue.Queue()
        self.views: list[Any] = []
        self.seeded = 0

    @staticmethod
    def _retried(make: Callable[[], Any], attempts: int = 3) -> Any:
        """Seed again from scratch when a write fails under load (a timed-out write that did land
        makes its retry a Conflict; the half-made firm is left unused)."""
        for attempt in range(attempts):
            try:
                return make()
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def _seeded(self, made: Any) -> Any:
        with self._lock:
            self.seeded += 1
            self.touched.add(made.payable_id)
        return made

    def new_card_target(self) -> Any:
        from tests.support.autopay_stack import Autopay, store_card
        from tests.support.card_stack import open_link

        def make() -> Any:
            link = open_link(self.stack)
            return Autopay(self.stack, link, store_card(link))

        target = self._retried(make)
        self._seeded(target.link)
        return target

    def new_echeck_link(self) -> Any:
        from tests.support.echeck_stack import open_echeck_link

        return self._seeded(
            self._retried(
                lambda: open_echeck_link(
                    self.stack, amounts=(60_000, 40_000), firm_settings={"echeck_daily_limit": 100}
                )
            )
        )

    def seed(self) -> None:
        from tests.support.card_stack import open_link

        with ThreadPoolExecutor(max_workers=4) as pool:
            self.card = list(pool.map(lambda _: self.new_card_target(), range(CARD_POOL)))
            for link in pool.map(lambda _: self.new_echeck_link(), range(ECHECK_POOL)):
                self.echeck.put(link)
            shapes = [
                {"country": country, "kind": kind}
                for country in ("US", "CA")
                for kind in ("bill", "trust_request")
                for _ in range(VIEW_POOL // 4)
            ]
            self.views = list(
                pool.map(lambda shape: self._seeded(self._retried(lambda: open_link(self.stack, **shape))), shapes)
            )

    def pick_card(self, rng: random.Random) -> tuple[int, Any]:
        with self._lock:
            index = rng.randrange(len(self.card))
            return index, self.card[index]

    def replace_card(self, index: int, spent: Any) -> None:
        """A bill whose balance ran out gives its place to a fresh one (once, whoever notices first)."""
        with self._lock:
            if self.card[index] is not spent or self.seeded >= MAX_PAYABLES:
                return
        fresh = self.new_card_target()
        with self._lock:
            if self.card[index] is spent:
                self.card[index] = fresh

    def give_back_echeck(self, link: Any, usable: bool) -> None:
        if usable:
            self.echeck.put(link)
        elif self.seeded < MAX_PAYABLES:
            self.echeck.put(self.new_echeck_link())

    def pick_view(self, rng: random.Random) -> Any:
        with self._lock:
            pool = [*self.views, *(target.link for target in self.card)]
        return rng.choice(pool)


# -- scenarios ------------------------------------------------------------------------------------


class Load:
    def __init__(self, stack: Any, recorder: Recorder, payables: Payables, autopay_enabled: bool) -> None:
        self.stack = stack
        self.gateway = stack.urls["gateway"]
        self.recorder = recorder
        self.payables = payables
        self.autopay_enabled = autopay_enabled
        # Payments the scenarios saw succeed (card and autopay) or submitted (eCheck), for the report.
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.outcomes[name] += 1

    def pay_json(self, token: str) -> dict[str, Any]:
        answer = timed_call(self.recorder, ROUTE_PAY_JSON, "GET", f"{self.gateway}/api/pay/{token}")
        return answer.json()  # type: ignore[no-any-return]

    def resolve(self, rng: random.Random) -> None:
        link = self.payables.pick_view(rng)
        if rng.random() < 0.5:
            self.pay_json(link.token)
        else:
            timed_call(self.recorder, ROUTE_PAY_PAGE, "GET", f"{self.gateway}/pay/{link.token}")

    def card(self, rng: random.Random) -> None:
        index, target = self.payables.pick_card(rng)
        link = target.link
        balance = self.pay_json(link.token)["payable"]["balance"]["amount_minor"]
        if balance < MINIMUM:
            self.payables.replace_card(index, target)
            return
        amount = choose_amount(rng, CARD_AMOUNTS, balance)
        method = timed_outside(self.recorder, OUTSIDE_CARD, link.card)
        base = f"{self.gateway}/api/pay/{link.token}/card"
        from tests.support.card_stack import BILLING

        reviewed = timed_call(
            self.recorder,
            ROUTE_CARD_REVIEW,
            "POST",
            f"{base}/review",
            {"amount_minor": amount, "payment_method_id": method, "billing": BILLING},
            refusals=PAYMENT_REFUSALS,
        ).json()
        submitted = timed_call(
            self.recorder,
            ROUTE_CARD_SUBMIT,
            "POST",
            f"{base}/submit",
            {"review_id": reviewed["review_id"], "store_method": False},
            refusals=PAYMENT_REFUSALS,
        ).json()
        if submitted["status"] != "succeeded":
            self.recorder.note(f"card payment {submitted['payment_id']} answered {submitted['status']}")
        self._count(f"card {submitted['status']}")

    def echeck(self, rng: random.Random) -> None:
        from tests.support.echeck_stack import PLATYPUS, drive_link, stripe_test_control

        try:
            link = self.payables.echeck.get(timeout=2)
        except queue.Empty:  # every eCheck bill has a client on it: open a link instead
            self.resolve(rng)
            return
        usable = True
        try:
            balance = self.pay_json(link.token)["payable"]["balance"]["amount_minor"]
            if balance < MINIMUM:
                usable = False
                return
            amount = choose_amount(rng, ECHECK_AMOUNTS, balance)
            base = f"{self.gateway}/api/pay/{link.token}/echeck"
            token = timed_call(
                self.recorder, ROUTE_LINK_TOKEN, "POST", f"{base}/link-token", {"holder_name": "Jordan Client"}
            ).json()["link_token"]
            bank = timed_outside(
                self.recorder,
                OUTSIDE_LINK,
                lambda: drive_link(self.stack.urls["plaid"], token, PLATYPUS, "0000"),
            )
            connection = timed_call(
                self.recorder,
                ROUTE_EXCHANGE,
                "POST",
                f"{base}/exchange",
                {"public_token": bank.public_token, "account_id": bank.account_id, "holder_name": "Jordan Client"},
            ).json()
            review = timed_call(
                self.recorder,
                ROUTE_ECHECK_REVIEW,
                "POST",
                f"{base}/review",
                {"amount_minor": amount, "connection_id": connection["connection_id"]},
                refusals=PAYMENT_REFUSALS,
            ).json()
            submitted = timed_call(
                self.recorder,
                ROUTE_ECHECK_SUBMIT,
                "POST",
                f"{base}/submit",
                {"review_id": review["review_id"], "authorize_debit": True, "store_method": False},
                refusals=PAYMENT_REFUSALS,
            ).json()
            self._count(f"echeck {submitted['status']}")
            if submitted["status"] != "processing":
                self.recorder.note(f"eCheck payment {submitted['payment_id']} answered {submitted['status']}")
                return
            intent = link.intent_of(submitted["payment_id"])
            # Most debits settle; some come back (R01). A return emails the client a fresh link,
            # which revokes this one: the bill then leaves the pool.
            action, code = ("return", "R01") if rng.random() < 0.15 else ("settle", None)

            def control() -> None:
                answer = stripe_test_control(self.stack, intent, action, code)
                if answer.status_code >= 300:
                    raise RuntimeError(f"{answer.status_code} {answer.text[:200]}")

            timed_outside(self.recorder, OUTSIDE_ACH, control)
            self._count(f"echeck {action}")
            usable = action == "settle" and balance - amount >= MINIMUM
        finally:
            self.payables.give_back_echeck(link, usable)

    def firm_read(self, rng: random.Random) -> None:
        _, target = self.payables.pick_card(rng)
        billed = target.link.billed
        firm = f"/firm/firms/{billed.firm.firm_id}"
        self.firm_call(ROUTE_FIRM, "GET", firm)
        self.firm_call(ROUTE_PAYABLE, "GET", f"{firm}/payables/{billed.payable.payable_id}")
        self.firm_call(ROUTE_METHODS, "GET", f"{firm}/clients/{billed.client.client_id}/methods")

    def autopay(self, rng: random.Random) -> None:
        index, target = self.payables.pick_card(rng)
        billed = target.link.billed
        seen = self.firm_call(
            ROUTE_PAYABLE, "GET", f"/firm/firms/{billed.firm.firm_id}/payables/{billed.payable.payable_id}"
        )
        balance = seen.json()["balance"]["amount_minor"]
        if balance < MINIMUM:
            self.payables.replace_card(index, target)
            return
        amount = choose_amount(rng, AUTOPAY_AMOUNTS, balance)
        answer = self.firm_call(ROUTE_AUTOPAY, "POST", "/firm/autopay", target.payload(amount), PAYMENT_REFUSALS)
        status = answer.json()["status"]
        if status != "succeeded":
            self.recorder.note(f"autopay answered {status}: {answer.text[:200]}")
        self._count(f"autopay {status}")

    def firm_call(
        self, route: str, method: str, path: str, body: Any = None, refusals: frozenset[tuple[int, str]] = frozenset()
    ) -> requests.Response:
        from local.gateway import sign_request
        from tests.integration.conftest import US_KEY

        url = self.gateway + path
        data = json.dumps(body) if body is not None else ""
        headers = sign_request(method, url, data, US_KEY, {"Content-Type": "application/json"})
        return timed_call(self.recorder, route, method, url, headers=headers, data=data.encode(), refusals=refusals)


def choose_amount(rng: random.Random, amounts: tuple[int, ...], balance: int) -> int:
    """Part of the balance (never leaving less than the minimum behind), or all of what is left."""
    amount = min(rng.choice(amounts), balance)
    return balance if balance - amount < MINIMUM else amount


def run_workers(load: Load, seconds: float, workers: int, max_scenarios: int) -> float:
    """Run scenarios on ``workers`` threads until ``seconds`` pass or ``max_scenarios`` ran; the elapsed time."""
    weights = dict(WEIGHTS)
    if not load.autopay_enabled:
        weights.pop("autopay")
    names, shares = list(weights), list(weights.values())
    began = time.monotonic()
    deadline = began + seconds
    started = 0
    start_lock = threading.Lock()

    def worker(number: int) -> None:
        nonlocal started
        rng = random.Random(1_000 + number)
        first = True
        while time.monotonic() < deadline:
            with start_lock:
                if started >= max_scenarios:
                    return
                started += 1
            # Each worker starts with a different scenario, so that even a short run has them all.
            name = names[number % len(names)] if first else rng.choices(names, shares)[0]
            first = False
            load.recorder.started(name)
            try:
                getattr(load, name)(rng)
            except Expected:
                pass
            except Exception as error:  # a scenario's own failure is reported, never hidden
                load.recorder.failed(name, error)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load") as pool:
        for future in [pool.submit(worker, n) for n in range(workers)]:
            future.result()
    return time.monotonic() - began


# -- after the load: drain, then check ------------------------------------------------------------


class WebhookTap:
    """Records the gateway's ``POST /webhooks/stripe`` lines (the Stripe emulator's own deliveries)."""

    LINE = re.compile(r"^POST /webhooks/stripe (\d{3}) ([\d.]+)ms$")

    def __init__(self, stack: Any, recorder: Recorder) -> None:
        self.recorder = recorder
        self.delivered = 0
        self._original = stack.gateway.log
        stack.gateway.log = self

    def __call__(self, line: str) -> None:
        found = self.LINE.match(line)
        if found:
            status, ms = int(found[1]), float(found[2])
            self.recorder.record(ROUTE_WEBHOOK, status, ms, "ok" if 200 <= status < 300 else "error", line)
            self.delivered += 1
        if self._original is not None:
            self._original(line)


def reserved_payables(stack: Any, payable_ids: Iterable[str]) -> list[str]:
    return [p for p in payable_ids if stack.ledger.get_payable(p).pending_minor > 0]


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def wait_for_quiet_webhooks(tap: WebhookTap, quiet: float = 3.0, timeout: float = 60.0) -> None:
    """Until no webhook arrived for ``quiet`` seconds (the emulator sends them ~1 s after events)."""
    deadline = time.monotonic() + timeout
    quiet_since, seen = time.monotonic(), tap.delivered
    while time.monotonic() - quiet_since < quiet and time.monotonic() < deadline:
        time.sleep(0.25)
        if tap.delivered != seen:
            quiet_since, seen = time.monotonic(), tap.delivered


def drain(stack: Any, payables: Payables, tap: WebhookTap, wait: float = 30.0) -> tuple[list[str], list[str]]:
    """Let every reservation end, through the paths production has; (recovery steps taken, problems).

    First the webhooks, on their own. A payment still reserved after ``wait`` seconds is one whose
    function or webhook failed under load: as in production, the ACH debits Stripe is still
    processing finish (the emulator settles them; a real debit takes days), then the payment
    sweep runs (its 5-minute schedule and 3-minute grace fast-forwarded), then the confirmation
    emails whose stream records ended in the dead-letter queue are replayed (``make replay-dlq``).
    """
    from datetime import UTC, datetime, timedelta

    from firmpay.gateways.stripe_gateway import StripeGateway
    from firmpay.models.ledger import PaymentStatus
    from firmpay.payments.sweep import sweep_pending
    from local.replay_dlq import replay
    from tests.support.card_stack import stripe_client
    from tests.support.echeck_stack import stripe_test_control

    steps: list[str] = []
    problems: list[str] = []
    touched = sorted(payables.touched)
    wait_until(lambda: not reserved_payables(stack, touched), wait)
    waiting = reserved_payables(stack, touched)
    if waiting:
        steps.append(f"{len(waiting)} payables still reserved {wait:.0f} s after the load")
        stripe = stripe_client(stack.urls["stripe"])
        finished = 0
        for payable_id in waiting:
            _, payments = stack.ledger.get_payable_with_payments(payable_id)
            for payment in payments:
                intent = payment.processor_intent_id
                if payment.status is PaymentStatus.PROCESSING and intent:
                    if stripe.v1.payment_intents.retrieve(intent).status != "processing":
                        continue  # its outcome is on the way (a webhook the sweep will apply)
                    stripe_test_control(stack, intent, "settle").raise_for_status()
                    finished += 1
        if finished:
            steps.append(f"Stripe finished {finished} ACH debits still processing")
        wait_for_quiet_webhooks(tap)
        stack.poller.drain(timeout=60)
        report = sweep_pending(
            stack.ledger, StripeGateway(), datetime.now(UTC), abandon_after=timedelta(0), settle_after=timedelta(0)
        )
        steps.append(f"payment sweep: {report.as_dict()}")
        wait_for_quiet_webhooks(tap)
    stack.poller.drain(timeout=60)
    dlq = stack.queues.get("EmailDeadLetterQueue")
    if dlq and queue_depth(stack, dlq):
        replayed = replay(
            stack.client("sqs"),
            dlq,
            lambda event: stack.invoke("confirmation_email", event),
            streams=stack.client("dynamodbstreams"),
            dynamodb=stack.client("dynamodb"),
            table=stack.env["LEDGER_TABLE"],
            log=lambda line: steps.append(f"replay-dlq: {line}"),
        )
        steps.append(f"replay-dlq: {replayed.line()}")
        stack.poller.drain(timeout=60)
    waiting = reserved_payables(stack, touched)
    if waiting:
        problems.append(f"{len(waiting)} payables still have money reserved after recovery: {waiting[:5]}")
    return steps, problems


def queue_depth(stack: Any, queue_url: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def check_money(stack: Any, payables: Payables) -> tuple[list[str], dict[str, int]]:
    """The checks of "nothing lost, nothing doubled" over every payable touched; (problems, counts)."""
    from firmpay.ledger import keys
    from firmpay.models.ledger import PaymentStatus
    from tests.support.card_stack import stripe_client

    problems: list[str] = []
    counts: Counter[str] = Counter()
    ledger = stack.ledger
    payments: dict[str, Any] = {}
    for payable_id in sorted(payables.touched):
        try:
            ledger.check_invariant(payable_id)
        except Exception as error:
            problems.append(f"invariant: {error}")
        payable, found = ledger.get_payable_with_payments(payable_id)
        succeeded = sum(p.amount_minor for p in found if p.status is PaymentStatus.SUCCEEDED)
        if succeeded != payable.paid_minor:
            problems.append(
                f"payable {payable_id}: succeeded payments add up to {succeeded}, paid is {payable.paid_minor}"
            )
        counts["payables"] += 1
        for payment in found:
            payments[payment.payment_id] = payment
            counts[f"payments {payment.method.type} {payment.status.value}"] += 1

    stripe = stripe_client(stack.urls["stripe"])
    intents: dict[str, list[Any]] = defaultdict(list)
    intent_payment: dict[str, str] = {}
    for intent in stripe.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
        metadata = intent.to_dict().get("metadata") or {}
        if metadata.get("payable_id") in payables.touched:
            intents[metadata.get("payment_id", "")].append(intent)
            intent_payment[intent.id] = metadata.get("payment_id", "")
            counts["intents"] += 1
    charges: Counter[str] = Counter()
    for charge in stripe.v1.charges.list(params={"limit": 100}).auto_paging_iter():
        intent_id = str(getattr(charge.payment_intent, "id", charge.payment_intent))  # an id, or expanded
        if intent_id in intent_payment:
            charges[intent_payment[intent_id]] += 1
            counts["charges"] += 1

    for payment_id, payment in payments.items():
        mine = intents.get(payment_id, [])
        if len(mine) != 1:
            problems.append(f"payment {payment_id}: {len(mine)} PaymentIntents at Stripe, not 1")
            continue
        if (mine[0].status == "succeeded") != (payment.status is PaymentStatus.SUCCEEDED):
            problems.append(f"payment {payment_id} is {payment.status.value}, its PaymentIntent {mine[0].status}")
        if charges[payment_id] > 1:
            problems.append(f"payment {payment_id}: {charges[payment_id]} charges at Stripe")
    for payment_id, mine in intents.items():
        if payment_id not in payments and any(i.status == "succeeded" for i in mine):
            problems.append(f"PaymentIntent {mine[0].id} succeeded for payment {payment_id}, unknown to the ledger")

    # One client confirmation per succeeded card payment: its sent-once marker, and the email itself.
    db = stack.client("dynamodb")
    card_succeeded = [p for p in payments.values() if p.method.type == "card" and p.status is PaymentStatus.SUCCEEDED]
    for payment in card_succeeded:
        marker = db.get_item(
            TableName=stack.env["LEDGER_TABLE"],
            Key=keys.email_marker(payment.payment_id, "client_payment_received"),
            ConsistentRead=True,
        ).get("Item")
        if marker is None or marker.get("status", {}).get("S") != "sent":
            problems.append(
                f"payment {payment.payment_id}: client confirmation marker is {marker and marker.get('status')}"
            )
    mentions = client_emails_by_reference(stack, {p.reference for p in card_succeeded})
    for payment in card_succeeded:
        if mentions[payment.reference] != 1:
            problems.append(f"payment {payment.payment_id}: {mentions[payment.reference]} client emails, not 1")
    counts["client confirmations checked"] = len(card_succeeded)
    dlq = stack.queues.get("EmailDeadLetterQueue")
    depth = queue_depth(stack, dlq) if dlq else 0
    if depth:
        problems.append(f"{depth} messages left in the email dead-letter queue")
    return problems, dict(counts)


def client_emails_by_reference(stack: Any, references: set[str]) -> Counter[str]:
    """How many client "payment received" emails in the outbox name each payment reference."""
    mentions: Counter[str] = Counter()
    pattern = re.compile(r"FP-[A-Z0-9]{4}-[A-Z0-9]{4}")
    for meta in stack.outbox.list_messages():
        if "jordan@example.com" not in meta.get("to", ""):
            continue
        message = stack.outbox.read(meta["id"]) or {}
        for reference in set(pattern.findall(message.get("text", ""))) & references:
            mentions[reference] += 1
    return mentions


# -- report ---------------------------------------------------------------------------------------


def print_report(
    recorder: Recorder, seconds: float, elapsed: float, workers: int, load: Load, tap: WebhookTap
) -> tuple[int, int]:
    """Print the figures; (unexpected errors, FirmPay requests)."""
    outside = {OUTSIDE_CARD, OUTSIDE_LINK, OUTSIDE_ACH}
    driven = [r for r in recorder.routes if r not in outside and r != ROUTE_WEBHOOK]
    total = recorder.count(driven)
    print(
        f"\nload: {elapsed:.1f} s ({seconds:.0f} s starting scenarios, then those in flight finished), {workers} workers, {sum(recorder.scenarios.values())} scenarios {dict(recorder.scenarios)}"
    )
    print(
        f"FirmPay requests driven by clients and firms: {total} ({total / elapsed:.1f}/s); "
        f"webhooks delivered by the Stripe emulator: {tap.delivered}"
    )
    print(f"payments seen by the scenarios: {dict(sorted(load.outcomes.items()))}")
    print(
        f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; client threads, gateway and handlers "
        "share one process"
    )
    header = f"{'route':<44}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'refused':>9}{'errors':>8}"
    print("\n" + header)
    errors = 0
    for number, group in enumerate(([*driven, ROUTE_WEBHOOK], sorted(outside))):
        if number:
            print("(emulators standing in for Stripe.js, Plaid Link and Stripe's processing; not counted above)")
        for route in sorted(r for r in group if r in recorder.routes):
            figures = recorder.routes[route]
            ordered = sorted(figures.latencies_ms)
            print(
                f"{route:<44}{len(ordered):>7}{percentile(ordered, 0.50):>9.1f}{percentile(ordered, 0.95):>9.1f}"
                f"{percentile(ordered, 0.99):>9.1f}{figures.refused:>9}{figures.errors:>8}"
            )
            errors += figures.errors
    if recorder.error_samples:
        print("\nfirst errors:")
        for sample in recorder.error_samples:
            print(f"  {sample}")
    for note in recorder.notes[:20]:
        print(f"note: {note}")
    errors += sum(recorder.scenario_failures.values())
    return errors, total + tap.delivered


def autopay_works(stack: Any, payables: Payables, recorder: Recorder) -> bool:
    """One autopay charge before the load; if autopay is broken right now, the load runs without it."""
    try:
        target = payables.new_card_target()
        load = Load(stack, Recorder(), payables, autopay_enabled=True)
        answer = load.firm_call(ROUTE_AUTOPAY, "POST", "/firm/autopay", target.payload(MINIMUM * 20))
        if answer.json().get("status") == "succeeded":
            return True
        reason = answer.text[:200]
    except Expected as error:
        reason = str(error)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
    recorder.note(f"autopay is skipped: the probe charge failed ({reason})")
    print(f"NOTE: autopay is broken at the moment, skipping that scenario: {reason}", flush=True)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to drive the load (default 60)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--max-error-rate",
        type=float,
        default=0.05,
        help="unexpected errors (5xx, timeouts) allowed, as a share of requests (default 0.05): a shared, "
        "overloaded machine makes functions time out; the money checks allow nothing",
    )
    parser.add_argument("--max-scenarios", type=int, default=50_000, help="stop after this many scenarios")
    args = parser.parse_args()
    if not 0 < args.seconds <= 3_600 or not 0 < args.workers <= 64:
        parser.error("--seconds must be in (0, 3600] and --workers in [1, 64]")

    from local.stack import LocalStack

    with LocalStack(name="load") as stack:
        print(f"local stack up in {stack.startup_seconds:.1f} s at {stack.urls['gateway']}", flush=True)
        recorder = Recorder()
        payables = Payables(stack, recorder)
        began = time.monotonic()
        payables.seed()
        autopay_enabled = autopay_works(stack, payables, recorder)
        print(
            f"seeded {payables.seeded} payables in {time.monotonic() - began:.1f} s; driving for {args.seconds:.0f} s",
            flush=True,
        )
        tap = WebhookTap(stack, recorder)
        load = Load(stack, recorder, payables, autopay_enabled)
        elapsed = run_workers(load, args.seconds, args.workers, args.max_scenarios)
        began = time.monotonic()
        steps, problems = drain(stack, payables, tap)
        print(f"drained in {time.monotonic() - began:.1f} s", flush=True)
        errors, requests_made = print_report(recorder, args.seconds, elapsed, args.workers, load, tap)
        found, counts = check_money(stack, payables)
        problems += found
        for step in steps:
            print(f"recovery: {step}")
        print(f"\nchecked: {counts}")
        if problems:
            print(f"\nFAILED: {len(problems)} problems")
            for problem in problems[:40]:
                print(f"  {problem}")
        else:
            print(
                f"nothing lost, nothing doubled: the invariant holds on all {counts.get('payables', 0)} payables touched"
            )
        rate = errors / max(1, requests_made)
        if errors:
            print(
                f"{errors} unexpected errors in {requests_made} requests ({rate:.1%}; allowed {args.max_error_rate:.1%})"
            )
        return 1 if problems or rate > args.max_error_rate else 0


if __name__ == "__main__":
    sys.exit(main())
