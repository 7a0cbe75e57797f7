"""Payment plans: installments charged to a stored method on a schedule, through autopay.

Schedule: installment ``n`` (1-based) is due ``start_on`` + (n-1) weeks / two weeks / months, at
``CHARGE_TIME`` (UTC). Monthly dates keep the start's day of the month, clamped to the month's
last day (a plan started on 31 January is due on 28 or 29 February, then 31 March).

Amounts: every installment charges ``installment_minor`` except the last one (or one that would
exceed the balance), which charges exactly what is left of the balance. No installment is ever
under the processor's minimum (0.50): a rest under it is folded into the installment before it,
both when the plan is made (100.01 in 50.00 installments is 50.00 then 50.01) and at each run
(after a partial payment by the client). A balance left under the minimum with nothing in flight
stops the plan (``balance_below_minimum``): no processor takes such a charge.

The scheduled run (``run_due_installments``, every 15 minutes) walks ``PLANDUE`` for active plans
due at ``now``, longest due first, every page, within the invocation's time and resuming next run
where it stopped (``resumable``), and charges each through ``autopay.charge_stored_method`` (origin
``plan``) with the idempotency key ``plan-<plan>-<installment>-<try>`` (``try`` moves on only once a
failure is recorded, and is never reused, not even after a resume): a rerun, a second concurrent
run or a crash between charge and bookkeeping never charges an installment twice. One plan's
error is logged and the run goes on with the others.

Outages: a Stripe or DynamoDB outage (``ServiceUnavailable``) is not a refusal. The plan is left as
it is and the next run tries again with the same key and the same amount: the amount of the
payment that key already made, when it made one (its balance is reserved meanwhile, so the
amount computed from the balance would differ and Stripe would refuse the key).

Retry policy (documented in docs/decisions.md): a failed installment is retried
``RETRY_DELAY`` (one day) later, up to ``MAX_ATTEMPTS`` (3) attempts; after the third failure the
plan is paused (``installment_failed``) until the firm resumes it. A card that needs
authentication is not retried (nobody is there to authenticate): the plan pauses at once
(``authentication_required``) and the client gets a pay link by email. Each failed payment is a
ledger event the confirmation-email stream reports to the client.

End: the plan completes when its own charge pays the balance; it stops when, at a due date, the
payable was voided (``payable_void``), paid another way (``paid_another_way``) or its method can
no longer be charged (``method_unusable``). The firm may pause, resume and cancel it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from firmpay.errors import (
    AmountBelowMinimum,
    AmountOverBalance,
    Conflict,
    FirmPayError,
    InvalidRequest,
    MethodUnusable,
    MethodWithoutConsent,
    NotFound,
    PayableClosed,
    ServiceUnavailable,
)
from firmpay.ledger import Ledger
from firmpay.models.api import AutopayRequest, CreatePlanRequest, MoneyOut, PlanOut, PlansOut
from firmpay.models.ledger import Firm, Payment, PaymentPlan, PaymentStatus, PlanFrequency, PlanStatus, new_id
from firmpay.money import MINIMUM_CHARGE_MINOR
from firmpay.observability import logger
from firmpay.payments.autopay import AUTHENTICATION_REQUIRED, charge_stored_method, chargeable_method
from firmpay.payments.firm_admin import is_resource_id, payable_of
from firmpay.payments.ports import PaymentProcessor
from firmpay.payments.resumable import TimeLeft, unlimited, walk_resumably

CHARGE_TIME = time(12, 0, tzinfo=UTC)  # morning across North America
RETRY_DELAY = timedelta(days=1)
MAX_ATTEMPTS = 3
MAX_INSTALLMENTS = 120
# The worst case of one installment: a customer read, an intent create and a confirm at Stripe, each
# up to 3 tries of 2 s connect + 5 s read.
RESERVE_SECONDS = 65.0
WALK = "plans"


# -- the schedule (pure) ---------------------------------------------------------------------------


def add_months(start: date, months: int) -> date:
    """``start`` moved by ``months``, on the same day of the month or the month's last day."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_on(start_on: date, frequency: PlanFrequency, number: int) -> date:
    """The due date of installment ``number`` (1-based)."""
    if frequency == "weekly":
        return start_on + timedelta(weeks=number - 1)
    if frequency == "biweekly":
        return start_on + timedelta(weeks=2 * (number - 1))
    return add_months(start_on, number - 1)


def due_at(start_on: date, frequency: PlanFrequency, number: int) -> datetime:
    return datetime.combine(due_on(start_on, frequency, number), CHARGE_TIME)


def installment_amount(plan: PaymentPlan, balance_minor: int) -> int:
    """What installment ``plan.next_installment`` charges: the regular amount, or the exact rest
    (also when the regular amount would leave less than the processor's minimum behind)."""
    if plan.next_installment >= plan.installments or balance_minor - plan.installment_minor < MINIMUM_CHARGE_MINOR:
        return balance_minor
    return plan.installment_minor


def split_balance(balance_minor: int, installment_minor: int | None, installments: int | None) -> tuple[int, int]:
    """``(installment_minor, installments)`` for a balance, from either one of them."""
    if installments is not None:
        amount = balance_minor // installments
        if amount < MINIMUM_CHARGE_MINOR:
            raise AmountBelowMinimum(
                f"{installments} installments of this balance would be below the minimum payment.",
                minimum_minor=MINIMUM_CHARGE_MINOR,
            )
        return amount, installments
    assert installment_minor is not None
    if installment_minor > balance_minor:
        raise AmountOverBalance(balance_minor=balance_minor)
    if installment_minor < MINIMUM_CHARGE_MINOR:
        raise AmountBelowMinimum(minimum_minor=MINIMUM_CHARGE_MINOR)
    count = -(-balance_minor // installment_minor)
    if count > 1 and balance_minor - (count - 1) * installment_minor < MINIMUM_CHARGE_MINOR:
        count -= 1  # the rest would be under the minimum: the last installment takes it
    if count > MAX_INSTALLMENTS:
        raise AmountBelowMinimum(f"A plan has at most {MAX_INSTALLMENTS} installments; raise the installment.")
    return installment_minor, count


# -- the firm's side -------------------------------------------------------------------------------


def create_plan(ledger: Ledger, firm: Firm, payable_id: str, request: CreatePlanRequest, now: datetime) -> PlanOut:
    """A plan for an open payable of the firm, on a chargeable method of its client.

    One running (active or paused) plan per payable: a second is a 409 ``conflict``.
    """
    payable, _ = payable_of(ledger, firm, payable_id)
    if not payable.open_for_payment:
        raise PayableClosed("This payable is void or paid; it needs no payment plan.")
    method = chargeable_method(ledger, firm, payable, request.method_id, now)
    if request.start_on < now.date():
        raise InvalidRequest("start_on is in the past; a plan starts today or later.")
    slot = ledger.plan_slot(payable.payable_id)
    if any(p.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED) for p in ledger.list_plans(payable.payable_id)):
        raise Conflict("This payable already has a payment plan; cancel it first.")
    amount, count = split_balance(payable.balance_minor, request.installment_minor, request.installments)
    plan = PaymentPlan(
        plan_id=new_id("plan"),
        payable_id=payable.payable_id,
        firm_id=firm.firm_id,
        client_id=payable.client_id,
        method_id=method.method_id,
        currency=payable.currency,
        installment_minor=amount,
        installments=count,
        frequency=request.frequency,
        start_on=request.start_on,
        next_due_at=due_at(request.start_on, request.frequency, 1),
        created_at=now,
        updated_at=now,
    )
    if not ledger.create_plan(plan, slot):
        raise Conflict("This payable already has a payment plan; cancel it first.")
    return plan_out(plan)


def list_plans(ledger: Ledger, firm: Firm, payable_id: str) -> PlansOut:
    payable, _ = payable_of(ledger, firm, payable_id)
    return PlansOut(plans=[plan_out(p) for p in ledger.list_plans(payable.payable_id)])


def plan_of(ledger: Ledger, firm: Firm, payable_id: str, plan_id: str) -> PaymentPlan:
    payable, _ = payable_of(ledger, firm, payable_id)
    plan = ledger.get_plan(payable.payable_id, plan_id) if is_resource_id(plan_id) else None
    if plan is None:
        raise NotFound("No such payment plan for this payable.")
    return plan


def pause_plan(ledger: Ledger, firm: Firm, payable_id: str, plan_id: str, now: datetime) -> PlanOut:
    plan = plan_of(ledger, firm, payable_id, plan_id)
    if plan.status is PlanStatus.PAUSED:
        return plan_out(plan)
    _require(plan, PlanStatus.ACTIVE, "pause")
    return plan_out(_save(ledger, plan, now, status=PlanStatus.PAUSED, status_reason="paused_by_firm"))


def resume_plan(ledger: Ledger, firm: Firm, payable_id: str, plan_id: str, now: datetime) -> PlanOut:
    """Resume a paused plan: an installment already due is charged at the next run, with fresh attempts."""
    plan = plan_of(ledger, firm, payable_id, plan_id)
    if plan.status is PlanStatus.ACTIVE:
        return plan_out(plan)
    _require(plan, PlanStatus.PAUSED, "resume")
    payable, _ = payable_of(ledger, firm, payable_id)
    if not payable.open_for_payment:
        raise PayableClosed("This payable is void or paid; the plan cannot resume.")
    chargeable_method(ledger, firm, payable, plan.method_id, now)
    changes = {"status": PlanStatus.ACTIVE, "status_reason": None, "attempts": 0}
    return plan_out(_save(ledger, plan, now, next_due_at=max(plan.next_due_at, now), **changes))


def cancel_plan(ledger: Ledger, firm: Firm, payable_id: str, plan_id: str, now: datetime) -> PlanOut:
    plan = plan_of(ledger, firm, payable_id, plan_id)
    if plan.status is PlanStatus.CANCELED:
        return plan_out(plan)
    if plan.status not in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        raise Conflict(f"This plan is {plan.status.value}; there is nothing to cancel.")
    return plan_out(_save(ledger, plan, now, status=PlanStatus.CANCELED, status_reason="canceled_by_firm"))


def _require(plan: PaymentPlan, status: PlanStatus, action: str) -> None:
    if plan.status is not status:
        raise Conflict(f"This plan is {plan.status.value}; it cannot {action}.")


def plan_out(plan: PaymentPlan) -> PlanOut:
    def money(amount_minor: int) -> MoneyOut:
        return MoneyOut(amount_minor=amount_minor, currency=plan.currency)

    return PlanOut(
        plan_id=plan.plan_id,
        payable_id=plan.payable_id,
        method_id=plan.method_id,
        frequency=plan.frequency,
        start_on=plan.start_on,
        installment=money(plan.installment_minor),
        installments=plan.installments,
        next_installment=plan.next_installment,
        next_due_at=plan.next_due_at if plan.status is PlanStatus.ACTIVE else None,
        attempts=plan.attempts,
        charged=money(plan.charged_minor),
        status=plan.status.value,
        status_reason=plan.status_reason,
        last_payment_id=plan.last_payment_id,
        last_failure_code=plan.last_failure_code,
        created_at=plan.created_at,
    )


# -- the scheduled run -----------------------------------------------------------------------------


@dataclass
class PlanRunReport:
    """What one scheduled run did, by outcome (``charged``, ``failed``, ``paused``, ...)."""

    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"due": sum(self.outcomes.values()), **self.outcomes}


def run_due_installments(
    ledger: Ledger, processor: PaymentProcessor, now: datetime, time_left: TimeLeft = unlimited
) -> PlanRunReport:
    """Charge every installment due at ``now`` (``now`` is a parameter: tests advance a clock),
    while ``time_left()`` leaves room for one more; the next run resumes where this one stopped."""
    report = PlanRunReport()

    def charge(plan: PaymentPlan) -> None:
        try:
            report.add(run_installment(ledger, processor, plan, now))
        except ServiceUnavailable:
            report.add("retry_later")  # Stripe or DynamoDB did not answer: the next run tries again
        except Exception:  # one plan's error must not keep the plans due after it from being charged
            logger.exception("plan installment failed unexpectedly", extra={"plan_id": plan.plan_id})
            report.add("error")

    walked = walk_resumably(
        ledger, WALK, lambda after: ledger.due_plans(now, after), charge, time_left, RESERVE_SECONDS
    )
    if not walked.finished:
        report.add("resume_next_run")
    return report


def run_installment(ledger: Ledger, processor: PaymentProcessor, plan: PaymentPlan, now: datetime) -> str:
    """Charge the plan's next installment (or end the plan); the outcome, for the report."""
    payable = ledger.get_payable(plan.payable_id)
    if payable is None or payable.voided_at is not None:
        _save(ledger, plan, now, status=PlanStatus.STOPPED, status_reason="payable_void")
        return "stopped"
    key = f"plan-{plan.plan_id}-{plan.next_installment}-{plan.failed_tries + 1}"
    earlier = _payment_of_key(ledger, plan.firm_id, key)
    if earlier is not None:
        amount = earlier.amount_minor  # an attempt an outage interrupted: finish it, same key, same amount
    elif payable.balance_minor < MINIMUM_CHARGE_MINOR:
        if payable.pending_minor:
            return "waiting"  # another payment is in flight: look again next run
        reason = "balance_below_minimum" if payable.balance_minor else "paid_another_way"
        _save(ledger, plan, now, status=PlanStatus.STOPPED, status_reason=reason)
        return "stopped"
    else:
        amount = installment_amount(plan, payable.balance_minor)
    request = AutopayRequest(
        firm_id=plan.firm_id,
        payable_id=plan.payable_id,
        method_id=plan.method_id,
        amount_minor=amount,
        currency=plan.currency,
        idempotency_key=key,
    )
    try:
        outcome = charge_stored_method(ledger, processor, request, now, origin="plan")
    except ServiceUnavailable:
        raise  # an outage, not a refusal: the next run retries with the same key and amount
    except (MethodUnusable, MethodWithoutConsent, NotFound):
        _save(ledger, plan, now, status=PlanStatus.STOPPED, status_reason="method_unusable")
        return "stopped"
    except (PayableClosed, AmountOverBalance):
        return "waiting"  # the balance moved meanwhile: the next run sees the new state
    except FirmPayError:
        logger.exception("plan installment refused", extra={"plan_id": plan.plan_id})
        _save(ledger, plan, now, status=PlanStatus.PAUSED, status_reason="installment_refused")
        return "paused"
    payment = outcome.payment
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
        paid_off = outcome.balance_minor == 0
        number = plan.next_installment + 1
        _save(
            ledger,
            plan,
            now,
            next_installment=number,
            attempts=0,
            failed_tries=0,
            charged_minor=plan.charged_minor + payment.amount_minor,
            last_payment_id=payment.payment_id,
            last_failure_code=None,
            next_due_at=due_at(plan.start_on, plan.frequency, number),
            **({"status": PlanStatus.COMPLETED, "status_reason": None} if paid_off else {}),
        )
        return "completed" if paid_off else "charged"
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        attempts = plan.attempts + 1
        failed = {
            "attempts": attempts,
            "failed_tries": plan.failed_tries + 1,
            "last_payment_id": payment.payment_id,
            "last_failure_code": payment.failure_code,
        }
        if payment.failure_code == AUTHENTICATION_REQUIRED:
            _save(ledger, plan, now, status=PlanStatus.PAUSED, status_reason=AUTHENTICATION_REQUIRED, **failed)
            return "paused"
        if attempts >= MAX_ATTEMPTS:
            _save(ledger, plan, now, status=PlanStatus.PAUSED, status_reason="installment_failed", **failed)
            logger.warning("plan paused after failed installments", extra={"plan_id": plan.plan_id})
            return "paused"
        _save(ledger, plan, now, next_due_at=now + RETRY_DELAY, **failed)
        return "failed"
    return "pending"  # not answered yet: the next run replays the same key and reads the outcome


def reopen_after_return(ledger: Ledger, payment: Payment, now: datetime) -> PaymentPlan | None:
    """A plan's eCheck installment the bank returned after the plan counted it (processing counts):
    the plan takes the amount back off what it collected and is active again, even if that debit
    had completed it; its next run, a day later (or its next due date if sooner), charges again and
    the last installment takes whatever is left, so the plan still collects the whole balance. A
    return that retired the method stops the plan at that run (``method_unusable``). Idempotent:
    the webhook and the sweep may both get here. See docs/decisions.md."""
    if payment.origin != "plan" or payment.status is not PaymentStatus.FAILED or payment.return_code is None:
        return None
    plan = _plan_of(ledger, payment)
    if plan is None or payment.payment_id in plan.returned_payment_ids:
        return None
    retry_at = now + RETRY_DELAY
    changes: dict[str, Any] = {
        "charged_minor": max(plan.charged_minor - payment.amount_minor, 0),
        "returned_payment_ids": [*plan.returned_payment_ids, payment.payment_id],
        "last_payment_id": payment.payment_id,
        "last_failure_code": payment.return_code,
    }
    if plan.status is PlanStatus.COMPLETED:
        changes |= {"status": PlanStatus.ACTIVE, "status_reason": "debit_returned", "next_due_at": retry_at}
    elif plan.status is PlanStatus.ACTIVE:
        changes |= {"status_reason": "debit_returned", "next_due_at": min(plan.next_due_at, retry_at)}
    logger.info("plan installment returned", extra={"plan_id": plan.plan_id, "return_code": payment.return_code})
    return _save(ledger, plan, now, **changes)


def _plan_of(ledger: Ledger, payment: Payment) -> PaymentPlan | None:
    """The plan of the payable that debits this payment's bank account (the newest, if several)."""
    for plan in reversed(ledger.list_plans(payment.payable_id)):
        if plan.status is PlanStatus.CANCELED:
            continue
        method = ledger.get_method(plan.firm_id, plan.client_id, plan.method_id)
        if method is not None and method.processor_method_id == payment.processor_method_id:
            return plan
    return None


def _payment_of_key(ledger: Ledger, firm_id: str, key: str) -> Payment | None:
    """The payment an installment's idempotency key already made (None: the key is unused)."""
    record = ledger.get_idempotency(firm_id, key)
    return ledger.get_payment(record.payable_id, record.payment_id) if record else None


def _save(ledger: Ledger, plan: PaymentPlan, now: datetime, **changes: Any) -> PaymentPlan:
    """Apply ``changes`` to the plan as it is now. A firm's pause or cancel that landed meanwhile
    wins over the run's status change; the installment bookkeeping is kept either way."""
    for _ in range(5):
        updated = ledger.update_plan(plan, updated_at=now, **changes)
        if updated is not None:
            return updated
        current = ledger.get_plan(plan.payable_id, plan.plan_id)
        if current is None:
            raise NotFound("No such payment plan.")
        if current.status is not PlanStatus.ACTIVE and changes.get("status") is not PlanStatus.COMPLETED:
            changes = {k: v for k, v in changes.items() if k not in ("status", "status_reason")}
        plan = current
    raise ServiceUnavailable()
