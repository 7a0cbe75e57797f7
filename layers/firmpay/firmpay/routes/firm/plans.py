"""Payment plans on a stored method: create, list, pause, resume, cancel."""

from __future__ import annotations

from firmpay.api import make_router
from firmpay.models.api import CreatePlanRequest, PlanOut, PlansOut
from firmpay.payments import plans
from firmpay.routes.firm.access import ACCESS, PAYABLE, authorized_firm, ledger, now

router = make_router()


@router.post(
    f"{PAYABLE}/plans",
    status_code=201,
    tags=["plans"],
    summary="Create a payment plan on a stored method",
    description=f"{ACCESS} 409 `payable_closed` for a void or paid payable, 409 `conflict` when it already has a "
    "running plan; the method refusals of autopay (`method_unusable`, `method_without_consent`, `not_found`).",
)
def create_plan(firm_id: str, payable_id: str, request: CreatePlanRequest) -> PlanOut:
    return plans.create_plan(ledger(), authorized_firm(router, firm_id), payable_id, request, now())


@router.get(f"{PAYABLE}/plans", tags=["plans"], summary="List the payable's payment plans", description=ACCESS)
def list_plans(firm_id: str, payable_id: str) -> PlansOut:
    return plans.list_plans(ledger(), authorized_firm(router, firm_id), payable_id)


@router.post(f"{PAYABLE}/plans/<plan_id>/pause", tags=["plans"], summary="Pause a payment plan", description=ACCESS)
def pause_plan(firm_id: str, payable_id: str, plan_id: str) -> PlanOut:
    return plans.pause_plan(ledger(), authorized_firm(router, firm_id), payable_id, plan_id, now())


@router.post(f"{PAYABLE}/plans/<plan_id>/resume", tags=["plans"], summary="Resume a paused plan", description=ACCESS)
def resume_plan(firm_id: str, payable_id: str, plan_id: str) -> PlanOut:
    return plans.resume_plan(ledger(), authorized_firm(router, firm_id), payable_id, plan_id, now())


@router.post(f"{PAYABLE}/plans/<plan_id>/cancel", tags=["plans"], summary="Cancel a payment plan", description=ACCESS)
def cancel_plan(firm_id: str, payable_id: str, plan_id: str) -> PlanOut:
    return plans.cancel_plan(ledger(), authorized_firm(router, firm_id), payable_id, plan_id, now())
