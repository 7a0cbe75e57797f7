"""What the pay page shows for a review and a payment result (shared by card and eCheck)."""

from __future__ import annotations

from firmpay.models.echeck import MoneyView, PaymentResultResponse, ReviewResponse
from firmpay.models.ledger import Payment, PaymentStatus, Review
from firmpay.money import Locale, Money
from firmpay.payments.checkout import STORE_METHOD_TEXT, STORE_METHOD_TEXT_VERSION
from firmpay.payments.methods import method


def money_view(amount_minor: int, currency: str, locale: Locale) -> MoneyView:
    money = Money(amount_minor=amount_minor, currency=currency)
    return MoneyView(amount_minor=amount_minor, currency=currency, formatted=money.format(locale))


def destination_text(review_or_payment: Review | Payment) -> str:
    account = review_or_payment.destination_account
    if review_or_payment.destination == "trust":
        return f"Deposit into the firm's trust account ({account.name} \u2022\u2022\u2022\u2022{account.last4})"
    return f"Payment to the firm's operating account ({account.name} \u2022\u2022\u2022\u2022{account.last4})"


def review_response(review: Review, kind: str, number: str, firm_name: str, locale: Locale) -> ReviewResponse:
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
        store_consent_text=STORE_METHOD_TEXT.format(firm=firm_name),
        store_consent_version=STORE_METHOD_TEXT_VERSION,
        expires_at=review.expires_at.isoformat(),
    )


def _mandate_version(review: Review) -> str | None:
    terms = method(review.method.type).mandate
    return terms.version if terms else None


def result_message(payment: Payment) -> str:
    match payment.status:
        case PaymentStatus.SUCCEEDED:
            return "Payment successful. A confirmation email is on its way."
        case PaymentStatus.PROCESSING:
            return (
                "Payment submitted. The withdrawal is processing and usually completes within a few "
                "business days. A confirmation email is on its way."
            )
        case PaymentStatus.REQUIRES_ACTION:
            return "Your bank asks you to confirm this payment."
        case PaymentStatus.FAILED:
            declined = method(payment.method.type).failure_message(payment.failure_code)
            return declined or "The payment was declined. Nothing was charged."
        case PaymentStatus.CANCELED:
            return "The payment was cancelled. Nothing was charged."
        case _:
            return "Your payment is being processed. This page will update in a moment."


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
