"""The payment methods FirmPay offers: one policy per method, in one registry.

``method(key)`` is the policy of a stored method type (``MethodSummary.type``: ``card``,
``echeck``...), ``offered_methods(firm, payable)`` what the pay page offers, in page order. The
checkout pipeline, autopay and plans, the webhook, the emails and the pay page ask the policy
(``PaymentMethodPolicy`` in ``methods.base``) instead of comparing method names.

How to add a method (Canadian pre-authorized debit ``acss_debit``, a wallet...):

1. Write ``methods/<stripe_type>.py`` with one policy: its ledger ``key`` (stored for ever: pick it
   once), Stripe's ``processor_type``, who may use it (``Eligibility``: countries, currencies,
   payable kinds), its fee (``FeeSchedule``), its mandate if it is a debit (``MandateTerms``:
   texts by language, version, ``processor_options`` such as PAD's ``mandate_options``), its
   return codes (``ReturnCodes``) and ``settles_later`` for debits that settle days later, how it
   is stored (``Storage``), its labels (en, fr) and its page section (``PageSection``). Override
   the policy's methods for rules that read the firm (limits, errors). Register it in
   ``_BUILT_IN`` below, in the order the page shows it.
2. Write its pay-page section template (``web/templates/_<name>_section.html``) and script, which
   collect the method (Stripe.js, a bank link...) and call its routes.
3. Its routes' use cases call the pipeline: ``checkout.create_review`` with the method's summary,
   then ``checkout.submit`` (or the steps it is made of, when the method keeps something of its
   own at submit, as ``payments.echeck`` does with the Plaid link). Review, reserve, confirm,
   settle or release, the emails, autopay and plans, refunds and the webhook need nothing new.

Nothing else compares method names; ``tests/unit/test_method_registry.py`` registers a fake
third method at run time and checks that review, submit, autopay, the emails and the page take it.
"""

from __future__ import annotations

from firmpay.models.ledger import Firm, Payable
from firmpay.payments.methods.base import PaymentMethodPolicy
from firmpay.payments.methods.card import CARD
from firmpay.payments.methods.us_bank_account import US_BANK_ACCOUNT

__all__ = [
    "CARD",
    "US_BANK_ACCOUNT",
    "PaymentMethodPolicy",
    "UnknownMethod",
    "method",
    "offered_methods",
    "register",
    "registered",
    "unregister",
]

_BUILT_IN: tuple[PaymentMethodPolicy, ...] = (CARD, US_BANK_ACCOUNT)
_REGISTRY: dict[str, PaymentMethodPolicy] = {policy.key: policy for policy in _BUILT_IN}


class UnknownMethod(KeyError):
    """No method of this key is registered."""


def method(key: str) -> PaymentMethodPolicy:
    """The policy of the method stored as ``key`` (``MethodSummary.type``)."""
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownMethod(key) from None


def registered() -> tuple[PaymentMethodPolicy, ...]:
    """Every registered method, in the order the pay page shows them."""
    return tuple(_REGISTRY.values())


def offered_methods(firm: Firm, payable: Payable | None = None) -> list[PaymentMethodPolicy]:
    """The methods this firm's clients may use (for this payable, when given), in page order."""
    return [policy for policy in _REGISTRY.values() if policy.offered_to(firm, payable)]


def register(policy: PaymentMethodPolicy) -> None:
    """Add a method at run time (after the built-in ones); its key must be new."""
    if policy.key in _REGISTRY:
        raise ValueError(f"a payment method {policy.key!r} is already registered")
    _REGISTRY[policy.key] = policy


def unregister(key: str) -> None:
    """Remove a method added with ``register`` (the built-in ones stay)."""
    if any(policy.key == key for policy in _BUILT_IN):
        raise ValueError(f"{key!r} is a built-in payment method")
    _REGISTRY.pop(key, None)
