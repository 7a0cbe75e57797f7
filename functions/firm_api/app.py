"""firm_api: the IAM-authorized firm API (firms, clients, bills, trust requests, pay links).

A thin adapter: Powertools validates the request against the models (which also make the OpenAPI
document), ``firmpay.payments.firm_admin`` does the work and decides who may do it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import base_path, caller_arn, html_response, make_resolver
from firmpay.config import get_settings
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.api import (
    ClientOut,
    CreateBillRequest,
    CreateClientRequest,
    CreateFirmRequest,
    CreatePlanRequest,
    CreateRefundRequest,
    CreateTrustRequestRequest,
    FirmOut,
    IssueLinkRequest,
    LinkOut,
    PayableOut,
    PlanOut,
    PlansOut,
    RefundIdempotencyKey,
    RefundOut,
    StoredMethodsOut,
)
from firmpay.models.echeck import MandateOut
from firmpay.models.ledger import Firm
from firmpay.observability import logger
from firmpay.payments import firm_admin as admin
from firmpay.payments import plans, refunds
from firmpay.payments.mandates import mandate_of
from firmpay.payments.method_removal import plaid_item_remover

app = make_resolver()
FIRM = "/firm/firms/<firm_id>"
PAYABLE = f"{FIRM}/payables/<payable_id>"
ACCESS = "403 `forbidden` if the caller is not a principal of the firm, 404 `not_found` for an unknown firm."


@lru_cache(maxsize=1)
def _ledger() -> Ledger:
    return default_ledger()


def _firm(firm_id: str) -> Firm:
    return admin.authorized_firm(_ledger(), firm_id, caller_arn(app))


def _now() -> datetime:
    return datetime.now(UTC)


@app.post("/firm/firms", status_code=201, tags=["firm"], summary="Create a firm managed by the caller")
def create_firm(request: CreateFirmRequest) -> FirmOut:
    return admin.create_firm(_ledger(), request, caller_arn(app), _now())


@app.get(FIRM, tags=["firm"], summary="Read a firm", description=ACCESS)
def get_firm(firm_id: str) -> FirmOut:
    return FirmOut.of(_firm(firm_id))


@app.post(f"{FIRM}/clients", status_code=201, tags=["firm"], summary="Add a client", description=ACCESS)
def create_client(firm_id: str, request: CreateClientRequest) -> ClientOut:
    return admin.create_client(_ledger(), _firm(firm_id), request, _now())


@app.get(f"{FIRM}/clients/<client_id>", tags=["firm"], summary="Read a client", description=ACCESS)
def get_client(firm_id: str, client_id: str) -> ClientOut:
    return admin.get_client(_ledger(), _firm(firm_id), client_id)


@app.get(
    f"{FIRM}/clients/<client_id>/methods",
    tags=["firm"],
    summary="List the payment methods a client stored",
    description=f"{ACCESS} 404 `not_found` for an unknown client.",
)
def list_methods(firm_id: str, client_id: str) -> StoredMethodsOut:
    return admin.list_methods(_ledger(), _firm(firm_id), client_id)


@app.delete(
    f"{FIRM}/clients/<client_id>/methods/<method_id>",
    status_code=204,
    tags=["firm"],
    summary="Revoke a stored payment method (never charged again)",
    description=f"{ACCESS} 404 `not_found` for an unknown client or method. Revoking twice is harmless.",
)
def revoke_method(firm_id: str, client_id: str, method_id: str) -> Response[None]:
    from firmpay.gateways.stripe_gateway import StripeGateway  # stripe is loaded by the first revoke only

    method = admin.method_of(_ledger(), _firm(firm_id), client_id, method_id)
    admin.revoke_method(_ledger(), StripeGateway(), method, plaid_item_remover())
    return Response(204, None, None)


@app.post(f"{FIRM}/bills", status_code=201, tags=["firm"], summary="Create a bill", description=ACCESS)
def create_bill(firm_id: str, request: CreateBillRequest) -> PayableOut:
    return admin.create_bill(_ledger(), _firm(firm_id), request, _now())


@app.post(
    f"{FIRM}/trust-requests", status_code=201, tags=["firm"], summary="Create a trust request", description=ACCESS
)
def create_trust_request(firm_id: str, request: CreateTrustRequestRequest) -> PayableOut:
    return admin.create_trust_request(_ledger(), _firm(firm_id), request, _now())


@app.get(PAYABLE, tags=["firm"], summary="Read a bill or trust request with its payments", description=ACCESS)
def get_payable(firm_id: str, payable_id: str) -> PayableOut:
    return admin.get_payable(_ledger(), _firm(firm_id), payable_id)


@app.post(f"{PAYABLE}/void", tags=["firm"], summary="Void a bill or trust request", description=ACCESS)
def void_payable(firm_id: str, payable_id: str) -> PayableOut:
    return admin.void_payable(_ledger(), _firm(firm_id), payable_id, _now())


@app.post(f"{PAYABLE}/links", status_code=201, tags=["firm"], summary="Issue a pay link", description=ACCESS)
def issue_link(firm_id: str, payable_id: str, request: Annotated[IssueLinkRequest | None, Body()] = None) -> LinkOut:
    settings = get_settings()
    days = (request.expires_in_days if request else None) or settings.pay_link_days
    return admin.issue_link(_ledger(), _firm(firm_id), payable_id, settings.public_base_url, _now(), days)


@app.delete(
    f"{PAYABLE}/links/current", status_code=204, tags=["firm"], summary="Revoke the pay link", description=ACCESS
)
def delete_link(firm_id: str, payable_id: str) -> Response[None]:
    admin.revoke_link(_ledger(), _firm(firm_id), payable_id, _now())
    return Response(204, None, None)


@app.post(f"{PAYABLE}/links/revoke", tags=["firm"], summary="Revoke the pay link (POST form)", description=ACCESS)
def revoke_link(firm_id: str, payable_id: str) -> PayableOut:
    return admin.revoke_link(_ledger(), _firm(firm_id), payable_id, _now())


@app.get(
    f"{PAYABLE}/payments/<payment_id>/mandate",
    tags=["firm"],
    summary="The eCheck debit authorization of a payment (JSON)",
    description=ACCESS + " 404 `not_found` also for a payment without one (a card payment).",
)
def get_mandate(firm_id: str, payable_id: str, payment_id: str) -> MandateOut:
    return mandate_of(_ledger(), _firm(firm_id), payable_id, payment_id)


@app.get(
    f"{PAYABLE}/payments/<payment_id>/mandate/print",
    tags=["firm"],
    summary="The eCheck debit authorization of a payment, as a printable page",
    description=ACCESS,
    response_description="text/html",
)
def print_mandate(firm_id: str, payable_id: str, payment_id: str) -> Response[str]:
    from firmpay.web.pages import render_mandate  # the page code only loads on this route, as before

    mandate = mandate_of(_ledger(), _firm(firm_id), payable_id, payment_id)
    return html_response(200, render_mandate(mandate, base_path(app.current_event.raw_event)))


@app.post(
    f"{PAYABLE}/payments/<payment_id>/refunds",
    status_code=201,
    tags=["firm"],
    summary="Refund a payment in full or in part",
    description=f"{ACCESS} 404 `not_found` for an unknown payment; 409 `payment_not_refundable` unless it "
    "succeeded (an eCheck once settled); 422 `refund_exceeds_payment` past what is left to refund; 409 "
    "`idempotency_key_reused` for a key already used with another request. A retry with the same key answers "
    "the same refund and never refunds twice.",
)
def refund_payment(
    firm_id: str,
    payable_id: str,
    payment_id: str,
    request: CreateRefundRequest,
    idempotency_key: Annotated[RefundIdempotencyKey | None, Header()] = None,
) -> RefundOut:
    from firmpay.gateways.stripe_gateway import StripeGateway  # stripe is loaded by refunds only

    firm = _firm(firm_id)
    key = refunds.idempotency_key_of(request, idempotency_key)
    refund = refunds.refund_payment(_ledger(), StripeGateway(), firm, payable_id, payment_id, request, key, _now())
    return RefundOut.of(refund)


@app.post(
    f"{PAYABLE}/plans",
    status_code=201,
    tags=["plans"],
    summary="Create a payment plan on a stored method",
    description=f"{ACCESS} 409 `payable_closed` for a void or paid payable, 409 `conflict` when it already has a "
    "running plan; the method refusals of autopay (`method_unusable`, `method_without_consent`, `not_found`).",
)
def create_plan(firm_id: str, payable_id: str, request: CreatePlanRequest) -> PlanOut:
    return plans.create_plan(_ledger(), _firm(firm_id), payable_id, request, _now())


@app.get(f"{PAYABLE}/plans", tags=["plans"], summary="List the payable's payment plans", description=ACCESS)
def list_plans(firm_id: str, payable_id: str) -> PlansOut:
    return plans.list_plans(_ledger(), _firm(firm_id), payable_id)


@app.post(f"{PAYABLE}/plans/<plan_id>/pause", tags=["plans"], summary="Pause a payment plan", description=ACCESS)
def pause_plan(firm_id: str, payable_id: str, plan_id: str) -> PlanOut:
    return plans.pause_plan(_ledger(), _firm(firm_id), payable_id, plan_id, _now())


@app.post(f"{PAYABLE}/plans/<plan_id>/resume", tags=["plans"], summary="Resume a paused plan", description=ACCESS)
def resume_plan(firm_id: str, payable_id: str, plan_id: str) -> PlanOut:
    return plans.resume_plan(_ledger(), _firm(firm_id), payable_id, plan_id, _now())


@app.post(f"{PAYABLE}/plans/<plan_id>/cancel", tags=["plans"], summary="Cancel a payment plan", description=ACCESS)
def cancel_plan(firm_id: str, payable_id: str, plan_id: str) -> PlanOut:
    return plans.cancel_plan(_ledger(), _firm(firm_id), payable_id, plan_id, _now())


@app.post(f"{PAYABLE}/send", tags=["firm"], summary="Email the payable with a new pay link", description=ACCESS)
def send_payable(firm_id: str, payable_id: str) -> LinkOut:
    from firmpay.emails.mailer import SesMailer  # SES is loaded by the first send only

    settings = get_settings()
    firm = _firm(firm_id)
    days = settings.pay_link_days
    return admin.send_payable(_ledger(), SesMailer(), firm, payable_id, settings.public_base_url, _now(), days)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
