"""ACH debits (``us_bank_account``) with Plaid-made bank accounts, as Stripe documents them.

localstripe has no ACH: it refuses ``btok_`` tokens, ``ba_`` payment methods and mandates. This
module adds, on localstripe's own objects (its store, ``Charge``, ``PaymentIntent``, ``Event``):

- ``POST /v1/tokens`` with ``bank_account[...]``: a ``btok_`` token whose ``bank_account`` (``ba_``,
  status ``new``) carries the bank name registered for its routing number (test hook
  ``POST /_test/bank_names`` ``{routing_number, bank_name}``, default "STRIPE TEST BANK").
- ``POST /v1/customers/{cus}/sources`` ``source=btok_...``: the bank account attached, ``verified``
  (Plaid verified it); ``GET`` and ``DELETE /v1/customers/{cus}/sources/{ba}``.
- PaymentIntents with ``payment_method_types[]=us_bank_account`` and ``payment_method=ba_...``:
  confirmation needs ``mandate_data`` (online acceptance: IP and user agent), an active
  ``mandate``, or an active multi-use mandate of that account; it leaves the intent
  ``processing`` with a pending charge and emits ``payment_intent.processing``.
  ``GET /v1/mandates/{id}``.
- Test controls (not Stripe's API): ``POST /_test/payment_intents/{id}/settle`` (succeeded, fee
  0.8% capped at $5) and ``POST /_test/payment_intents/{id}/return`` ``code=R01|R02|...`` (the
  ACH return as Stripe reports it; accounts that can never be debited again become ``errored``).
"""

from __future__ import annotations

import json
import re
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web
from localstripe import resources as r
from localstripe import server
from localstripe.errors import UserError, json_response
from localstripe.webhooks import schedule_webhook

DEFAULT_BANK_NAME = "STRIPE TEST BANK"
BANK_NAMES: dict[str, str] = {}

# An ACH return as Stripe reports it: the raw NACHA code in ``network_decline_code`` and Stripe's
# decline code in ``decline_code`` (Stripe docs, "Network decline codes", table "Payment method - ACH
# Direct Debit": R01/R09 insufficient_funds, R02 bank_account_closed, R03/R04
# bank_account_invalid_details, R05/R07/R08/R10/R11/R29/R31 debit_not_authorized; R16 and R20 are
# the network codes of bank_account_frozen and bank_account_restricted, as the PaymentMethod's
# us_bank_account.status_details.blocked lists them). NACHA return code -> (decline code, message).
RETURNS = {
    "R01": ("insufficient_funds", "The customer's account has insufficient funds to cover this payment."),
    "R02": ("bank_account_closed", "The customer's bank account has been closed."),
    "R03": ("bank_account_invalid_details", "The customer's bank account could not be located."),
    "R04": ("bank_account_invalid_details", "The customer's bank account number is invalid."),
    "R05": ("debit_not_authorized", "The customer's bank reported this debit as unauthorized."),
    "R07": ("debit_not_authorized", "The customer revoked the authorization for this debit."),
    "R08": ("debit_not_authorized", "The customer stopped this payment."),
    "R09": ("insufficient_funds", "The customer's account has insufficient collected funds to cover this payment."),
    "R10": ("debit_not_authorized", "The customer has notified their bank that this payment was unauthorized."),
    "R11": (
        "debit_not_authorized",
        "The customer's bank reported this debit as not in accordance with the authorization.",
    ),
    "R16": ("bank_account_frozen", "The customer's bank account has been frozen."),
    "R20": ("bank_account_restricted", "The customer's bank account does not allow debits."),
    "R29": ("debit_not_authorized", "The customer's bank does not allow this debit for this account."),
    "R31": ("debit_not_authorized", "The customer's bank reported this debit as unauthorized."),
}
# Stripe's error code for a debit the bank declined (error codes: payment_method_provider_decline).
PROVIDER_DECLINE = "payment_method_provider_decline"
ACCOUNT_GONE = frozenset({"R02", "R03", "R04", "R05", "R07", "R10", "R16", "R20", "R29", "R31"})
ACH_FEE_RATE = Decimal("0.008")
ACH_FEE_CAP = 500
_CONFIRM_PARAMS = frozenset(
    {"mandate_data", "mandate", "off_session", "setup_future_usage", "return_url", "receipt_email", "payment_method"}
)


def invalid(message: str, code: str | None = None, param: str | None = None, status: int = 400) -> UserError:
    """Stripe's error shape: ``{"error": {"type": "invalid_request_error", "code", "param", "message"}}``."""
    contents = {k: v for k, v in (("code", code), ("param", param)) if v is not None}
    return UserError(status, message, contents)


def aba_checksum_ok(routing_number: str) -> bool:
    if len(routing_number) != 9 or not routing_number.isdigit():
        return False
    d = [int(c) for c in routing_number]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def ach_fee(amount: int) -> int:
    """Stripe's ACH Direct Debit pricing: 0.8%, capped at $5.00."""
    return min(int((Decimal(amount) * ACH_FEE_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP)), ACH_FEE_CAP)


class BankAccount(r.StripeObject):  # type: ignore[misc]
    """A US bank account (``ba_``): a customer source, and a PaymentMethod id for ``us_bank_account``."""

    object = "bank_account"
    _id_prefix = "ba_"

    def __init__(
        self,
        country: Any = None,
        currency: Any = None,
        routing_number: Any = None,
        account_number: Any = None,
        account_holder_name: Any = None,
        account_holder_type: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise invalid("Received unknown parameter: bank_account[" + ", ".join(kwargs) + "]")
        if country != "US" or str(currency).lower() != "usd":
            raise invalid(
                "Only US bank accounts in usd are supported.", "invalid_bank_account", "bank_account[country]"
            )
        if not isinstance(routing_number, str) or not aba_checksum_ok(routing_number):
            raise invalid(
                f"Routing number {routing_number} is invalid.", "routing_number_invalid", "bank_account[routing_number]"
            )
        if not isinstance(account_number, str) or not re.fullmatch(r"\d{4,17}", account_number):
            raise invalid("Account number is invalid.", "account_number_invalid", "bank_account[account_number]")
        if account_holder_type not in (None, "individual", "company"):
            raise invalid(
                "Invalid account_holder_type: must be one of individual or company.",
                "parameter_invalid",
                "bank_account[account_holder_type]",
            )
        super().__init__()
        self._account_number = account_number
        self._deleted = False
        self.account_holder_name = account_holder_name
        self.account_holder_type = account_holder_type or "individual"
        self.account_type = None
        self.bank_name = BANK_NAMES.get(routing_number, DEFAULT_BANK_NAME)
        self.country = "US"
        self.currency = "usd"
        self.customer = None
        self.fingerprint = r.fingerprint(routing_number + account_number)
        self.last4 = account_number[-4:]
        self.metadata: dict[str, str] = {}
        self.routing_number = routing_number
        self.status = "new"

    # What localstripe asks of any source or payment method.
    def _requires_authentication(self) -> bool:
        return False

    def _attaching_is_declined(self) -> bool:
        return False

    def _charging_is_declined(self) -> bool:
        return False


class BankAccountToken(r.StripeObject):  # type: ignore[misc]
    """``btok_``: a bank account token, usable once (attached to a customer)."""

    object = "token"
    _id_prefix = "btok_"

    def __init__(self, bank_account: Any = None, **kwargs: Any) -> None:
        if kwargs:
            raise invalid("Received unknown parameter: " + ", ".join(kwargs))
        if not isinstance(bank_account, dict):
            raise invalid("Missing required param: bank_account.", "parameter_missing", "bank_account")
        account = BankAccount(**bank_account)
        super().__init__()
        self.type = "bank_account"
        self.bank_account = account
        self.client_ip = None
        self.used = False


class Mandate(r.StripeObject):  # type: ignore[misc]
    """The customer's authorization to debit a bank account (``mandate_``)."""

    object = "mandate"
    _id_prefix = "mandate_"

    def __init__(self, payment_method: str, acceptance: dict[str, Any], multi_use: bool, amount: int, currency: str):
        super().__init__()
        self.customer_acceptance = acceptance
        self.payment_method = payment_method
        self.payment_method_details = {"type": "us_bank_account", "us_bank_account": {"collection_method": None}}
        self.status = "active"
        self.type = "multi_use" if multi_use else "single_use"
        if multi_use:
            self.multi_use: dict[str, Any] = {}
        else:
            self.single_use = {"amount": amount, "currency": currency}


class AchCharge(r.Charge):  # type: ignore[misc]
    """The charge of an ACH debit: ``pending`` until settled or returned."""

    def __init__(self, intent: Any, bank: BankAccount, mandate: Mandate) -> None:
        r.StripeObject.__init__(self)
        self._authorized = True
        self.amount = intent.amount
        self.currency = intent.currency
        self.customer = intent.customer
        self.description = getattr(intent, "description", None)
        self.invoice = None
        self.metadata = dict(intent.metadata or {})
        self.status = "pending"
        self.receipt_email = None
        self.receipt_number = None
        self.payment_intent = intent.id
        self.payment_method = bank.id
        self.payment_method_details = {
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": bank.account_holder_type,
                "account_type": "checking",
                "bank_name": bank.bank_name,
                "fingerprint": bank.fingerprint,
                "last4": bank.last4,
                "mandate": mandate.id,
                "routing_number": bank.routing_number,
            },
        }
        self.statement_descriptor = None
        self.failure_code = None
        self.failure_message = None
        self.outcome: dict[str, Any] | None = None
        self.captured = True
        self.balance_transaction = None

    def _is_async_payment_method(self) -> bool:
        return True


# -- bank accounts: tokens and customer sources ------------------------------------------------------


def _token(token_id: str) -> BankAccountToken:
    token = r.store.get("token:" + token_id)
    if not isinstance(token, BankAccountToken):
        raise invalid(f"No such token: '{token_id}'", "resource_missing", "source")
    return token


def _customer(customer_id: str) -> Any:
    customer = r.store.get("customer:" + customer_id)
    if customer is None:
        raise invalid(f"No such customer: '{customer_id}'", "resource_missing", "id", status=404)
    return customer


def _bank_account(bank_id: Any, customer_id: Any, param: str = "payment_method") -> BankAccount:
    """A live bank account of this customer; Stripe's 400 otherwise."""
    bank = r.store.get("bank_account:" + bank_id) if isinstance(bank_id, str) else None
    if not isinstance(bank, BankAccount) or bank._deleted:
        raise invalid(f"No such PaymentMethod: '{bank_id}'", "resource_missing", param)
    if customer_id is None:
        raise invalid(
            "A bank account source can only be used with the customer it is attached to; pass `customer`.",
            "parameter_missing",
            "customer",
        )
    if bank.customer != customer_id:
        raise invalid(
            f"The bank account {bank_id} does not belong to the customer {customer_id}.", "resource_missing", param
        )
    return bank


def attach_bank_account(customer_id: str, token_id: str) -> BankAccount:
    customer = _customer(customer_id)
    token = _token(token_id)
    if token.used:
        raise invalid(f"You cannot use a Stripe token more than once: {token_id}.", "token_already_used", "source")
    bank = token.bank_account
    for source in customer.sources._list:
        # Stripe's error codes: bank_account_exists, "The bank account provided already exists on the
        # specified Customer object." One account (one fingerprint) is one source per customer.
        if isinstance(source, BankAccount) and not source._deleted and source.fingerprint == bank.fingerprint:
            raise invalid(
                "A bank account with that routing number and account number already exists for this customer.",
                "bank_account_exists",
                "source",
            )
    token.used = True
    bank.customer = customer_id
    bank.status = "verified"  # Plaid-made tokens carry accounts Plaid verified
    customer.sources._list.append(bank)
    if customer.default_source is None:
        customer.default_source = bank.id
    schedule_webhook(r.Event("customer.source.created", bank))
    return bank


def _customer_bank_account(customer_id: str, bank_id: str) -> BankAccount:
    _customer(customer_id)
    bank = r.store.get("bank_account:" + bank_id)
    if not isinstance(bank, BankAccount) or bank._deleted or bank.customer != customer_id:
        raise invalid(f"No such source: '{bank_id}'", "resource_missing", "id", status=404)
    return bank


def delete_bank_account(customer_id: str, bank_id: str) -> Any:
    bank = _customer_bank_account(customer_id, bank_id)
    customer = _customer(customer_id)
    bank._deleted = True
    customer.sources._list.remove(bank)
    if customer.default_source == bank.id:
        customer.default_source = customer.sources._list[0].id if customer.sources._list else None
    schedule_webhook(r.Event("customer.source.deleted", bank))
    return r.DeletedObject(bank.id, "bank_account")


# -- payment intents -----------------------------------------------------------------------------------


def _is_ach(intent: Any) -> bool:
    method = getattr(intent, "payment_method", None)
    return (isinstance(method, str) and method.startswith("ba_")) or "us_bank_account" in (
        getattr(intent, "payment_method_types", None) or ()
    )


def _check_method_types(payment_method: Any, types: Any, currency: Any) -> None:
    if types is not None and (not isinstance(types, list) or not all(isinstance(t, str) for t in types)):
        raise invalid("Invalid array", "parameter_invalid", "payment_method_types")
    types = types or ["card"]
    if isinstance(payment_method, str) and payment_method.startswith("ba_") and "us_bank_account" not in types:
        raise invalid(
            "The PaymentMethod provided (us_bank_account) is not allowed for this PaymentIntent. Please attach a "
            "PaymentMethod of one of the following types: " + ", ".join(types) + ".",
            "payment_intent_incompatible_payment_method",
            "payment_method",
        )
    if "us_bank_account" in types and str(currency).lower() != "usd":
        raise invalid(
            "The currency provided (" + str(currency) + ") is invalid for us_bank_account payments: use usd.",
            "payment_intent_invalid_currency",
            "currency",
        )


def _acceptance(mandate_data: Any) -> dict[str, Any]:
    """``mandate_data[customer_acceptance]`` as Stripe stores it on the Mandate."""
    acceptance = mandate_data.get("customer_acceptance") if isinstance(mandate_data, dict) else None
    if not isinstance(acceptance, dict) or acceptance.get("type") not in ("online", "offline"):
        raise invalid(
            "Missing required param: mandate_data[customer_acceptance][type].",
            "parameter_missing",
            "mandate_data[customer_acceptance][type]",
        )
    accepted = {"accepted_at": int(time.time()), "type": acceptance["type"]}
    if acceptance["type"] == "offline":
        return {**accepted, "offline": {}}
    online = acceptance.get("online")
    for field in ("ip_address", "user_agent"):
        if not isinstance(online, dict) or not online.get(field):
            raise invalid(
                f"Missing required param: mandate_data[customer_acceptance][online][{field}].",
                "parameter_missing",
                f"mandate_data[customer_acceptance][online][{field}]",
            )
    assert isinstance(online, dict)
    return {**accepted, "online": {"ip_address": online["ip_address"], "user_agent": online["user_agent"]}}


def _existing_mandate(mandate_id: Any, intent: Any) -> Mandate:
    mandate = r.store.get("mandate:" + mandate_id) if isinstance(mandate_id, str) else None
    if not isinstance(mandate, Mandate):
        raise invalid(f"No such mandate: '{mandate_id}'", "resource_missing", "mandate")
    if mandate.payment_method != intent.payment_method or mandate.status != "active":
        raise invalid(
            f"The mandate {mandate_id} is not active for the PaymentMethod {intent.payment_method}.",
            "mandate_invalid",
            "mandate",
        )
    return mandate


def _reusable_mandate(intent: Any) -> Mandate | None:
    """Stripe picks the account's active multi-use mandate when none is given."""
    for key, value in r.store.items():
        if (
            key.startswith("mandate:")
            and value.payment_method == intent.payment_method
            and value.status == "active"
            and value.type == "multi_use"
        ):
            return value  # type: ignore[no-any-return]
    return None


def confirm_ach(intent: Any, **params: Any) -> Any:
    """Confirm an ACH intent: a mandate, a pending charge, ``processing``, ``payment_intent.processing``."""
    unknown = set(params) - _CONFIRM_PARAMS
    if unknown:
        raise invalid("Received unknown parameter: " + ", ".join(sorted(unknown)))
    if params.get("payment_method") is not None:
        _check_method_types(params["payment_method"], intent.payment_method_types, intent.currency)
        _bank_account(params["payment_method"], intent.customer)
        intent.payment_method = params["payment_method"]
    if intent.status != "requires_confirmation":
        raise invalid(
            f"You cannot confirm this PaymentIntent because it has a status of {intent.status}.",
            "payment_intent_unexpected_state",
        )
    bank = _bank_account(intent.payment_method, intent.customer)
    if bank.status == "errored":
        raise invalid(
            "This bank account can no longer be debited: a previous debit was returned.",
            "bank_account_unusable",
            "payment_method",
        )
    if params.get("setup_future_usage"):
        intent.setup_future_usage = params["setup_future_usage"]
    if params.get("mandate"):
        mandate = _existing_mandate(params["mandate"], intent)
    elif params.get("mandate_data") is not None:
        mandate = Mandate(
            intent.payment_method,
            _acceptance(params["mandate_data"]),
            bool(getattr(intent, "setup_future_usage", None)),
            intent.amount,
            intent.currency,
        )
    else:
        found = _reusable_mandate(intent)
        if found is None:
            raise invalid(
                "This PaymentIntent requires a mandate, but no existing mandate was found. Collect mandate "
                "acceptance from the customer and try again, providing acceptance data in the mandate_data parameter.",
                param="mandate_data",
            )
        mandate = found
    charge = AchCharge(intent, bank, mandate)  # Stripe names the mandate on the charge, not the intent
    intent.latest_charge = charge
    schedule_webhook(r.Event("payment_intent.processing", intent))
    schedule_webhook(r.Event("charge.pending", charge))
    return intent


def _processing_ach_intent(intent_id: str) -> Any:
    intent = r.store.get("payment_intent:" + intent_id)
    if intent is None:
        raise invalid(f"No such payment_intent: '{intent_id}'", "resource_missing", "id", status=404)
    if not isinstance(intent.latest_charge, AchCharge) or intent.status != "processing":
        raise invalid(
            f"The PaymentIntent {intent_id} is not a processing ACH debit (status {intent.status}).",
            "payment_intent_unexpected_state",
        )
    return intent


def settle(intent_id: str) -> Any:
    """The debit clears: charge and intent succeed, the fee lands on the balance transaction."""
    intent = _processing_ach_intent(intent_id)
    charge = intent.latest_charge
    txn = r.BalanceTransaction(
        amount=charge.amount,
        currency=charge.currency,
        description=charge.description,
        exchange_rate=1.0,
        reporting_category="charge",
        source=charge.id,
        type="charge",
    )
    txn.fee = ach_fee(charge.amount)
    txn.fee_details = [
        {
            "amount": txn.fee,
            "application": None,
            "currency": charge.currency,
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    charge.balance_transaction = txn.id
    charge.status = "succeeded"
    schedule_webhook(r.Event("payment_intent.succeeded", intent))
    schedule_webhook(r.Event("charge.succeeded", charge))
    return intent


def return_debit(intent_id: str, code: Any) -> Any:
    """The bank returns the debit with an ACH return code: the charge fails as Stripe reports it."""
    if code not in RETURNS:
        raise invalid("code must be one of " + ", ".join(RETURNS) + ".", "parameter_invalid", "code")
    intent = _processing_ach_intent(intent_id)
    charge = intent.latest_charge
    charge.status = "failed"
    charge.failure_code, charge.failure_message = RETURNS[code]
    charge.outcome = {
        "network_decline_code": code,
        "network_status": "declined_by_network",
        "reason": charge.failure_code,
        "seller_message": charge.failure_message,
        "type": "issuer_declined",
    }
    if code in ACCOUNT_GONE:
        bank = r.store.get("bank_account:" + charge.payment_method)
        if isinstance(bank, BankAccount):
            bank.status = "errored"
    schedule_webhook(r.Event("payment_intent.payment_failed", intent))
    schedule_webhook(r.Event("charge.failed", charge))
    return intent


# -- wiring into localstripe ---------------------------------------------------------------------------


def _patch_resources() -> None:
    pi = r.PaymentIntent
    if getattr(pi, "_firmpay_ach", False):
        return

    original_token_create = r.Token._api_create.__func__

    def token_create(cls: Any, **data: Any) -> Any:
        if "bank_account" in data:
            return BankAccountToken(**data)
        return original_token_create(cls, **data)

    r.Token._api_create = classmethod(token_create)

    original_retrieve_method = r.PaymentMethod._api_retrieve.__func__

    def retrieve_method(cls: Any, id: str) -> Any:
        if isinstance(id, str) and id.startswith("ba_"):
            bank = r.store.get("bank_account:" + id)
            if not isinstance(bank, BankAccount) or bank._deleted:
                raise invalid(f"No such PaymentMethod: '{id}'", "resource_missing", "payment_method", status=404)
            return bank
        return original_retrieve_method(cls, id)

    r.PaymentMethod._api_retrieve = classmethod(retrieve_method)

    original_add_source = r.Customer._api_add_source.__func__

    def add_source(cls: Any, id: str, source: Any = None, **kwargs: Any) -> Any:
        if isinstance(source, str) and source.startswith("btok_") and not kwargs:
            return attach_bank_account(id, source)
        return original_add_source(cls, id, source=source, **kwargs)

    r.Customer._api_add_source = classmethod(add_source)

    def list_sources(
        cls: Any, id: str, object: Any = None, limit: Any = None, starting_after: Any = None, **kwargs: Any
    ) -> Any:
        # Stripe pages this list (limit, starting_after); localstripe refused both, and filtered by
        # `object` by overwriting the customer's own list.
        if kwargs or object not in (None, "card", "bank_account"):
            raise invalid("Invalid list parameters.", "parameter_invalid", "object")
        customer = _customer(id)
        found = r.List("/v1/customers/" + id + "/sources", limit=limit, starting_after=starting_after)
        found._list = [source for source in customer.sources._list if object is None or source.object == object]
        return found

    r.Customer._api_list_sources = classmethod(list_sources)

    original_retrieve_source = r.Customer._api_retrieve_source.__func__

    def retrieve_source(cls: Any, id: str, source_id: str, **kwargs: Any) -> Any:
        if isinstance(source_id, str) and source_id.startswith("ba_") and not kwargs:
            return _customer_bank_account(id, source_id)
        return original_retrieve_source(cls, id, source_id, **kwargs)

    r.Customer._api_retrieve_source = classmethod(retrieve_source)

    original_remove_source = r.Customer._api_remove_source.__func__

    def remove_source(cls: Any, id: str, source_id: str, **kwargs: Any) -> Any:
        if isinstance(source_id, str) and source_id.startswith("ba_"):
            return delete_bank_account(id, source_id)
        return original_remove_source(cls, id, source_id, **kwargs)

    r.Customer._api_remove_source = classmethod(remove_source)

    original_init = pi.__init__

    def init(self: Any, **kwargs: Any) -> None:
        method = kwargs.get("payment_method")
        allowed = kwargs.pop("allowed_payment_method_types", None)
        types = kwargs.get("payment_method_types")
        if allowed is not None:
            # Stripe keeps the allowed types compatible with the intent (us_bank_account: usd only)
            # and answers them as payment_method_types (changelog 2026-07-29.dahlia, "Adds the
            # allowed payment method types parameter").
            types = [t for t in allowed if t != "us_bank_account" or str(kwargs.get("currency")).lower() == "usd"]
            kwargs["payment_method_types"] = types
            if not types:
                raise invalid(
                    "None of the allowed_payment_method_types can be used with this PaymentIntent.",
                    "payment_intent_invalid_parameter",
                    "allowed_payment_method_types",
                )
        _check_method_types(method, types, kwargs.get("currency"))
        bank_method = isinstance(method, str) and method.startswith("ba_")
        if bank_method:
            _bank_account(method, kwargs.get("customer"))
            kwargs["payment_method"] = None  # localstripe knows pm_/card_/src_ only
        original_init(self, **kwargs)
        self.payment_method_types = types or ["card"]
        self.allowed_payment_method_types = allowed
        if bank_method:
            self.payment_method = method

    pi.__init__ = init

    original_create = pi._api_create.__func__

    def create(cls: Any, confirm: Any = None, **data: Any) -> Any:
        if r.try_convert_to_bool(confirm) is not True or "us_bank_account" not in (
            data.get("allowed_payment_method_types") or data.get("payment_method_types") or ()
        ):
            return original_create(cls, confirm=confirm, **data)
        confirm_params = {k: data.pop(k) for k in ("mandate_data", "mandate", "off_session") if k in data}
        intent = original_create(cls, **data)
        return confirm_ach(intent, **confirm_params)

    pi._api_create = classmethod(create)

    original_confirm = pi._api_confirm.__func__

    def confirm(cls: Any, id: str, **kwargs: Any) -> Any:
        intent = r.store.get("payment_intent:" + id) if isinstance(id, str) else None
        if intent is not None and _is_ach(intent):
            return confirm_ach(intent, **kwargs)
        return original_confirm(cls, id, **kwargs)

    pi._api_confirm = classmethod(confirm)

    original_cancel = pi._api_cancel.__func__

    def cancel(cls: Any, id: str, **kwargs: Any) -> Any:
        intent = r.store.get("payment_intent:" + id) if isinstance(id, str) else None
        if intent is not None and _is_ach(intent) and intent.status in ("processing", "succeeded", "canceled"):
            raise invalid(
                f"You cannot cancel this PaymentIntent because it has a status of {intent.status}.",
                "payment_intent_unexpected_state",
            )
        return original_cancel(cls, id, **kwargs)

    pi._api_cancel = classmethod(cancel)

    earlier_error = pi.last_payment_error

    def last_payment_error(self: Any) -> Any:
        error = earlier_error.fget(self)
        charge = self.latest_charge
        if error and isinstance(charge, AchCharge):
            bank = r.store.get("bank_account:" + charge.payment_method)
            outcome = getattr(charge, "outcome", None) or {}
            error = {
                **error,
                "type": "invalid_request_error",
                "code": PROVIDER_DECLINE,
                "decline_code": charge.failure_code,
                "network_decline_code": outcome.get("network_decline_code"),
                "payment_method": bank._export() if bank else None,
            }
        return error

    pi.last_payment_error = property(last_payment_error)
    pi._firmpay_ach = True


def _rebind(app: Any) -> None:
    """Point localstripe's routes bound at import time at the extended methods."""
    rebind = {
        ("POST", "/v1/customers/{id}/sources"): r.Customer._api_add_source,
        ("POST", "/v1/customers/{id}/cards"): r.Customer._api_add_source,
        ("GET", "/v1/customers/{id}/sources"): r.Customer._api_list_sources,
        ("GET", "/v1/customers/{id}/sources/{source_id}"): r.Customer._api_retrieve_source,
        ("DELETE", "/v1/customers/{id}/sources/{source_id}"): r.Customer._api_remove_source,
        ("POST", "/v1/payment_intents/{id}/confirm"): r.PaymentIntent._api_confirm,
        ("POST", "/v1/payment_intents/{id}/cancel"): r.PaymentIntent._api_cancel,
    }
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        func = rebind.get((route.method, canonical))
        if func is not None:
            route._handler = server.api_extra(func, canonical)


TEST_ROUTES = (
    (re.compile(r"^/_test/payment_intents/(pi_\w+)/settle$"), "settle"),
    (re.compile(r"^/_test/payment_intents/(pi_\w+)/return$"), "return"),
)


def test_controls_middleware() -> Any:
    """``/_test/...``: test-only controls, without Stripe's key (like localstripe's ``/_config/``)."""

    @web.middleware
    async def test_controls(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method != "POST" or not request.path.startswith("/_test/"):
            return await handler(request)
        try:
            data = await server.get_post_data(request) or {}
            if request.path == "/_test/bank_names":
                routing, name = data.get("routing_number"), data.get("bank_name")
                if not isinstance(routing, str) or not aba_checksum_ok(routing):
                    raise invalid("routing_number must be a valid ABA routing number.", "parameter_invalid")
                BANK_NAMES[routing] = name if isinstance(name, str) and name else DEFAULT_BANK_NAME
                return json_response({"routing_number": routing, "bank_name": BANK_NAMES[routing]})
            for pattern, action in TEST_ROUTES:
                found = pattern.match(request.path)
                if found:
                    intent_id = found.group(1)
                    intent = settle(intent_id) if action == "settle" else return_debit(intent_id, data.get("code"))
                    return json_response(intent._export())
        except UserError as error:
            return error.to_response()
        except json.JSONDecodeError:
            return invalid("The body is not JSON or form data.").to_response()
        return await handler(request)

    return test_controls


def install(app: Any) -> None:
    """Add ACH to localstripe's app once (call after the PaymentIntent patches of ``build_app``)."""
    _patch_resources()
    _rebind(app)
    if not getattr(app, "_firmpay_ach", False):
        app.router.add_route("GET", "/v1/mandates/{id}", server.api_retrieve(Mandate, "/v1/mandates/{id}"))
        app.middlewares.insert(0, test_controls_middleware())
        app._firmpay_ach = True
