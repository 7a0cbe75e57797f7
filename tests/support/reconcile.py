"""The ledger checked against the money: every payment of a scenario agrees with what Stripe holds.

``check_invariant`` compares the ledger with itself; this reads Stripe (the emulator, through the
real stripe SDK) and compares, payment by payment:

- the state: the ledger says ``succeeded`` if and only if the intent succeeded with exactly one
  succeeded charge of the payment's amount; ``failed``/``canceled`` only when Stripe took nothing;
  ``processing`` and ``requires_action`` as the intent says; a payment still ``pending`` never has
  money taken at Stripe (that is the crash window the webhook and the sweep must close);
- the amount and currency of the intent and of its charge;
- refunds: the payment's ``refunded`` equals Stripe's succeeded refunds of the intent, each refund
  the ledger sent has Stripe's amount and status, and every refund Stripe holds is known to the
  ledger (a refund made in the Dashboard too);
- the fee booked on a succeeded payment equals the fee on the charge's balance transaction;
- and no succeeded charge at Stripe for the payable is missing from the ledger.

Cheap by construction: it reads only the payables a test touched, each intent once, and the charges
created since the test began (``created[gt]``, one listing).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe

from firmpay.ledger import Ledger
from firmpay.models.ledger import Payment, PaymentStatus, Refund
from firmpay.payments.checkout import estimated_fee
from local.stack import LocalStack
from tests.support.card_stack import stripe_client

# Stripe's refund statuses as the ledger names them (requires_action: a refund waiting on the
# customer's bank details, still pending for us). https://docs.stripe.com/api/refunds/object
REFUND_STATUS = {"pending": "pending", "requires_action": "pending", "succeeded": "succeeded"}
REFUND_STATUS |= {"failed": "failed", "canceled": "canceled"}


@dataclass
class StripeSide:
    """What Stripe holds for one scenario: the intents read so far and the charges since it began."""

    client: stripe.StripeClient
    charges_by_intent: dict[str, list[Any]] = field(default_factory=dict)
    intents: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def since(cls, stack: LocalStack, started_at: float | None) -> StripeSide:
        """``started_at`` (epoch seconds): also list the charges made since then (None: only the
        intents' latest charges are read)."""
        client = stripe_client(stack.urls["stripe"])
        side = cls(client)
        if started_at is None:
            return side
        # Stripe's `created` is whole seconds: a second of margin keeps a charge made in the same
        # second as the start.
        listing = client.v1.charges.list(params={"created": {"gt": int(started_at) - 1}, "limit": 100})
        for charge in listing.auto_paging_iter():
            if charge.payment_intent:
                side.charges_by_intent.setdefault(str(charge.payment_intent), []).append(charge)
        return side

    def intent(self, intent_id: str) -> Any:
        """The intent with its latest charge and balance transaction; None when Stripe has no such intent."""
        if intent_id not in self.intents:
            try:
                self.intents[intent_id] = self.client.v1.payment_intents.retrieve(
                    intent_id, params={"expand": ["latest_charge.balance_transaction"]}
                )
            except stripe.InvalidRequestError as error:
                if error.http_status != 404:
                    raise
                self.intents[intent_id] = None
        return self.intents[intent_id]

    def charges(self, intent: Any) -> list[Any]:
        """Every charge of the intent (a declined attempt and a later success are two charges)."""
        found = {str(c.id): c for c in self.charges_by_intent.get(str(intent.id), [])}
        latest = intent.latest_charge
        if latest is not None and not isinstance(latest, str):
            found[str(latest.id)] = latest  # the expanded one carries its balance transaction
        return list(found.values())

    def refunds(self, intent: Any) -> list[Any]:
        if intent.latest_charge is None:
            return []
        listing = self.client.v1.refunds.list(params={"payment_intent": str(intent.id), "limit": 100})
        return list(listing.auto_paging_iter())


def payment_problems(side: StripeSide, payment: Payment, refunds: list[Refund]) -> list[str]:
    """How one ledger payment disagrees with Stripe (empty when it agrees)."""
    name = f"payment {payment.payment_id} ({payment.status.value} {payment.amount_minor} {payment.currency})"
    if payment.processor_intent_id is None:
        if payment.status is PaymentStatus.SUCCEEDED:
            return [f"{name}: succeeded in the ledger with no intent at Stripe"]
        return []
    intent = side.intent(payment.processor_intent_id)
    if intent is None:
        return [f"{name}: Stripe has no intent {payment.processor_intent_id}"]
    problems: list[str] = []
    if intent.amount != payment.amount_minor or str(intent.currency).upper() != payment.currency:
        problems.append(f"{name}: Stripe's intent is {intent.amount} {intent.currency}")
    metadata = intent.to_dict().get("metadata") or {}
    if metadata.get("payable_id") not in (None, payment.payable_id):
        problems.append(f"{name}: intent {intent.id} belongs to payable {metadata.get('payable_id')}")
    succeeded = [c for c in side.charges(intent) if c.status == "succeeded"]
    problems += _state_problems(name, payment, intent, succeeded)
    theirs = side.refunds(intent) if _has_refunds(payment, refunds, intent) else []
    problems += _refund_problems(name, payment, refunds, theirs)
    if payment.status is PaymentStatus.SUCCEEDED and len(succeeded) == 1:
        problems += _fee_problems(name, payment, succeeded[0], intent)
    return problems


def _state_problems(name: str, payment: Payment, intent: Any, succeeded: list[Any]) -> list[str]:
    at_stripe = f"Stripe: intent {intent.id} {intent.status}, {len(succeeded)} succeeded charge(s)"
    status = payment.status
    if status is PaymentStatus.SUCCEEDED:
        ok = intent.status == "succeeded" and len(succeeded) == 1 and succeeded[0].amount == payment.amount_minor
    elif status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        ok = not succeeded and intent.status in ("requires_payment_method", "canceled")
    elif status is PaymentStatus.PROCESSING:
        ok = not succeeded and intent.status == "processing"
    elif status is PaymentStatus.REQUIRES_ACTION:
        ok = not succeeded and intent.status == "requires_action"
    else:  # pending: confirmed or not, Stripe must not hold the money yet
        ok = not succeeded and intent.status not in ("succeeded", "processing")
    return [] if ok else [f"{name}: {at_stripe}"]


def _has_refunds(payment: Payment, refunds: list[Refund], intent: Any) -> bool:
    """Whether either side knows a refund (the charge counts every refund Stripe made, ours or not)."""
    latest = intent.latest_charge
    at_stripe = latest is not None and not isinstance(latest, str) and int(latest.amount_refunded or 0) > 0
    return bool(refunds or payment.refunded_minor or payment.refunding_minor or at_stripe)


def _refund_problems(name: str, payment: Payment, ours: list[Refund], theirs: list[Any]) -> list[str]:
    problems: list[str] = []
    by_id = {str(r.id): r for r in theirs}
    for refund in ours:
        if refund.processor_refund_id is None:
            continue  # written ahead, never reached Stripe (or refused before it made one)
        stripe_refund = by_id.get(refund.processor_refund_id)
        if stripe_refund is None:
            problems.append(f"{name}: refund {refund.refund_id} names {refund.processor_refund_id}, unknown to Stripe")
            continue
        status = REFUND_STATUS.get(str(stripe_refund.status), str(stripe_refund.status))
        if stripe_refund.amount != refund.amount_minor or status != refund.status.value:
            problems.append(
                f"{name}: refund {refund.refund_id} is {refund.status.value} {refund.amount_minor}, "
                f"Stripe's {stripe_refund.id} is {stripe_refund.status} {stripe_refund.amount}"
            )
    known = {r.processor_refund_id for r in ours}
    for stripe_refund in theirs:
        if stripe_refund.status in ("pending", "requires_action", "succeeded") and str(stripe_refund.id) not in known:
            problems.append(f"{name}: Stripe's refund {stripe_refund.id} ({stripe_refund.status}) is not in the ledger")
    refunded = sum(int(r.amount) for r in theirs if r.status == "succeeded")
    if refunded != payment.refunded_minor:
        problems.append(f"{name}: ledger refunded {payment.refunded_minor}, Stripe refunded {refunded}")
    return problems


def _fee_problems(name: str, payment: Payment, charge: Any, intent: Any) -> list[str]:
    latest = intent.latest_charge
    txn = latest.balance_transaction if latest is not None and str(latest.id) == str(charge.id) else None
    fee = int(txn.fee) if txn is not None and not isinstance(txn, str) else None
    if fee:
        return [] if payment.fee_minor == fee else [f"{name}: fee {payment.fee_minor}, Stripe's fee {fee}"]
    # localstripe books its card charges with a fee of 0 (Stripe never does): the ledger then holds
    # either that 0 (read from Stripe by the sweep or webhook) or our list-price estimate (the
    # submit, whose confirm does not expand the balance transaction). Nothing else is right.
    allowed = {0, estimated_fee(payment.method.type, payment.amount_minor)}
    return [] if payment.fee_minor in allowed else [f"{name}: fee {payment.fee_minor}, Stripe reports none"]


def payable_problems(ledger: Ledger, side: StripeSide, payable_id: str) -> list[str]:
    """How the payable's ledger disagrees with itself (the invariant) or with Stripe."""
    try:
        ledger.check_invariant(payable_id)
    except Exception as error:  # InvariantViolation, or a payable that does not exist
        return [f"payable {payable_id}: {error}"]
    history = ledger.get_payable_history(payable_id)
    problems: list[str] = []
    for payment in history.payments:
        refunds = [r for r in history.refunds if r.payment_id == payment.payment_id]
        problems += payment_problems(side, payment, refunds)
    problems += _unknown_charges(side, payable_id, {p.processor_intent_id for p in history.payments})
    return problems


def _unknown_charges(side: StripeSide, payable_id: str, known_intents: set[str | None]) -> list[str]:
    """Money Stripe took for this payable under an intent no ledger payment names."""
    problems: list[str] = []
    for intent_id, charges in side.charges_by_intent.items():
        if intent_id in known_intents or not any(c.status == "succeeded" for c in charges):
            continue
        intent = side.intent(intent_id)
        metadata = (intent.to_dict().get("metadata") or {}) if intent is not None else {}
        if metadata.get("payable_id") == payable_id:
            problems.append(f"payable {payable_id}: Stripe charged intent {intent_id}, which the ledger does not know")
    return problems


def reconciliation_problems(stack: LocalStack, payable_ids: Iterable[str], started_at: float | None) -> list[str]:
    """Every disagreement between the ledger and Stripe for these payables (empty when none)."""
    wanted = sorted(set(payable_ids))
    if not wanted:
        return []
    side = StripeSide.since(stack, started_at)
    problems: list[str] = []
    for payable_id in wanted:
        problems += payable_problems(stack.ledger, side, payable_id)
    return problems


def assert_reconciled(
    stack: LocalStack, payable_ids: Iterable[str], started_at: float | None = None, settle_within: float = 0.0
) -> None:
    """Fail unless the ledger agrees with Stripe for every payment of these payables.

    ``settle_within``: seconds to wait for Stripe's webhooks still in flight (the emulator sends
    them about a second after the event, as Stripe sends them asynchronously) before failing.
    """
    wanted = list(payable_ids)
    deadline = time.monotonic() + settle_within
    while True:
        problems = reconciliation_problems(stack, wanted, started_at)
        if not problems:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"ledger and Stripe disagree (waited {settle_within:.0f}s for webhooks):\n  " + "\n  ".join(problems)
            )
        time.sleep(0.25)


@contextlib.contextmanager
def touched_payables() -> Iterator[set[str]]:
    """The payables created, reserved against or refunded inside the block, by the tests or by the
    handlers the local stack runs in this process (the ledger's own methods, wrapped, unchanged)."""
    touched: set[str] = set()

    def recording(name: str, payable_of: Callable[[Any], str]) -> Callable[..., Any]:
        real = getattr(Ledger, name)

        @functools.wraps(real)
        def wrapper(self: Ledger, first: Any, *args: Any, **kwargs: Any) -> Any:
            answer = real(self, first, *args, **kwargs)
            # Once it worked (a refused payable was never created); a repeated creation answers
            # with the payable made the first time, under its own id.
            stored = answer if name == "create_payable" and answer is not None else first
            touched.add(payable_of(stored))
            return answer

        return wrapper

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Ledger, "create_payable", recording("create_payable", lambda p: p.payable_id))
        patch.setattr(Ledger, "reserve", recording("reserve", lambda p: p.payable_id))
        patch.setattr(Ledger, "open_refund", recording("open_refund", lambda r: r.payable_id))
        yield touched
