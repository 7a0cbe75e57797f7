"""The money rules of one payable, checked against its payments and refunds."""

from __future__ import annotations

from firmpay.ledger.errors import InvariantViolation
from firmpay.ledger.payables import PayablesLedger
from firmpay.models.ledger import Payable, Payment, PaymentStatus, Refund, RefundStatus


def _refund_problems(payable: Payable, payments: list[Payment], refunds: list[Refund]) -> list[str]:
    problems: list[str] = []
    succeeded = sum(r.amount_minor for r in refunds if r.status is RefundStatus.SUCCEEDED)
    if succeeded != payable.refunded_minor:
        problems.append(f"refunded {payable.refunded_minor} != succeeded refunds {succeeded}")
    for p in payments:
        mine = [r for r in refunds if r.payment_id == p.payment_id]
        done = sum(r.amount_minor for r in mine if r.status is RefundStatus.SUCCEEDED)
        held = sum(r.amount_minor for r in mine if r.status is RefundStatus.PENDING)
        if (p.refunded_minor, p.refunding_minor) != (done, held):
            problems.append(
                f"payment {p.payment_id}: refunded {p.refunded_minor} / refunding {p.refunding_minor} "
                f"!= refunds {done} / {held}"
            )
        if p.refunded_minor + p.refunding_minor > (p.amount_minor if p.status is PaymentStatus.SUCCEEDED else 0):
            problems.append(f"payment {p.payment_id} refunds more than it paid")
    return problems


class InvariantLedger(PayablesLedger):
    """The invariant check."""

    def check_invariant(self, payable_id: str) -> Payable:
        """Check the money rules of one payable against its payments; raise ``InvariantViolation``.

        - ``total = paid + pending + balance``, each counter >= 0;
        - ``pending`` equals the sum of its reserved payments;
        - ``paid`` equals the sum of its succeeded payments less what was refunded;
        - refunds: a trust request's refunds are trust disbursements, outside ``total = paid +
          pending + balance`` (it reads ``... + refunded``), a bill's went back to its balance;
          ``refunded`` equals the sum of its succeeded refunds, each payment's ``refunded`` and
          ``refunding`` equal its succeeded and pending refunds and never exceed what it paid.
        """
        history = self.get_payable_history(payable_id)
        payable, payments = history.payable, history.payments
        problems: list[str] = []
        disbursed = payable.refunded_minor if payable.kind == "trust_request" else 0
        if payable.total_minor != payable.paid_minor + payable.pending_minor + payable.balance_minor + disbursed:
            problems.append(
                f"total {payable.total_minor} != paid {payable.paid_minor} + pending "
                f"{payable.pending_minor} + balance {payable.balance_minor}"
                + (f" + disbursed {disbursed}" if disbursed else "")
            )
        problems += _refund_problems(payable, payments, history.refunds)
        for name in ("paid_minor", "pending_minor", "balance_minor", "refunded_minor"):
            if getattr(payable, name) < 0:
                problems.append(f"{name} is negative")
        reserved = sum(p.amount_minor for p in payments if p.reserved)
        if reserved != payable.pending_minor:
            problems.append(f"pending {payable.pending_minor} != reserved payments {reserved}")
        settled = sum(p.amount_minor - p.refunded_minor for p in payments if p.status is PaymentStatus.SUCCEEDED)
        if settled != payable.paid_minor:
            problems.append(f"paid {payable.paid_minor} != settled payments {settled}")
        if problems:
            raise InvariantViolation(f"payable {payable_id}: " + "; ".join(problems))
        return payable
