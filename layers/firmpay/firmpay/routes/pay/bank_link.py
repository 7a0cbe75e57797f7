"""The eCheck bank sign-in (US firms): a Plaid Link token, then the public-token exchange."""

from __future__ import annotations

from firmpay.api import make_router
from firmpay.gateways.kms import KmsVault
from firmpay.gateways.stripe_gateway import StripeGateway
from firmpay.models.echeck import BankConnectionResponse, ExchangeRequest, LinkTokenRequest, LinkTokenResponse
from firmpay.payments import echeck
from firmpay.payments.links import resolve_link
from firmpay.routes.shared import bank_linker, ledger, now

router = make_router()


@router.post("/api/pay/<token>/echeck/link-token")
def create_link_token(token: str, request: LinkTokenRequest) -> LinkTokenResponse:
    context = resolve_link(ledger(), token, now())
    echeck.ensure_echeck_offered(context.firm)
    link = echeck.start_bank_link(bank_linker(), context.firm, context.client.client_id)
    return LinkTokenResponse(link_token=link.link_token, expiration=str(link.expiration))


@router.post("/api/pay/<token>/echeck/exchange")
def exchange_public_token(token: str, request: ExchangeRequest) -> BankConnectionResponse:
    at = now()
    context = resolve_link(ledger(), token, at)
    echeck.ensure_echeck_offered(context.firm)
    connection = echeck.connect_bank_account(
        ledger(),
        bank_linker(),
        StripeGateway(),
        KmsVault(),
        context,
        request.public_token,
        request.account_id,
        request.holder_name,
        at,
    )
    return BankConnectionResponse(
        connection_id=connection.connection_id,
        bank_name=connection.bank_name,
        last4=connection.last4,
        account_subtype=connection.account_subtype,
        label=f"{connection.bank_name} \u2022\u2022\u2022\u2022{connection.last4}",
    )
