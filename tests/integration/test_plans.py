"""Payment plans on the local stack: created through the firm API, installments charged by the
scheduled run with a test clock (``now`` is a parameter: no sleeping), through autopay."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.ledger import Ledger
from firmpay.models.ledger import PaymentPlan, new_id
from firmpay.payments import plans
from firmpay.payments.plans import PlanRunReport, due_at, reopen_after_return, run_due_installments
from local.iam import acting_as
from local.stack import STRIPE_SECRET, LocalStack
from tests.integration.conftest import FirmClient, table_snapshot
from tests.support.autopay_stack import Autopay, autopay_for, charged, decline_next
from tests.support.bulk import due_plans as bulk_due_plans
from tests.support.bulk import forget_plans
from tests.support.card_stack import CARD_3DS, CARD_OK, quiet_table
from tests.support.echeck_stack import EcheckLink, open_echeck_link, stripe_test_control
from tests.support.factories import card_payment

TODAY = datetime.now(UTC).date()


class Plan:
    """One plan of one payable, through the firm API."""

    def __init__(self, autopay: Autopay, **body: Any) -> None:
        self.autopay = autopay
        billed = autopay.link.billed
        self.base = f"/firm/firms/{billed.firm.firm_id}/payables/{billed.payable.payable_id}/plans"
        self.client = FirmClient(autopay.stack.urls["gateway"])
        created = self.client.call("POST", self.base, {"method_id": autopay.method.method_id, **body})
        assert created.status_code == 201, created.text
        self.created = created.json()
        self.plan_id = self.created["plan_id"]

    def state(self) -> dict[str, Any]:
        plans = self.client.call("GET", self.base).json()["plans"]
        return next(p for p in plans if p["plan_id"] == self.plan_id)  # type: ignore[no-any-return]

    def action(self, name: str) -> requests.Response:
        return self.client.call("POST", f"{self.base}/{self.plan_id}/{name}")

    def due(self, number: int) -> datetime:
        return due_at(date.fromisoformat(self.created["start_on"]), self.created["frequency"], number)

    def charges(self) -> list[int]:
        return sorted(int(pi.amount) for pi in charged(self.autopay.link.intents()))


def run(at: datetime) -> PlanRunReport:
    with acting_as("AutopayChargeFunction"):  # the scheduled run's code, under its role (local/iam.py)
        return run_due_installments(_ledger(), StripeGateway(), at)


def _ledger() -> Any:
    from firmpay.ledger import default_ledger

    return default_ledger()


def monthly_plan(stack: LocalStack, number: str = CARD_OK, total: int = 100_000) -> Plan:
    autopay = autopay_for(stack, number, amounts=(total,))
    return Plan(autopay, installments=3, frequency="monthly", start_on=TODAY.isoformat())


def test_three_monthly_installments_with_a_failure_and_a_retry_end_paid_with_the_exact_remainder(
    stack: LocalStack,
) -> None:
    # Given a bill of 1,000.00 on a plan of 3 monthly installments starting today
    plan = monthly_plan(stack)
    link = plan.autopay.link
    assert plan.created["installment"] == {"amount_minor": 33_333, "currency": "USD"}
    assert plan.created["next_due_at"] == plan.due(1).isoformat().replace("+00:00", "Z")

    # Nothing is charged before the first due time
    run(plan.due(1) - timedelta(minutes=1))
    assert plan.charges() == []

    # Installment 1
    run(plan.due(1))
    assert plan.charges() == [33_333]
    assert link.invariant().balance_minor == 66_667
    run(plan.due(1) + timedelta(minutes=15))  # the next scheduled run charges nothing more
    assert plan.charges() == [33_333]
    assert plan.state()["next_installment"] == 2

    # Installment 2 is declined once, then retried a day later
    decline_next(stack, plan.autopay.method.processor_method_id)
    run(plan.due(2))
    state = plan.state()
    assert (state["attempts"], state["last_failure_code"], state["status"]) == (1, "insufficient_funds", "active")
    assert link.invariant().balance_minor == 66_667
    run(plan.due(2) + timedelta(hours=12))  # not yet: the retry is a day later
    assert plan.charges() == [33_333]
    run(plan.due(2) + timedelta(days=1))
    assert plan.charges() == [33_333, 33_333]
    assert link.invariant().balance_minor == 33_334
    assert plan.state()["attempts"] == 0

    # Installment 3 charges the exact remainder and the plan completes
    run(plan.due(3))
    assert plan.charges() == [33_333, 33_333, 33_334]
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor, payable.status.value) == (100_000, 0, "paid")
    state = plan.state()
    assert (state["status"], state["charged"]["amount_minor"], state["next_due_at"]) == ("completed", 100_000, None)
    run(plan.due(3) + timedelta(days=40))
    assert len(link.intents()) == 4  # three charges and the one declined attempt
    origins = {p.origin for p in link.ledger.get_payable_with_payments(link.payable_id)[1]}
    assert origins == {"plan"}


def test_a_plan_stops_when_the_client_pays_the_rest_on_the_pay_page(stack: LocalStack) -> None:
    plan = monthly_plan(stack)
    link = plan.autopay.link
    run(plan.due(1))
    assert plan.charges() == [33_333]

    # the client pays the rest through the pay link
    paid = link.pay(CARD_OK, amount=66_667)
    assert paid["status"] == "succeeded"
    link.invariant()

    run(plan.due(2))
    state = plan.state()
    assert (state["status"], state["status_reason"]) == ("stopped", "paid_another_way")
    assert plan.charges() == [33_333, 66_667]
    assert link.invariant().status.value == "paid"


def test_a_plan_stops_when_its_payable_is_voided(stack: LocalStack) -> None:
    plan = monthly_plan(stack)
    plan.autopay.link.ledger.void_payable(plan.autopay.link.payable_id, datetime.now(UTC))

    run(plan.due(1))

    assert (plan.state()["status"], plan.state()["status_reason"]) == ("stopped", "payable_void")
    assert plan.autopay.link.intents() == []


def test_three_failed_attempts_pause_the_plan(stack: LocalStack) -> None:
    plan = monthly_plan(stack)
    method = plan.autopay.method.processor_method_id
    for attempt in range(3):
        decline_next(stack, method)
        run(plan.due(1) + timedelta(days=attempt))

    state = plan.state()
    assert (state["status"], state["status_reason"], state["attempts"]) == ("paused", "installment_failed", 3)
    run(plan.due(1) + timedelta(days=10))
    assert plan.charges() == []
    assert plan.autopay.link.invariant().balance_minor == 100_000

    # resumed by the firm: the overdue installment is charged at the next run
    resumed = plan.action("resume")
    assert resumed.status_code == 200, resumed.text
    run(max(plan.due(1) + timedelta(days=3), datetime.now(UTC)) + timedelta(minutes=1))
    assert plan.charges() == [33_333]


def test_a_card_that_needs_authentication_pauses_the_plan_at_once(stack: LocalStack) -> None:
    plan = monthly_plan(stack, CARD_3DS)

    run(plan.due(1))

    state = plan.state()
    assert (state["status"], state["status_reason"]) == ("paused", "authentication_required")
    assert state["last_failure_code"] == "authentication_required"
    assert plan.autopay.link.invariant().balance_minor == 100_000


def test_a_paused_plan_charges_nothing_until_resumed_and_a_canceled_one_never(stack: LocalStack) -> None:
    plan = monthly_plan(stack)

    paused = plan.action("pause")
    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    run(plan.due(1))
    assert plan.charges() == []

    resumed = plan.action("resume")
    assert resumed.json()["status"] == "active"
    run(max(plan.due(1), datetime.now(UTC)) + timedelta(minutes=1))
    assert plan.charges() == [33_333]

    canceled = plan.action("cancel")
    assert canceled.json()["status"] == "canceled"
    run(plan.due(3) + timedelta(days=1))
    assert plan.charges() == [33_333]
    assert plan.action("cancel").status_code == 200  # canceling twice is harmless
    refused = plan.action("resume")
    assert (refused.status_code, refused.json()["code"]) == (409, "conflict")


def test_the_scheduled_event_runs_due_installments(stack: LocalStack) -> None:
    # Given a plan whose first installment fell due a minute ago (the handler reads the real clock)
    plan = monthly_plan(stack)
    ledger = plan.autopay.link.ledger
    stored = ledger.get_plan(plan.autopay.link.payable_id, plan.plan_id)
    assert ledger.update_plan(stored, next_due_at=datetime.now(UTC) - timedelta(minutes=1)) is not None

    answer = stack.invoke("autopay_charge", {"action": "run_due_installments"})

    assert answer["due"] >= 1, answer
    assert answer.get("charged", 0) >= 1, answer
    assert plan.charges() == [33_333]
    assert plan.state()["next_installment"] == 2
    assert plan.autopay.link.invariant().balance_minor == 66_667


# Each bad plan and the answer it gets: the request model refuses what is malformed (422
# invalid_request, firmpay.errors), the use case what the ledger contradicts.
INVALID = (422, "invalid_request")


def test_a_plan_on_a_stored_bank_account_reopens_when_a_counted_debit_is_returned(stack: LocalStack) -> None:
    # Given a client who paid 100.00 by eCheck, stored the account, and owes 800.00 in 2 installments
    link = open_echeck_link(stack, amounts=(90_000,))
    first = link.pay_echeck(amount=10_000, store=True)
    settle(stack, link, first["payment_id"])
    [method] = link.ledger.list_methods(link.billed.firm.firm_id, link.billed.client.client_id)
    plan = Plan(Autopay(stack, link, method), installments=2, frequency="monthly", start_on=TODAY.isoformat())
    assert plan.created["installment"] == {"amount_minor": 40_000, "currency": "USD"}

    # When installment 1 is debited and settles, and installment 2 is debited (processing)
    run(plan.due(1))
    settle(stack, link, plan.state()["last_payment_id"])
    run(plan.due(2))
    second = plan.state()
    assert (second["status"], second["charged"]["amount_minor"]) == ("completed", 80_000)  # processing counts
    assert link.invariant().pending_minor == 40_000

    # And the bank returns installment 2 (R01) after the plan counted it
    returned = stripe_test_control(stack, link.intent_of(second["last_payment_id"]), "return", "R01")
    assert returned.status_code == 200, returned.text
    returned_payment = link.wait_for_status(second["last_payment_id"], "failed")

    # Then the plan is active again, says why, and no longer counts the returned 400.00
    reopened = wait_for_plan(plan, lambda p: p["status"] == "active")
    assert (reopened["status_reason"], reopened["last_failure_code"]) == ("debit_returned", "R01")
    assert reopened["charged"]["amount_minor"] == 40_000
    assert reopen_after_return(link.ledger, returned_payment, datetime.now(UTC)) is None  # the sweep again: once
    assert plan.state()["charged"]["amount_minor"] == 40_000
    assert link.invariant().balance_minor == 40_000
    retry_at = datetime.fromisoformat(reopened["next_due_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < retry_at - datetime.now(UTC) <= timedelta(days=1)

    # And a day later it debits the 400.00 again; once that settles the bill is paid and the plan done
    run(retry_at)
    again = plan.state()
    assert again["last_payment_id"] != second["last_payment_id"]
    assert (again["status"], again["charged"]["amount_minor"]) == ("completed", 80_000)
    settle(stack, link, again["last_payment_id"])
    payable = link.invariant()
    assert (payable.paid_minor, payable.balance_minor, payable.status.value) == (90_000, 0, "paid")
    run(retry_at + timedelta(days=40))
    assert plan.state()["status"] == "completed"


def settle(stack: LocalStack, link: EcheckLink, payment_id: str) -> None:
    """The bank clears the debit (the emulator's control; Stripe's webhook settles the ledger)."""
    assert stripe_test_control(stack, link.intent_of(payment_id), "settle").status_code == 200
    link.wait_for_status(payment_id, "succeeded", timeout=15)


def wait_for_plan(plan: Plan, done: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
    """The plan's state once ``done`` holds (the webhook updates it right after the payment)."""
    deadline = time.monotonic() + timeout
    while True:
        state = plan.state()
        if done(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"plan {plan.plan_id} did not reach the expected state in {timeout:.0f}s: {state}")
        time.sleep(0.2)


BAD_PLANS: dict[str, tuple[dict[str, Any], tuple[int, str]]] = {
    "both amount and count": ({"installments": 3, "installment_minor": 10_000}, INVALID),
    "neither amount nor count": ({}, INVALID),
    "unknown frequency": ({"installments": 3, "frequency": "daily"}, INVALID),
    "fractional amount": ({"installment_minor": 100.5}, INVALID),
    "too many installments": ({"installments": 500}, INVALID),
    "start in the past": ({"installments": 3, "start_on": (TODAY - timedelta(days=1)).isoformat()}, INVALID),
    "start not a date": ({"installments": 3, "start_on": "next week"}, INVALID),
    "unknown method": ({"installments": 3, "method_id": "mth_unknown"}, (404, "not_found")),
    "installment over the balance": ({"installment_minor": 100_001}, (422, "amount_over_balance")),
    "installment below the minimum": ({"installment_minor": 49}, (422, "amount_below_minimum")),
}


@pytest.mark.parametrize("case", list(BAD_PLANS))
def test_a_bad_plan_is_refused_and_changes_nothing(stack: LocalStack, case: str) -> None:
    autopay = autopay_for(stack, amounts=(100_000,))
    billed = autopay.link.billed
    body = {"method_id": autopay.method.method_id, "frequency": "monthly", "start_on": TODAY.isoformat()}
    change, expected = BAD_PLANS[case]
    body = {**body, **change}
    before = quiet_table(stack)

    answer = FirmClient(stack.urls["gateway"]).call(
        "POST", f"/firm/firms/{billed.firm.firm_id}/payables/{billed.payable.payable_id}/plans", body
    )

    assert (answer.status_code, answer.json()["code"]) == expected, answer.text
    assert table_snapshot(stack) == before


def test_a_second_running_plan_for_one_payable_is_refused(stack: LocalStack) -> None:
    plan = monthly_plan(stack)
    before = quiet_table(stack)

    again = plan.client.call(
        "POST",
        plan.base,
        {"method_id": plan.autopay.method.method_id, "installments": 2, "frequency": "weekly", "start_on": str(TODAY)},
    )

    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert table_snapshot(stack) == before


# -- every due plan is reached; no plan's trouble stops the others ----------------------------------


def test_one_run_charges_a_plan_due_behind_100_plans_that_wait(stack: LocalStack) -> None:
    # Given 100 plans due since last week whose payable's rest is in flight (each run says "waiting")
    waiting = autopay_for(stack, amounts=(10_000,))
    in_flight = card_payment(waiting.link.billed, 10_000)
    assert waiting.link.ledger.reserve(in_flight)
    week_ago = datetime.now(UTC) - timedelta(days=7)
    blockers = [
        PaymentPlan(
            plan_id=new_id("plan"),
            payable_id=waiting.link.payable_id,
            firm_id=waiting.link.billed.firm.firm_id,
            client_id=waiting.link.billed.client.client_id,
            method_id=waiting.method.method_id,
            currency="USD",
            installment_minor=5_000,
            installments=2,
            frequency="weekly",
            start_on=week_ago.date(),
            next_due_at=week_ago + timedelta(microseconds=i),
            created_at=week_ago,
            updated_at=week_ago,
        )
        for i in range(100)
    ]
    bulk_due_plans(stack, blockers)
    # and, due today behind them, a plan that can be charged
    plan = Plan(autopay_for(stack, amounts=(100_000,)), installments=2, frequency="weekly", start_on=TODAY.isoformat())
    try:
        # When one scheduled run goes by
        report = run(plan.due(1))

        # Then it read past the waiting plans and charged the one due today
        assert report.outcomes.get("waiting", 0) >= 100, report.as_dict()
        assert plan.charges() == [50_000]
        assert plan.autopay.link.invariant().balance_minor == 50_000
        waiting.link.invariant()
    finally:
        forget_plans(stack, blockers)


def test_a_rest_under_the_minimum_is_folded_into_the_last_installment_and_later_plans_are_charged(
    stack: LocalStack,
) -> None:
    # Given 100.01 in weekly installments of 50.00 (a third of 0.01 would be under Stripe's 0.50)
    first = Plan(
        autopay_for(stack, amounts=(10_001,)), installment_minor=5_000, frequency="weekly", start_on=str(TODAY)
    )
    assert (first.created["installments"], first.created["installment"]["amount_minor"]) == (2, 5_000)
    # and a second plan starting two weeks later
    second = Plan(
        autopay_for(stack, amounts=(20_000,)),
        installment_minor=10_000,
        frequency="weekly",
        start_on=str(TODAY + timedelta(days=14)),
    )

    # When the runs of the next three weeks go by
    for week in (1, 2, 3):
        run(first.due(week))

    # Then the first plan charged 50.00 then 50.01 and completed, and the second was charged
    assert first.charges() == [5_000, 5_001]
    assert first.state()["status"] == "completed"
    assert first.autopay.link.invariant().balance_minor == 0
    assert second.charges() == [10_000]
    assert second.autopay.link.invariant().balance_minor == 10_000


def test_a_balance_left_under_the_minimum_stops_the_plan_without_a_charge(stack: LocalStack) -> None:
    # Given a plan of two installments on 100.00, and the client pays 99.99 on the pay page
    plan = Plan(autopay_for(stack, amounts=(10_000,)), installments=2, frequency="weekly", start_on=str(TODAY))
    paid = plan.autopay.link.pay(amount=9_999)
    assert paid["status"] == "succeeded", paid

    # When the plan's installment is due
    report = run(plan.due(1))

    # Then no charge of 0.01 is attempted: the plan stops and says why
    assert report.outcomes.get("stopped", 0) >= 1
    assert (plan.state()["status"], plan.state()["status_reason"]) == ("stopped", "balance_below_minimum")
    assert plan.charges() == [9_999]  # the client's own payment only
    assert plan.autopay.link.invariant().balance_minor == 1


def test_one_plans_unexpected_error_does_not_stop_the_run(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Plan(autopay_for(stack), installments=2, frequency="weekly", start_on=str(TODAY))
    healthy = Plan(autopay_for(stack), installments=2, frequency="weekly", start_on=str(TODAY))
    real = plans.run_installment

    def run_installment(ledger: Any, processor: Any, plan: Any, now: datetime) -> str:
        if plan.plan_id == broken.plan_id:
            raise RuntimeError("a bug in one plan")
        return real(ledger, processor, plan, now)

    monkeypatch.setattr(plans, "run_installment", run_installment)
    report = run(healthy.due(1))

    assert report.outcomes.get("error", 0) >= 1
    assert healthy.charges() == [75_025]
    assert broken.state()["status"] == "active"
    healthy.autopay.link.invariant()
    broken.autopay.link.invariant()


# -- an outage is not a refusal ----------------------------------------------------------------------


def test_an_outage_at_confirm_is_retried_with_the_same_amount_and_key_and_charges_once(stack: LocalStack) -> None:
    # Given 90.00 in installments of 50.00
    plan = Plan(autopay_for(stack, amounts=(9_000,)), installment_minor=5_000, frequency="weekly", start_on=str(TODAY))
    link = plan.autopay.link
    # When Stripe does not answer the confirm of the first installment
    faults = f"{stack.urls['stripe']}/_test/faults"
    fault = {"path": "/v1/payment_intents/", "method": "POST", "status": 503, "times": 10}
    auth = {"Authorization": f"Bearer {STRIPE_SECRET}"}
    requests.post(faults, json=fault, headers=auth, timeout=5).raise_for_status()
    try:
        first = run(plan.due(1))
    finally:
        requests.delete(faults, headers=auth, timeout=5).raise_for_status()

    # Then the plan waits to try again (not paused), with 50.00 held for the attempt
    assert first.outcomes.get("retry_later", 0) >= 1, first.as_dict()
    assert (plan.state()["status"], plan.state()["next_installment"]) == ("active", 1)
    assert link.invariant().pending_minor == 5_000

    # When the next run comes
    run(plan.due(1) + timedelta(minutes=15))

    # Then the same attempt is finished: 50.00 charged once, and 40.00 is the next installment
    assert plan.charges() == [5_000]
    assert (plan.state()["next_installment"], link.invariant().balance_minor) == (2, 4_000)
    run(plan.due(2))
    assert plan.charges() == [4_000, 5_000]
    assert plan.state()["status"] == "completed"
    assert link.invariant().paid_minor == 9_000


# -- two creations at once ---------------------------------------------------------------------------


def test_concurrent_plan_creations_make_one_plan(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading the payable's plans is slow (a loaded table): every request reads before any writes.
    read_plans = Ledger.list_plans

    def slow_list_plans(self: Ledger, payable_id: str) -> Any:
        found = read_plans(self, payable_id)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(Ledger, "list_plans", slow_list_plans)
    autopay = autopay_for(stack)
    billed = autopay.link.billed
    base = f"/firm/firms/{billed.firm.firm_id}/payables/{billed.payable.payable_id}/plans"
    body = {"method_id": autopay.method.method_id, "installments": 2, "frequency": "weekly", "start_on": str(TODAY)}
    start = threading.Barrier(6)
    answers: list[requests.Response] = []

    def create() -> None:
        client = FirmClient(stack.urls["gateway"])
        start.wait()
        answers.append(client.call("POST", base, body))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    listed = FirmClient(stack.urls["gateway"]).call("GET", base).json()["plans"]
    assert len(listed) == 1
    autopay.link.invariant()
