"""eCheck (US firms): Plaid Link -> Stripe ACH debit with a recorded NACHA WEB mandate.

The flow: ``start_bank_link`` (a Link token) -> the client signs in to the bank in Plaid Link ->
``connect_bank_account`` (exchange the public token, check the account, turn it into a Stripe bank
account on the client's customer, keep the Plaid access token only encrypted) -> the shared
review/submit machinery of ``checkout`` with the mandate -> the debit stays *processing* (still
reserved) until Stripe settles or returns it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from firmpay.errors import (
    BankAccountRefused,
    BankLinkFailed,
    EcheckLimitExceeded,
    EcheckNotOffered,
    FirmPayError,
    InvalidRequest,
    MandateRequired,
    ReviewExpired,
    ServiceUnavailable,
)
from firmpay.i18n import active_language
from firmpay.ledger import DailyLimit, Ledger, LinkContext
from firmpay.models.ledger import (
    BankConnection,
    Firm,
    Mandate,
    MethodSummary,
    Payable,
    PayLink,
    Payment,
    PaymentStatus,
    Review,
    StoredMethod,
    new_id,
)
from firmpay.money import Locale, Money
from firmpay.observability import logger
from firmpay.payments.checkout import (
    check_amount,
    confirm_payment,
    consent,
    create_review,
    ensure_customer,
    open_payment,
    payment_id_for,
    store_method_consent,
)
from firmpay.payments.ports import BankAccount, BankLinker, BankLinkError, LinkToken, PaymentProcessor, TokenVault
from firmpay.payments.processor import ProcessorUnavailable

ACH_MANDATE_TEXT_VERSION = "ach-web-v1"

# Returns that say the account can never be debited again: a stored method becomes unusable.
# Stripe reports the bank's return code in last_payment_error.network_decline_code and its own
# decline code (bank_account_closed, ...) in decline_code (Stripe docs, "Network decline codes", ACH
# Direct Debit): all but the funds returns (R01, R09) say the account or the authorization is gone.
ACCOUNT_GONE_RETURNS = frozenset({"R02", "R03", "R04", "R05", "R07", "R08", "R10", "R11", "R16", "R20", "R29", "R31"})


def bank_error(error: BankLinkError) -> FirmPayError:
    """Plaid's failure as a client-facing error; provider messages never reach the client."""
    if error.retryable:
        return ServiceUnavailable()
    if error.code in ("INVALID_PUBLIC_TOKEN", "INVALID_ACCESS_TOKEN", "ITEM_NOT_FOUND"):
        return InvalidRequest("The bank connection expired or was already used; please select your bank again.")
    if error.code == "INVALID_ACCOUNT_ID":
        return BankAccountRefused("That account does not belong to the bank connection you made.")
    return BankLinkFailed()


def plaid_user_id(firm_id: str, client_id: str) -> str:
    """Plaid's client_user_id: stable per client and firm, revealing neither."""
    return hashlib.sha256(f"firmpay:{firm_id}:{client_id}".encode()).hexdigest()


def ensure_echeck_offered(firm: Firm) -> None:
    if not firm.offers_echeck:
        raise EcheckNotOffered()


def check_echeck_amount(firm: Firm, amount_minor: int) -> None:
    if amount_minor > firm.echeck_max_minor:
        raise EcheckLimitExceeded(
            "eCheck payments to {firm} are limited to {limit} per payment; please pay by card or pay in parts.",
            params={"firm": firm.name, "limit": Money(amount_minor=firm.echeck_max_minor, currency=firm.currency)},
            limit_minor=firm.echeck_max_minor,
        )


def mandate_text(firm: Firm, payable: Payable, amount_formatted: str, bank_label: str, on: datetime) -> str:
    """The NACHA WEB authorization the client accepts, versioned as ``ACH_MANDATE_TEXT_VERSION``."""
    kind = "trust request" if payable.kind == "trust_request" else "bill"
    return (
        f"By checking this box, I authorize {firm.name} to electronically debit my account "
        f"{bank_label} for a one-time payment of {amount_formatted} on {on.date().isoformat()} "
        f"(or the next business day) for {kind} {payable.number}. I confirm I am authorized to debit "
        f"this account. I can revoke this authorization by contacting {firm.name} at "
        f"{firm.reply_to_email} before the payment is processed. If the debit is returned, "
        f"{firm.name} may contact me to arrange another payment."
    )


def make_mandate(
    text: str,
    amount_minor: int,
    currency: str,
    account: BankAccount | None,
    last4: str,
    now: datetime,
    ip_address: str,
    user_agent: str,
    validation: str | None,
) -> Mandate:
    return Mandate(
        text_version=ACH_MANDATE_TEXT_VERSION,
        text=text,
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        accepted_at=now,
        ip_address=ip_address,
        user_agent=user_agent[:512],
        amount_minor=amount_minor,
        currency=currency,
        account_last4=last4,
        account_validation=validation or (account.verification_status if account else None) or "plaid_auth",
    )


def retire_returned_method(ledger: Ledger, payment: Payment) -> int:
    """After a return saying the account is gone, no stored method for that account is debited again.

    Idempotent (the webhook and the sweep may both get here); returns how many methods it retired.
    """
    if payment.method.type != "echeck" or payment.status is not PaymentStatus.FAILED:
        return 0
    if payment.return_code not in ACCOUNT_GONE_RETURNS or payment.processor_method_id is None:
        return 0
    retired = 0
    for method in ledger.list_methods(payment.firm_id, payment.client_id):
        same_account = method.processor_method_id == payment.processor_method_id
        if method.status == "active" and (same_account or method.method_id == payment.stored_method_id):
            ledger.set_method_status(method, "unusable")
            retired += 1
            logger.info(
                "stored bank method retired after an ACH return",
                extra={"method_id": method.method_id, "return_code": payment.return_code},
            )
    return retired


# -- use cases -------------------------------------------------------------------------------------


def _vault_context(firm_id: str, client_id: str) -> dict[str, str]:
    return {"firm_id": firm_id, "client_id": client_id, "purpose": "plaid-access-token"}


def start_bank_link(linker: BankLinker, firm: Firm, client_id: str) -> LinkToken:
    """A Plaid Link token for this client (products auth, US only)."""
    ensure_echeck_offered(firm)
    try:
        # Plaid Link speaks the page's language (link/token/create ``language``: "en", "fr", ...).
        language = (active_language() or "en-US").split("-")[0]
        return linker.create_link_token(plaid_user_id(firm.firm_id, client_id), firm.name, language)
    except BankLinkError as error:
        raise bank_error(error) from error


def remove_stored_bank_item(linker: BankLinker, vault: TokenVault, method: StoredMethod) -> None:
    """Remove the Plaid item behind a stored bank account that will never be debited again
    (revoked by the firm or the client): Plaid's ``/item/remove`` ends our access to the account.
    A card, or a method without a Plaid token, has nothing to remove."""
    if method.summary.type != "echeck" or not method.encrypted_access_token:
        return
    access_token = vault.decrypt(method.encrypted_access_token, _vault_context(method.firm_id, method.client_id))
    if _remove_quietly(linker, access_token):
        logger.info("Plaid item of a revoked bank method removed", extra={"method_id": method.method_id})


def _remove_quietly(linker: BankLinker, access_token: str) -> bool:
    try:
        linker.remove_item(access_token)
    except BankLinkError:
        logger.warning("could not remove a Plaid item; it expires unused")
        return False
    return True


def connect_bank_account(
    ledger: Ledger,
    linker: BankLinker,
    processor: PaymentProcessor,
    vault: TokenVault,
    context: LinkContext,
    public_token: str,
    account_id: str,
    holder_name: str,
    now: datetime,
) -> BankConnection:
    """Exchange Link's public token, check the account, make it a Stripe bank account.

    The Plaid item is removed again whenever the account is refused; the access token is kept
    only KMS-encrypted, until submit decides whether the client stores the method.
    """
    ensure_echeck_offered(context.firm)
    try:
        access_token = linker.exchange_public_token(public_token)
    except BankLinkError as error:
        raise bank_error(error) from error
    try:
        account = linker.account(access_token, account_id)
        if account is None:
            raise BankAccountRefused("That account does not belong to the bank connection you made.")
        if account.type != "depository" or account.subtype not in ("checking", "savings"):
            raise BankAccountRefused()
        bank_token = linker.stripe_bank_account_token(access_token, account_id)
        customer_id = ensure_customer(ledger, processor, context.client)
        source = processor.attach_bank_account(customer_id, bank_token)
    except BankLinkError as error:
        _remove_quietly(linker, access_token)
        raise bank_error(error) from error
    except ProcessorUnavailable as error:
        _remove_quietly(linker, access_token)
        raise ServiceUnavailable() from error
    except FirmPayError:
        _remove_quietly(linker, access_token)
        raise
    connection = BankConnection(
        connection_id=new_id("bank"),
        payable_id=context.payable.payable_id,
        firm_id=context.firm.firm_id,
        client_id=context.client.client_id,
        holder_name=holder_name,
        bank_name=account.institution_name,
        last4=account.mask or source.last4,
        account_subtype=account.subtype,
        account_validation=account.verification_status or "plaid_auth_verified",
        processor_customer_id=customer_id,
        processor_method_id=source.source_id,
        encrypted_access_token=vault.encrypt(
            access_token, _vault_context(context.firm.firm_id, context.client.client_id)
        ),
        expires_at=now + timedelta(hours=1),
        created_at=now,
    )
    ledger.put_bank_connection(connection)
    return connection


def create_echeck_review(
    ledger: Ledger,
    processor: PaymentProcessor,
    context: LinkContext,
    amount_minor: int,
    connection_id: str,
    now: datetime,
    ttl_seconds: int,
) -> Review:
    """The review of an eCheck payment, with the exact mandate text the client will accept."""
    firm, payable = context.firm, context.payable
    ensure_echeck_offered(firm)
    check_echeck_amount(firm, amount_minor)
    connection = ledger.get_bank_connection(payable.payable_id, connection_id)
    if connection is None or connection.client_id != context.client.client_id or connection.expires_at <= now:
        raise InvalidRequest("The bank connection expired; please select your bank again.")
    method = MethodSummary(
        type="echeck", bank_name=connection.bank_name, last4=connection.last4, holder_name=connection.holder_name
    )
    check_amount(payable, amount_minor)
    text = mandate_text(firm, payable, payable.money(amount_minor).format(firm.locale), method.label(), now)
    return create_review(
        ledger,
        processor,
        context,
        amount_minor,
        method,
        connection.processor_method_id,
        now,
        ttl_seconds,
        extra={"bank_connection_id": connection_id, "mandate_text": text, "daily_limit": firm.echeck_daily_limit},
    )


@dataclass(frozen=True)
class EcheckOutcome:
    payment: Payment
    balance_minor: int
    locale: Locale


def submit_echeck(
    ledger: Ledger,
    processor: PaymentProcessor,
    linker: BankLinker | None,
    vault: TokenVault,
    link: PayLink,
    review_id: str,
    authorized: bool,
    store_method: bool,
    ip_address: str,
    user_agent: str,
    now: datetime,
) -> EcheckOutcome:
    """Reserve and debit under the accepted mandate; the payment then stays processing.

    Costs six DynamoDB requests: the link, one BatchGetItem (review, payable, firm), the bank
    connection, the reserve transaction, the processing update, and forgetting the connection
    (or storing the method). ``linker`` is only needed (and plaid-python only imported) to remove
    the Plaid item of a method the client chose not to store.
    """
    if not authorized:
        raise MandateRequired()
    state = ledger.get_checkout_state(link.payable_id, review_id, link.firm_id, [])
    review, payable, firm = state.review, state.payable, state.firm
    if review is None or payable is None or firm is None or review.expires_at <= now:
        raise ReviewExpired()
    if review.method.type != "echeck" or not review.mandate_text or not review.bank_connection_id:
        raise InvalidRequest("This review is not an eCheck review.")
    if review.client_id != link.client_id:
        raise InvalidRequest("This review is not an eCheck review of this link.")
    connection = ledger.get_bank_connection(review.payable_id, review.bank_connection_id)
    existing = None if connection is not None else ledger.get_payment(review.payable_id, payment_id_for(review_id))
    if connection is None and existing is None:
        raise InvalidRequest("The bank connection expired; please select your bank again.")
    mandate = make_mandate(
        review.mandate_text,
        review.amount_minor,
        review.currency,
        None,
        review.method.last4 or "0000",
        now,
        ip_address,
        user_agent,
        connection.account_validation if connection else None,
    )
    store_consent = consent(*store_method_consent(firm.name), now, ip_address, user_agent) if store_method else None
    limit = DailyLimit(
        scope=f"echeck#{review.firm_id}#{review.client_id}",
        window=now.date().isoformat(),
        limit=review.daily_limit or firm.echeck_daily_limit,
        expires_at=int((now + timedelta(days=2)).timestamp()),
        error=EcheckLimitExceeded("You have reached today's limit of eCheck payments; please pay by card."),
    )
    if existing is not None:  # submitted before (double click, reload): the first submit's payment
        payment, created = existing, False
    else:
        payment, created = open_payment(
            ledger, review, payable, now, store_consent=store_consent, mandate=mandate, daily_limit=limit
        )
    if payment.status is PaymentStatus.PENDING:
        try:
            payment = confirm_payment(ledger, processor, payment, ip_address=ip_address, user_agent=user_agent)
        except ServiceUnavailable:
            if created:
                raise
            # The first submit of this review is confirming right now (Stripe answers the same
            # Idempotency-Key with "in use"): report the payment as pending; it moves on shortly.
    if created and connection is not None:
        payment = _keep_or_forget_bank(ledger, processor, linker, vault, connection, payment, now)
        balance = payable.balance_minor - review.amount_minor
    else:
        current = ledger.get_payable(review.payable_id)
        balance = current.balance_minor if current else 0
    return EcheckOutcome(payment, balance, firm.locale)


def _keep_or_forget_bank(
    ledger: Ledger,
    processor: PaymentProcessor,
    linker: BankLinker | None,
    vault: TokenVault,
    connection: BankConnection,
    payment: Payment,
    now: datetime,
) -> Payment:
    """Store the bank method (consent given, debit accepted), or remove the Plaid item and the
    Stripe bank account (unless a stored method of this client uses that account)."""
    store = payment.store_method and payment.store_consent is not None and payment.status is PaymentStatus.PROCESSING
    if store:
        method = StoredMethod(
            method_id=new_id("mth"),
            firm_id=payment.firm_id,
            client_id=payment.client_id,
            summary=payment.method,
            processor_customer_id=connection.processor_customer_id,
            processor_method_id=connection.processor_method_id,
            consent=payment.store_consent,
            mandate_id=payment.processor_mandate_id,
            encrypted_access_token=connection.encrypted_access_token,
            created_from_payment_id=payment.payment_id,
            created_at=now,
        )
        ledger.put_method(method)
        payment = ledger.update_reserved_payment(payment, stored_method_id=method.method_id) or payment
    # The debit is under way: the clean-up below moves no money and is best effort. A failure is
    # logged, never answered as an error (the client would read "failed" while the debit is
    # processing); what remains expires on its own (the connection row by TTL, an unused Plaid
    # item and ba_ source).
    try:
        if not store and linker is not None:
            access_token = vault.decrypt(
                connection.encrypted_access_token, _vault_context(connection.firm_id, connection.client_id)
            )
            _remove_quietly(linker, access_token)
        if not payment.stored_method_id:
            _delete_unstored_source(ledger, processor, connection)
        ledger.forget_bank_connection(connection)
    except Exception:
        logger.exception(
            "bank link not cleaned up after the debit; it expires on its own",
            extra={"payment_id": payment.payment_id, "connection_id": connection.connection_id},
        )
    return payment


def _delete_unstored_source(ledger: Ledger, processor: PaymentProcessor, connection: BankConnection) -> None:
    """Delete the ``ba_`` source of a method the client did not store: the debit already under way
    goes on (its charge names the account), and a later attach of the same account makes a new one
    instead of meeting ``bank_account_exists``. A source a stored method uses stays."""
    for method in ledger.list_methods(connection.firm_id, connection.client_id):
        if method.status == "active" and method.processor_method_id == connection.processor_method_id:
            return
    try:
        processor.detach_method(connection.processor_customer_id, connection.processor_method_id)
    except ProcessorUnavailable:
        logger.warning("unstored bank account not deleted at Stripe", extra={"source": connection.processor_method_id})
