"""The payment methods a client stored (with consent, on the pay page): list and revoke."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from firmpay.api import make_router
from firmpay.models.api import StoredMethodsOut
from firmpay.payments import firm_admin as admin
from firmpay.payments.method_removal import plaid_item_remover
from firmpay.routes.firm.access import ACCESS, FIRM, authorized_firm, ledger

router = make_router()


@router.get(
    f"{FIRM}/clients/<client_id>/methods",
    tags=["firm"],
    summary="List the payment methods a client stored",
    description=f"{ACCESS} 404 `not_found` for an unknown client.",
)
def list_methods(firm_id: str, client_id: str) -> StoredMethodsOut:
    return admin.list_methods(ledger(), authorized_firm(router, firm_id), client_id)


@router.delete(
    f"{FIRM}/clients/<client_id>/methods/<method_id>",
    status_code=204,
    tags=["firm"],
    summary="Revoke a stored payment method (never charged again)",
    description=f"{ACCESS} 404 `not_found` for an unknown client or method. Revoking twice is harmless.",
)
def revoke_method(firm_id: str, client_id: str, method_id: str) -> Response[None]:
    from firmpay.gateways.stripe_gateway import StripeGateway  # stripe is loaded by the first revoke only

    method = admin.method_of(ledger(), authorized_firm(router, firm_id), client_id, method_id)
    admin.revoke_method(ledger(), StripeGateway(), method, plaid_item_remover())
    return Response(204, None, None)
