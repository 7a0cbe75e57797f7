"""firm_api: the IAM-authorized firm API (firms, clients, bills, trust requests, pay links)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.api import JSON, caller_arn, json_response, make_resolver, security_headers
from firmpay.config import get_settings
from firmpay.errors import NotFound
from firmpay.ledger import Ledger, default_ledger
from firmpay.models.api import (
    CreateBillRequest,
    CreateClientRequest,
    CreateFirmRequest,
    CreateTrustRequestRequest,
    IssueLinkRequest,
    LinkOut,
    PayableOut,
)
from firmpay.models.ledger import Client, Firm
from firmpay.observability import logger
from firmpay.payments import firm_admin as admin

app = make_resolver()


# Built once per container, at init (Lambda's init phase runs at full CPU).
_LEDGER = default_ledger()


def _ledger() -> Ledger:
    return _LEDGER


def _firm(firm_id: str) -> Firm:
    return admin.firm_for(_ledger(), firm_id, caller_arn(app))


def _created[M](model: M) -> Response[M]:
    return Response(201, JSON, model, security_headers())


@app.post("/firm/firms")
def create_firm(request: CreateFirmRequest) -> Response[Firm]:
    return _created(admin.create_firm(_ledger(), request, caller_arn(app), datetime.now(UTC)))


@app.get("/firm/firms/<firm_id>")
def get_firm(firm_id: str) -> Firm:
    return _firm(firm_id)


@app.post("/firm/firms/<firm_id>/clients")
def create_client(firm_id: str, request: CreateClientRequest) -> Response[Client]:
    return _created(admin.create_client(_ledger(), _firm(firm_id), request, datetime.now(UTC)))


@app.get("/firm/firms/<firm_id>/clients/<client_id>")
def get_client(firm_id: str, client_id: str) -> Client:
    return admin.client_of(_ledger(), _firm(firm_id), client_id)


@app.post("/firm/firms/<firm_id>/bills")
def create_bill(firm_id: str, request: CreateBillRequest) -> Response[PayableOut]:
    payable = admin.create_bill(_ledger(), _firm(firm_id), request, datetime.now(UTC))
    return _created(admin.payable_out(payable))


@app.post("/firm/firms/<firm_id>/trust-requests")
def create_trust_request(firm_id: str, request: CreateTrustRequestRequest) -> Response[PayableOut]:
    payable = admin.create_trust_request(_ledger(), _firm(firm_id), request, datetime.now(UTC))
    return _created(admin.payable_out(payable))


@app.get("/firm/firms/<firm_id>/payables/<payable_id>")
def get_payable(firm_id: str, payable_id: str) -> PayableOut:
    return admin.payable_out(*admin.payable_of(_ledger(), _firm(firm_id), payable_id))


@app.post("/firm/firms/<firm_id>/payables/<payable_id>/void")
def void_payable(firm_id: str, payable_id: str) -> PayableOut:
    payable, _ = admin.payable_of(_ledger(), _firm(firm_id), payable_id)
    return admin.payable_out(_ledger().void_payable(payable.payable_id, datetime.now(UTC)))


@app.post("/firm/firms/<firm_id>/payables/<payable_id>/links")
def issue_link(firm_id: str, payable_id: str, request: IssueLinkRequest) -> Response[LinkOut]:
    payable, _ = admin.payable_of(_ledger(), _firm(firm_id), payable_id)
    settings = get_settings()
    days = request.expires_in_days or settings.pay_link_days
    return _created(admin.issue_link(_ledger(), payable, settings.public_base_url, datetime.now(UTC), days))


@app.post("/firm/firms/<firm_id>/payables/<payable_id>/links/revoke")
def revoke_link(firm_id: str, payable_id: str) -> Response[str]:
    payable, _ = admin.payable_of(_ledger(), _firm(firm_id), payable_id)
    if not _ledger().revoke_current_link(payable, datetime.now(UTC)):
        raise NotFound("This payable has no active pay link.")
    return json_response(200, {"code": "link_revoked", "message": "The pay link no longer works."})


@app.post("/firm/firms/<firm_id>/payables/<payable_id>/send")
def send_payable(firm_id: str, payable_id: str) -> LinkOut:
    from firmpay.emails.mailer import SesMailer

    firm = _firm(firm_id)
    payable, _ = admin.payable_of(_ledger(), firm, payable_id)
    settings = get_settings()
    return admin.send_to_client(
        _ledger(), SesMailer(), firm, payable, settings.public_base_url, datetime.now(UTC), settings.pay_link_days
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
