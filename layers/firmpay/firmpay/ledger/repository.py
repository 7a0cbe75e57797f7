"""The ledger: the only code that reads and writes the DynamoDB table.

Money moves only through conditional writes and transactions, so ``total = paid + pending +
balance`` holds for every payable at every moment, whatever runs concurrently:

- ``reserve``: balance -> pending, and the PENDING payment row, in one transaction
  (condition ``balance >= amount``; the payment row must not exist yet).
- ``settle``: pending -> paid, the payment row -> succeeded (condition: it was still reserved).
- ``release``: pending -> balance, the payment row -> failed/canceled (same condition).
- ``open_refund``: the PENDING refund row, and its amount held on the succeeded payment
  (``refunding_minor``, conditional on the amounts read), in one transaction.
- ``settle_refund``: the refund -> succeeded; on the payment refunding -> refunded; on the payable
  paid goes down (and a bill's balance up). ``release_refund``: the hold is given back.

``Ledger`` is one facade over a class per item kind (``payables``, ``links``, ``payments``,
``refunds``, ``methods``, ``plans``, ``limits``, ``emails``, ``invariant``, ...), all built on
``base.LedgerBase`` (the table, item building, reads, transactions with their retries, index walks).
"""

from firmpay.ledger.emails import EmailsLedger
from firmpay.ledger.firms import FirmsLedger
from firmpay.ledger.invariant import InvariantLedger
from firmpay.ledger.limits import DailyLimit, LimitsLedger
from firmpay.ledger.links import LinkContext, LinksLedger
from firmpay.ledger.methods import MethodsLedger
from firmpay.ledger.payables import PayableHistory, PayablesLedger
from firmpay.ledger.payments import PaymentsLedger
from firmpay.ledger.plans import PlansLedger
from firmpay.ledger.refunds import RefundsLedger
from firmpay.ledger.reviews import CheckoutState, ReviewsLedger

__all__ = ["CheckoutState", "DailyLimit", "Ledger", "LinkContext", "PayableHistory"]


class Ledger(
    PaymentsLedger,
    InvariantLedger,
    PayablesLedger,
    LimitsLedger,
    RefundsLedger,
    FirmsLedger,
    LinksLedger,
    ReviewsLedger,
    MethodsLedger,
    PlansLedger,
    EmailsLedger,
):
    """Repository of firms, clients, payables, links, payments, methods and reviews."""
