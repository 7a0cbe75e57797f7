"""In-memory stand-ins for Stripe and reCAPTCHA, for the card use-case unit tests.

``FakeProcessor`` keeps Stripe's promises that the code relies on: an Idempotency-Key replays the
first answer (and never charges twice), a decline leaves the intent in ``requires_payment_method``
with its error, a 3-D Secure card stops in ``requires_action`` until ``authenticate``.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from firmpay.payments.processor import (
    BankAccountSource,
    CardDetails,
    ConfirmRequest,
    Intent,
    IntentRequest,
    ProcessorRefund,
    ProcessorUnavailable,
    RefundRefused,
)

# Card "numbers" by behaviour, as payment method ids.
CARD_OK = "pm_card_visa_ok"
CARD_3DS = "pm_card_threeds"
DECLINES = {
    "pm_card_declined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_insufficient": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "pm_card_expired": ("expired_card", None, "Your card has expired."),
    "pm_card_cvc": ("incorrect_cvc", None, "Your card's security code is incorrect."),
    "pm_card_processing": ("processing_error", None, "An error occurred while processing your card."),
}


@dataclass
class FakeProcessor:
    intents: dict[str, Intent] = field(default_factory=dict)
    charges: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    unavailable: bool = False
    _replies: dict[str, Intent] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    attached: dict[str, str] = field(default_factory=dict)  # payment method -> customer
    refunds: dict[str, ProcessorRefund] = field(default_factory=dict)
    refund_status: str = "succeeded"  # what a new refund answers (Stripe: succeeded or pending)
    _refund_replies: dict[str, str] = field(default_factory=dict)

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.unavailable:
            raise ProcessorUnavailable("fake outage")

    def card_details(self, payment_method_id: str) -> CardDetails:
        self._check("card_details")
        if not payment_method_id.startswith("pm_card_"):
            raise ValueError("no such payment method")
        last4 = "3184" if payment_method_id == CARD_3DS else "4242"
        return CardDetails(payment_method_id, "visa", last4, 12, 2034, self.attached.get(payment_method_id))

    def create_intent(self, request: IntentRequest) -> Intent:
        self._check("create_intent")
        if request.idempotency_key in self._replies:
            return self._replies[request.idempotency_key]
        intent = Intent(
            intent_id=f"pi_fake{next(self._ids)}",
            status="requires_confirmation",
            amount_minor=request.amount_minor,
            currency=request.currency,
            client_secret="secret",
            payment_method_id=request.payment_method_id,
            customer_id=request.customer_id,
            metadata=request.metadata,
        )
        intent = dataclasses.replace(intent, client_secret=f"{intent.intent_id}_secret_x")
        self.intents[intent.intent_id] = intent
        self._replies[request.idempotency_key] = intent
        return intent

    def confirm_intent(self, request: ConfirmRequest) -> Intent:
        self._check("confirm_intent")
        if request.idempotency_key in self._replies:
            return self._replies[request.idempotency_key]  # Stripe replays its first answer
        intent = self.intents[request.intent_id]
        if intent.status != "requires_confirmation":
            return intent
        method = intent.payment_method_id or ""
        if method == CARD_3DS:
            intent = dataclasses.replace(intent, status="requires_action")
        elif method in DECLINES:
            code, decline, message = DECLINES[method]
            intent = dataclasses.replace(
                intent, status="requires_payment_method", failure_code=decline or code, failure_message=message
            )
        else:
            intent = self._charge(intent)
        if request.setup_future_usage and intent.status == "succeeded" and intent.customer_id:
            self.attached[method] = intent.customer_id
        self.intents[intent.intent_id] = intent
        self._replies[request.idempotency_key] = intent
        return intent

    def _charge(self, intent: Intent) -> Intent:
        self.charges.append(intent.intent_id)
        return dataclasses.replace(intent, status="succeeded", fee_minor=(intent.amount_minor * 29 + 500) // 1000 + 30)

    def authenticate(self, intent_id: str, success: bool) -> None:
        """What the bank's 3-D Secure page does (Stripe's test modal)."""
        intent = self.intents[intent_id]
        assert intent.status == "requires_action"
        if success:
            self.intents[intent_id] = self._charge(intent)
        else:
            self.intents[intent_id] = dataclasses.replace(
                intent,
                status="requires_payment_method",
                failure_code="payment_intent_authentication_failure",
                failure_message="The provided PaymentMethod has failed authentication.",
                payment_method_id=None,
            )

    def retrieve_intent(self, intent_id: str) -> Intent:
        self._check("retrieve_intent")
        return self.intents[intent_id]

    def cancel_intent(self, intent_id: str, idempotency_key: str) -> Intent:
        self._check("cancel_intent")
        intent = self.intents[intent_id]
        if intent.status in ("requires_confirmation", "requires_action", "requires_payment_method"):
            intent = dataclasses.replace(intent, status="canceled")
            self.intents[intent_id] = intent
        return intent

    def ensure_customer(self, firm_id: str, client_id: str, name: str, email: str, existing: str | None) -> str:
        self._check("ensure_customer")
        return existing or f"cus_{client_id}"

    def attach_bank_account(self, customer_id: str, bank_account_token: str) -> BankAccountSource:
        raise NotImplementedError

    # -- refunds: an Idempotency-Key replays; never more than the charge; ``refund_status`` decides

    def find_intent(self, intent_id: str) -> Intent | None:
        self._check("find_intent")
        return self.intents.get(intent_id)

    def create_refund(
        self, intent_id: str, amount_minor: int, reason: str | None, idempotency_key: str, metadata: dict[str, str]
    ) -> ProcessorRefund:
        self._check("create_refund")
        if idempotency_key in self._refund_replies:
            return self.refunds[self._refund_replies[idempotency_key]]
        intent = self.intents[intent_id]
        done = sum(r.amount_minor for r in self.refunds.values() if r.intent_id == intent_id and r.status != "failed")
        if intent.status != "succeeded" or amount_minor > intent.amount_minor - done:
            raise RefundRefused("amount_too_large")
        refund = ProcessorRefund(
            f"re_fake{next(self._ids)}", self.refund_status, amount_minor, intent_id, None, metadata
        )
        self.refunds[refund.refund_id] = refund
        self._refund_replies[idempotency_key] = refund.refund_id
        return refund

    def retrieve_refund(self, refund_id: str) -> ProcessorRefund:
        self._check("retrieve_refund")
        return self.refunds[refund_id]

    def find_refund(self, intent_id: str, our_refund_id: str) -> ProcessorRefund | None:
        self._check("find_refund")
        found = [
            r
            for r in self.refunds.values()
            if r.intent_id == intent_id and r.metadata.get("refund_id") == our_refund_id
        ]
        return found[0] if found else None

    def list_refunds(self, intent_id: str) -> list[ProcessorRefund]:
        self._check("list_refunds")
        return [r for r in self.refunds.values() if r.intent_id == intent_id]

    def finish_refund(self, refund_id: str, status: str) -> None:
        """What the bank does later to a pending refund (Stripe then sends ``charge.refund.updated``)."""
        self.refunds[refund_id] = dataclasses.replace(self.refunds[refund_id], status=status)  # type: ignore[arg-type]

    def detach_method(self, customer_id: str, method_id: str) -> None:
        raise NotImplementedError


@dataclass
class FakeVerifier:
    """reCAPTCHA whose answer the test chooses; remembers the tokens it was asked about."""

    answer: bool = True
    seen: list[str] = field(default_factory=list)

    def verify(self, token: str, remote_ip: str | None) -> bool:
        self.seen.append(token)
        return self.answer
