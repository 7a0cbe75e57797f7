"""What a processor (Stripe) answers and is asked, as plain data: the vocabulary of the
``PaymentProcessor`` and ``RefundProcessor`` ports in ``firmpay.payments.ports``.

Use cases depend on these types and the ports only; ``firmpay.gateways.stripe_gateway`` implements
the ports with the real Stripe SDK, and unit tests may pass a fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

IntentStatus = Literal[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
]


@dataclass(frozen=True)
class CardDetails:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer_id: str | None = None


@dataclass(frozen=True)
class Intent:
    """The processor's view of one payment (a Stripe PaymentIntent)."""

    intent_id: str
    status: IntentStatus
    amount_minor: int
    currency: str
    client_secret: str | None = None
    payment_method_id: str | None = None
    customer_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    # For payments the network declined or returned, its raw code (an ACH return's R01, R02...).
    network_decline_code: str | None = None
    fee_minor: int | None = None
    mandate_id: str | None = None
    amount_refunded_minor: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IntentRequest:
    """Everything needed to create an intent; ``idempotency_key`` makes creation replay-safe."""

    amount_minor: int
    currency: str
    payment_method_id: str
    # Stripe's payment method type (the method policy's ``processor_type``): the only one allowed.
    method_type: str
    idempotency_key: str
    metadata: dict[str, str]
    description: str
    customer_id: str | None = None
    statement_descriptor_suffix: str | None = None
    # What goes under ``payment_method_options[<method_type>]`` (a debit's mandate options).
    method_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfirmRequest:
    intent_id: str
    idempotency_key: str
    setup_future_usage: Literal["off_session"] | None = None
    customer_id: str | None = None
    off_session: bool = False
    mandate_ip: str | None = None
    mandate_user_agent: str | None = None
    mandate_id: str | None = None
    return_url: str | None = None


@dataclass(frozen=True)
class BankAccountSource:
    """A bank account attached to a processor customer (Stripe ``ba_...``)."""

    source_id: str
    bank_name: str
    last4: str


class ProcessorUnavailable(Exception):
    """The processor did not answer (network, timeout, 5xx, rate limit): retry later, the same way."""


# -- refunds ---------------------------------------------------------------------------------------

ProcessorRefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]


@dataclass(frozen=True)
class ProcessorRefund:
    """The processor's view of one refund (a Stripe Refund)."""

    refund_id: str
    status: ProcessorRefundStatus
    amount_minor: int
    intent_id: str | None = None
    failure_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


class RefundRefused(Exception):
    """The processor refused to create the refund (e.g. already refunded there): nothing was refunded."""
