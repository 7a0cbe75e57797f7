"""The ports: every interface the payment use cases need from the outside world, in one place.

Use cases take these as parameters; the gateways implement them structurally (no inheritance):
``PaymentProcessor`` and ``RefundProcessor`` by ``gateways.stripe_gateway.StripeGateway``,
``BankLinker`` by ``gateways.plaid_gateway.PlaidGateway``, ``TokenVault`` by ``gateways.kms.KmsVault``,
``CaptchaVerifier`` by ``gateways.captcha.RecaptchaVerifier``, ``PayLinkMailer`` by
``emails.mailer``'s SES mailer. Tests pass fakes. The data a port answers lives beside it here, except
the processor's vocabulary (``Intent``, ``ConfirmRequest``...), which has its own module,
``payments.processor``. This module imports nothing above ``models``, so any layer may depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from firmpay.models.ledger import Client, Firm, Payable
from firmpay.payments.processor import (
    BankAccountSource,
    CardDetails,
    ConfirmRequest,
    Intent,
    IntentRequest,
    ProcessorRefund,
)

# -- the payment processor (Stripe) -----------------------------------------------------------------


class PaymentProcessor(Protocol):
    def card_details(self, payment_method_id: str) -> CardDetails: ...

    def create_intent(self, request: IntentRequest) -> Intent: ...

    def confirm_intent(self, request: ConfirmRequest) -> Intent: ...

    def retrieve_intent(self, intent_id: str) -> Intent: ...

    def cancel_intent(self, intent_id: str, idempotency_key: str) -> Intent: ...

    def ensure_customer(self, firm_id: str, client_id: str, name: str, email: str, existing: str | None) -> str: ...

    def attach_bank_account(self, customer_id: str, bank_account_token: str) -> BankAccountSource: ...

    def detach_method(self, customer_id: str, method_id: str) -> None: ...


class RefundProcessor(Protocol):
    def find_intent(self, intent_id: str) -> Intent | None: ...

    def create_refund(
        self, intent_id: str, amount_minor: int, reason: str | None, idempotency_key: str, metadata: dict[str, str]
    ) -> ProcessorRefund: ...

    def retrieve_refund(self, refund_id: str) -> ProcessorRefund: ...

    def find_refund(self, intent_id: str, our_refund_id: str) -> ProcessorRefund | None: ...

    def list_refunds(self, intent_id: str) -> list[ProcessorRefund]: ...


class PaymentAndRefundProcessor(PaymentProcessor, RefundProcessor, Protocol):
    """What the webhook needs: payments and refunds (``StripeGateway`` is both)."""


# -- the bank link (Plaid) --------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkToken:
    link_token: str
    expiration: object


@dataclass(frozen=True)
class BankAccount:
    account_id: str
    name: str
    mask: str
    type: str
    subtype: str
    institution_name: str
    verification_status: str | None = None


class BankLinkError(Exception):
    """A Plaid error, with Plaid's own code (INVALID_PUBLIC_TOKEN, ...)."""

    def __init__(self, code: str, error_type: str, retryable: bool) -> None:
        super().__init__(code)
        self.code = code
        self.error_type = error_type
        self.retryable = retryable


class BankLinker(Protocol):
    def create_link_token(self, client_user_id: str, client_name: str, language: str) -> LinkToken: ...

    def exchange_public_token(self, public_token: str) -> str: ...

    def account(self, access_token: str, account_id: str) -> BankAccount | None: ...

    def stripe_bank_account_token(self, access_token: str, account_id: str) -> str: ...

    def remove_item(self, access_token: str) -> None: ...


# -- secrets at rest (KMS) ---------------------------------------------------------------------------


class TokenVault(Protocol):
    """Encrypts secrets at rest (KMS in production), bound to an encryption context."""

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str: ...

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str: ...


# -- card-testing defence (reCAPTCHA) -----------------------------------------------------------------


class CaptchaUnavailable(Exception):
    """The verification service did not answer (network, timeout, 5xx)."""


class CaptchaVerifier(Protocol):
    def verify(self, token: str, remote_ip: str | None) -> bool:
        """Whether ``token`` is a valid, unused reCAPTCHA answer; ``CaptchaUnavailable`` if unknown."""
        ...


# -- mail (SES) ---------------------------------------------------------------------------------------


class PayLinkMailer(Protocol):
    """Sends a payable to its client with a fresh "Pay online now" link."""

    def send_payable(self, firm: Firm, client: Client, payable: Payable, pay_url: str) -> object: ...
