"""Plaid behind ``BankLinker``: the only module that imports plaid-python (~70 MB, ~150 ms).

Only the eCheck functions carry the Plaid layer, and they import this module lazily.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from firmpay.config import get_settings
from firmpay.observability import outbound_call
from firmpay.payments.ports import BankAccount, BankLinkError, LinkToken
from firmpay.secrets import get_secret

if TYPE_CHECKING:
    from plaid.api.plaid_api import PlaidApi
    from plaid.api_client import ApiClient


def plaid_api() -> PlaidApi:
    """The client for the current credentials: rotated ones are used within the secrets' max age."""
    return _plaid_api_for(get_secret(get_settings().plaid_credentials_param))


@lru_cache(maxsize=2)
def _plaid_api_for(credentials_json: str) -> PlaidApi:
    import plaid
    from plaid.api import plaid_api as api

    settings = get_settings()
    credentials = json.loads(credentials_json)
    configuration = plaid.Configuration(
        host=settings.plaid_base_url,
        api_key={"clientId": credentials["client_id"], "secret": credentials["secret"]},
    )
    return api.PlaidApi(_traced_api_client(plaid.ApiClient)(configuration))


@lru_cache(maxsize=1)
def _traced_api_client(base: type[ApiClient]) -> type[ApiClient]:
    """plaid-python's ApiClient with each call in an X-Ray subsegment (``observability.outbound_call``):
    X-Ray patches no urllib3, which plaid-python talks through."""

    class TracedApiClient(base):  # type: ignore[misc]
        def call_api(self, resource_path: str, method: str, *args: Any, **kwargs: Any) -> Any:
            with outbound_call(method, f"{self.configuration.host}{resource_path}"):
                return super().call_api(resource_path, method, *args, **kwargs)

    return TracedApiClient


def _plaid_error(error: Exception) -> BankLinkError:
    body: dict[str, Any] = {}
    raw = getattr(error, "body", None)
    if raw:
        try:
            body = json.loads(raw)
        except (TypeError, ValueError):
            body = {}
    status = int(getattr(error, "status", 0) or 0)
    return BankLinkError(
        code=str(body.get("error_code") or "PLAID_ERROR"),
        error_type=str(body.get("error_type") or "API_ERROR"),
        retryable=status >= 500 or status == 0 or body.get("error_type") in ("API_ERROR", "RATE_LIMIT_EXCEEDED"),
    )


class PlaidGateway:
    """``BankLinker`` on the Plaid API (or the local emulator: same SDK, other host)."""

    def __init__(self, api: PlaidApi | None = None) -> None:
        self._api = api

    @property
    def api(self) -> PlaidApi:
        return self._api or plaid_api()

    def _call(self, fn: Any, request: Any) -> Any:
        import plaid
        import urllib3

        try:
            return fn(request, _request_timeout=(2.0, get_settings().outbound_timeout_seconds))
        except plaid.ApiException as error:
            raise _plaid_error(error) from error
        except (OSError, urllib3.exceptions.HTTPError, plaid.ApiTypeError, plaid.ApiValueError) as error:
            raise BankLinkError(code="PLAID_UNAVAILABLE", error_type="API_ERROR", retryable=True) from error

    def create_link_token(self, client_user_id: str, client_name: str, language: str) -> LinkToken:
        from plaid.model.country_code import CountryCode
        from plaid.model.link_token_create_request import LinkTokenCreateRequest
        from plaid.model.link_token_create_request_user import LinkTokenCreateRequestUser
        from plaid.model.products import Products

        request = LinkTokenCreateRequest(
            client_name=client_name[:30],
            language=language,
            country_codes=[CountryCode("US")],
            products=[Products("auth")],
            user=LinkTokenCreateRequestUser(client_user_id=client_user_id),
        )
        answer = self._call(self.api.link_token_create, request)
        return LinkToken(link_token=answer.link_token, expiration=answer.expiration)

    def exchange_public_token(self, public_token: str) -> str:
        from plaid.model.item_public_token_exchange_request import ItemPublicTokenExchangeRequest

        answer = self._call(
            self.api.item_public_token_exchange, ItemPublicTokenExchangeRequest(public_token=public_token)
        )
        return str(answer.access_token)

    def account(self, access_token: str, account_id: str) -> BankAccount | None:
        from plaid.model.accounts_get_request import AccountsGetRequest
        from plaid.model.country_code import CountryCode
        from plaid.model.institutions_get_by_id_request import InstitutionsGetByIdRequest

        answer = self._call(self.api.accounts_get, AccountsGetRequest(access_token=access_token))
        chosen = next((a for a in answer.accounts if a.account_id == account_id), None)
        if chosen is None:
            return None
        institution_name = "Your bank"
        institution_id = answer.item.get("institution_id")
        if institution_id:
            institution = self._call(
                self.api.institutions_get_by_id,
                InstitutionsGetByIdRequest(institution_id=institution_id, country_codes=[CountryCode("US")]),
            )
            institution_name = str(institution.institution.name)
        return BankAccount(
            account_id=str(chosen.account_id),
            name=str(chosen.name),
            mask=str(chosen.mask or ""),
            type=str(chosen.type),
            subtype=str(chosen.subtype) if chosen.subtype is not None else "",
            institution_name=institution_name,
            verification_status=str(chosen.get("verification_status") or "") or None,
        )

    def stripe_bank_account_token(self, access_token: str, account_id: str) -> str:
        from plaid.model.processor_stripe_bank_account_token_create_request import (
            ProcessorStripeBankAccountTokenCreateRequest,
        )

        answer = self._call(
            self.api.processor_stripe_bank_account_token_create,
            ProcessorStripeBankAccountTokenCreateRequest(access_token=access_token, account_id=account_id),
        )
        return str(answer.stripe_bank_account_token)

    def remove_item(self, access_token: str) -> None:
        from plaid.model.item_remove_request import ItemRemoveRequest

        self._call(self.api.item_remove, ItemRemoveRequest(access_token=access_token))
