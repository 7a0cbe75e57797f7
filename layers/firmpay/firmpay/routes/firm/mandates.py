"""The eCheck debit authorization (NACHA WEB mandate) stored with a payment, as JSON or printable."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from firmpay.api import base_path, html_response, make_router
from firmpay.models.echeck import MandateOut
from firmpay.payments.mandates import mandate_of
from firmpay.routes.firm.access import ACCESS, PAYABLE, authorized_firm, ledger

router = make_router()


@router.get(
    f"{PAYABLE}/payments/<payment_id>/mandate",
    tags=["firm"],
    summary="The eCheck debit authorization of a payment (JSON)",
    description=ACCESS + " 404 `not_found` also for a payment without one (a card payment).",
)
def get_mandate(firm_id: str, payable_id: str, payment_id: str) -> MandateOut:
    return mandate_of(ledger(), authorized_firm(router, firm_id), payable_id, payment_id)


@router.get(
    f"{PAYABLE}/payments/<payment_id>/mandate/print",
    tags=["firm"],
    summary="The eCheck debit authorization of a payment, as a printable page",
    description=ACCESS,
)
def print_mandate(firm_id: str, payable_id: str, payment_id: str) -> Response[str]:
    from firmpay.web.pages import render_mandate  # the page code only loads on this route

    mandate = mandate_of(ledger(), authorized_firm(router, firm_id), payable_id, payment_id)
    return html_response(200, render_mandate(mandate, base_path(router.current_event.raw_event)))
