"""eCheck from a pay link (US firms): Plaid Link -> a Stripe bank account -> the checkout pipeline.

The flow: ``start_bank_link`` (a Link token) -> the client signs in to the bank in Plaid Link ->
``connect_bank_account`` (exchange the public token, check the account, turn it into a Stripe bank
account on the client's customer, keep the Plaid access token only encrypted) ->
``create_echeck_review`` (checkout's review, with the mandate text of the method's policy) ->
``submit_echeck`` (checkout's submit steps under the accepted mandate, then the bank link is kept
with a stored method or removed) -> the debit stays *processing* (still reserved) until Stripe
settles or returns it. The ACH rules (mandate, limits, return codes, fees) are the policy's,
``payments.methods.us_bank_account``; Plaid's side is ``payments.bank_link``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from firmpay.errors import (
    BankAccountRefused,
    FirmPayError,
    InvalidRequest,
    MandateRequired,
    ServiceUnavailable,
)
from firmpay.i18n import active_language
from firmpay.ledger import Ledger, LinkContext
from firmpay.models.ledger import BankConnection, Firm, MethodSummary, PayLink, Review, new_id
from firmpay.payments.bank_link import bank_error, keep_or_forget_bank, plaid_user_id, remove_quietly, vault_context
from firmpay.payments.checkout import (
    CheckoutOutcome,
    SubmitChoice,
    balance_after,
    check_method,
    confirm_opened,
    create_review,
    ensure_customer,
    load_submission,
    open_submission,
    payment_id_for,
)
from firmpay.payments.methods import US_BANK_ACCOUNT
from firmpay.payments.ports import BankLinker, BankLinkError, LinkToken, PaymentProcessor, TokenVault
from firmpay.payments.processor import ProcessorUnavailable

EcheckOutcome = CheckoutOutcome


def ensure_echeck_offered(firm: Firm) -> None:
    US_BANK_ACCOUNT.refuse_unless_offered(firm)


# -- use cases -------------------------------------------------------------------------------------


def start_bank_link(linker: BankLinker, firm: Firm, client_id: str) -> LinkToken:
    """A Plaid Link token for this client (products auth, US only)."""
    ensure_echeck_offered(firm)
    try:
        # Plaid Link speaks the page's language (link/token/create ``language``: "en", "fr", ...).
        language = (active_language() or "en-US").split("-")[0]
        return linker.create_link_token(plaid_user_id(firm.firm_id, client_id), firm.name, language)
    except BankLinkError as error:
        raise bank_error(error) from error


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
        remove_quietly(linker, access_token)
        raise bank_error(error) from error
    except ProcessorUnavailable as error:
        remove_quietly(linker, access_token)
        raise ServiceUnavailable() from error
    except FirmPayError:
        remove_quietly(linker, access_token)
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
            access_token, vault_context(context.firm.firm_id, context.client.client_id)
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
    payable = context.payable
    check_method(US_BANK_ACCOUNT, context.firm, payable, amount_minor)
    connection = ledger.get_bank_connection(payable.payable_id, connection_id)
    if connection is None or connection.client_id != context.client.client_id or connection.expires_at <= now:
        raise InvalidRequest("The bank connection expired; please select your bank again.")
    method = MethodSummary(
        type=US_BANK_ACCOUNT.key,
        bank_name=connection.bank_name,
        last4=connection.last4,
        holder_name=connection.holder_name,
    )
    return create_review(
        ledger,
        processor,
        context,
        amount_minor,
        method,
        connection.processor_method_id,
        now,
        ttl_seconds,
        extra={"bank_connection_id": connection_id},
    )


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
) -> CheckoutOutcome:
    """Reserve and debit under the accepted mandate; the payment then stays processing.

    Checkout's submit steps, with the bank connection read between them: its account validation
    goes into the mandate, and after the debit it is kept with the stored method or forgotten.
    Costs six DynamoDB requests: the link, one BatchGetItem (review, payable, firm), the bank
    connection, the reserve transaction, the processing update, and forgetting the connection
    (or storing the method). ``linker`` is only needed (and plaid-python only imported) to remove
    the Plaid item of a method the client chose not to store.
    """
    if not authorized:
        raise MandateRequired()
    submission = load_submission(ledger, US_BANK_ACCOUNT, link, review_id, now)
    review = submission.review
    if not review.bank_connection_id:
        raise InvalidRequest("This review is not an eCheck review.")
    connection = ledger.get_bank_connection(review.payable_id, review.bank_connection_id)
    existing = None if connection is not None else ledger.get_payment(review.payable_id, payment_id_for(review_id))
    if existing is not None:  # submitted before (double click, reload): the first submit's payment
        payment, created = existing, False
    elif connection is None:
        raise InvalidRequest("The bank connection expired; please select your bank again.")
    else:
        choice = SubmitChoice(store_method, ip_address, user_agent, authorized)
        payment, created = open_submission(
            ledger, submission, choice, now, account_validation=connection.account_validation
        )
    payment = confirm_opened(ledger, processor, payment, created, ip_address, user_agent)
    if created and connection is not None:
        payment = keep_or_forget_bank(ledger, processor, linker, vault, connection, payment, now)
    return CheckoutOutcome(payment, balance_after(ledger, submission.payable, payment, created), submission.firm.locale)
