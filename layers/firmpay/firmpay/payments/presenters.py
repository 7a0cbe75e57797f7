"""What the pay page shows for a review and a payment result (shared by card and eCheck)."""

from __future__ import annotations

from firmpay.i18n import N_, active_language
from firmpay.i18n import gettext as _
from firmpay.models.echeck import MoneyView, PaymentResultResponse, ReviewResponse
from firmpay.models.ledger import Payment, PaymentStatus, Review
from firmpay.money import Locale, Money
from firmpay.payments.checkout import store_method_consent
from firmpay.payments.methods import method


def money_view(amount_minor: int, currency: str, locale: Locale) -> MoneyView:
    """An amount for a page: formatted in the page's language (firmpay.i18n), else ``locale``."""
    money = Money(amount_minor=amount_minor, currency=currency)
    return MoneyView(amount_minor=amount_minor, currency=currency, formatted=money.format(active_language() or locale))


def destination_text(review_or_payment: Review | Payment) -> str:
    account = review_or_payment.destination_account
    values = {"account": account.name, "last4": account.last4}
    if review_or_payment.destination == "trust":
        return _("Deposit into the firm's trust account ({account} \u2022\u2022\u2022\u2022{last4})").format(**values)
    return _("Payment to the firm's operating account ({account} \u2022\u2022\u2022\u2022{last4})").format(**values)


def review_response(review: Review, kind: str, number: str, firm_name: str, locale: Locale) -> ReviewResponse:
    consent_text, consent_version = store_method_consent(firm_name)
    return ReviewResponse(
        review_id=review.review_id,
        amount=money_view(review.amount_minor, review.currency, locale),
        payable_kind=kind,
        payable_number=number,
        destination=review.destination,
        destination_text=destination_text(review),
        method_label=review.method.label(),
        authorization_text=review.mandate_text,
        authorization_version=_mandate_version(review) if review.mandate_text else None,
        store_consent_text=consent_text,
        store_consent_version=consent_version,
        expires_at=review.expires_at.isoformat(),
    )


def _mandate_version(review: Review) -> str | None:
    terms = method(review.method.type).mandate
    return terms.version if terms else None


def result_message(payment: Payment) -> str:
    match payment.status:
        case PaymentStatus.SUCCEEDED:
            return _("Payment successful. A confirmation email is on its way.")
        case PaymentStatus.PROCESSING:
            return _(
                "Payment submitted. The withdrawal is processing and usually completes within a few "
                "business days. A confirmation email is on its way."
            )
        case PaymentStatus.REQUIRES_ACTION:
            return _("Your bank asks you to confirm this payment.")
        case PaymentStatus.FAILED:
            declined = method(payment.method.type).failure_message(payment.failure_code)
            return _(declined or N_("The payment was declined. Nothing was charged."))
        case PaymentStatus.CANCELED:
            return _("The payment was cancelled. Nothing was charged.")
        case _:
            return _("Your payment is being processed. This page will update in a moment.")


def payment_result(
    payment: Payment, balance_minor: int, locale: Locale, client_secret: str | None = None
) -> PaymentResultResponse:
    return PaymentResultResponse(
        payment_id=payment.payment_id,
        status=payment.status.value,
        reference=payment.reference,
        amount=money_view(payment.amount_minor, payment.currency, locale),
        method_label=payment.method.label(),
        balance=money_view(balance_minor, payment.currency, locale),
        message=result_message(payment),
        client_secret=client_secret if payment.status is PaymentStatus.REQUIRES_ACTION else None,
        failure_code=payment.failure_code,
    )
