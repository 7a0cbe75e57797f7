"""Domain errors with stable codes, mapped to HTTP in one place.

Every error body is ``{"code": "...", "message": "..."}``; the code is part of the API contract
(documented in the OpenAPI document), the message is for people. Provider messages (Stripe, Plaid,
AWS) never reach clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from firmpay.i18n import N_

if TYPE_CHECKING:
    from firmpay.money import Locale, Money


class FirmPayError(Exception):
    """Base of every error a client may see. Subclasses fix ``status`` and ``code``.

    ``message`` is a catalogue string (firmpay/i18n.py): the answer carries it in the request's
    language. Values that vary go in ``params`` (``{name}`` in the message; amounts as ``Money``,
    formatted for the reader), never into the string itself, so the string stays translatable.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = N_("The request could not be processed.")

    def __init__(
        self, message: str | None = None, *, params: Mapping[str, str | Money] | None = None, **details: Any
    ) -> None:
        self.template = message or self.default_message
        self.params = dict(params or {})
        self.message = self._filled(self.template, "en-US")
        self.details = details
        super().__init__(self.message)

    def _filled(self, template: str, locale: Locale) -> str:
        if not self.params:
            return template
        values = {
            name: value if isinstance(value, str) else value.format(locale) for name, value in self.params.items()
        }
        return template.format(**values)

    def localized_message(self) -> str:
        """The message in the request's language (firmpay.i18n), its values formatted for it."""
        from firmpay.i18n import active_language, gettext

        return self._filled(gettext(self.template), active_language() or "en-US")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.localized_message()}
        if self.details:
            body["details"] = self.details
        return body


class InvalidRequest(FirmPayError):
    status, code = 422, "invalid_request"
    default_message = N_("Some fields are missing or invalid.")


class MalformedJson(FirmPayError):
    status, code = 400, "malformed_json"
    default_message = N_("The request body is not valid JSON.")


class NotFound(FirmPayError):
    status, code = 404, "not_found"
    default_message = N_("Not found.")


class Forbidden(FirmPayError):
    status, code = 403, "forbidden"
    default_message = N_("You are not allowed to do this.")


class PayLinkNotFound(FirmPayError):
    status, code = 404, "link_not_found"
    default_message = N_("This payment link is not valid.")


class PayLinkExpired(FirmPayError):
    status, code = 410, "link_expired"
    default_message = N_("This payment link has expired or was replaced.")


class PayableClosed(FirmPayError):
    status, code = 409, "payable_closed"
    default_message = N_("This bill is no longer open for payment.")


class AmountOverBalance(FirmPayError):
    status, code = 422, "amount_over_balance"
    default_message = N_("The amount is more than the balance due.")


class AmountBelowMinimum(FirmPayError):
    status, code = 422, "amount_below_minimum"
    default_message = N_("The amount is below the minimum payment.")


class AmountAboveMaximum(FirmPayError):
    status, code = 422, "amount_above_maximum"
    default_message = N_("The amount is above the most one payment can be; please pay in several parts.")


class CurrencyNotAccepted(FirmPayError):
    status, code = 422, "currency_mismatch"
    default_message = N_("The currency does not match the bill.")


class Conflict(FirmPayError):
    status, code = 409, "conflict"
    default_message = N_("The request conflicts with the current state; reload and try again.")


class ReviewExpired(FirmPayError):
    status, code = 409, "review_expired"
    default_message = N_("This review has expired or the balance changed; please review the payment again.")


class MethodNotAllowed(FirmPayError):
    status, code = 422, "method_not_offered"
    default_message = N_("This payment method is not offered for this payment.")


class CaptchaRequired(FirmPayError):
    status, code = 429, "captcha_required"
    default_message = N_("Please confirm you are not a robot, then try again.")


class RateLimited(FirmPayError):
    status, code = 429, "rate_limited"
    default_message = N_("Too many requests; please wait a moment and try again.")


class PaymentDeclined(FirmPayError):
    status, code = 402, "payment_declined"
    default_message = N_("The payment was declined.")


class ServiceUnavailable(FirmPayError):
    status, code = 503, "service_unavailable"
    default_message = N_("A service we depend on is not answering; nothing was charged. Please try again.")


class EmailRejected(FirmPayError):
    status, code = 422, "email_rejected"
    default_message = N_("The mail service refused to deliver to the client's email address; please check it.")


class InvalidPaymentMethod(FirmPayError):
    status, code = 422, "invalid_payment_method"
    default_message = N_("We could not read this card. Please enter the card details again.")


class EcheckNotOffered(FirmPayError):
    status, code = 422, "echeck_not_offered"
    default_message = N_("Payment by eCheck is offered to clients of US firms only; please pay by card.")


class EcheckLimitExceeded(FirmPayError):
    status, code = 422, "echeck_limit_exceeded"
    default_message = N_("This amount is over the firm's limit for eCheck payments; please pay by card.")


class MandateRequired(FirmPayError):
    status, code = 422, "mandate_required"
    default_message = N_("Please check the box authorizing the withdrawal before submitting.")


class BankAccountRefused(FirmPayError):
    status, code = 422, "bank_account_not_supported"
    default_message = N_("Please choose a checking or savings account.")


class BankLinkFailed(FirmPayError):
    status, code = 422, "bank_link_failed"
    default_message = N_("We could not connect to your bank. Please try again or pay by card.")


class WebhookSignatureInvalid(FirmPayError):
    status, code = 400, "invalid_signature"
    default_message = N_("The webhook signature is missing, invalid or too old.")


class MethodUnusable(FirmPayError):
    status, code = 422, "method_unusable"
    default_message = N_("This stored payment method was removed or can no longer be charged.")


class MethodWithoutConsent(FirmPayError):
    status, code = 422, "method_without_consent"
    default_message = N_("The client did not consent to this payment method being charged for future payments.")


class IdempotencyKeyReused(FirmPayError):
    status, code = 409, "idempotency_key_reused"
    default_message = N_("This idempotency key was already used for a different request.")


class PaymentNotRefundable(FirmPayError):
    status, code = 409, "payment_not_refundable"
    default_message = N_("Only a succeeded payment can be refunded.")


class RefundExceedsPayment(FirmPayError):
    status, code = 422, "refund_exceeds_payment"
    default_message = N_("A refund cannot exceed what was paid less what was already refunded.")


ERROR_CLASSES: tuple[type[FirmPayError], ...] = (
    EmailRejected,
    InvalidPaymentMethod,
    EcheckNotOffered,
    EcheckLimitExceeded,
    MandateRequired,
    BankAccountRefused,
    BankLinkFailed,
    InvalidRequest,
    MalformedJson,
    NotFound,
    Forbidden,
    PayLinkNotFound,
    PayLinkExpired,
    PayableClosed,
    AmountOverBalance,
    AmountBelowMinimum,
    AmountAboveMaximum,
    CurrencyNotAccepted,
    Conflict,
    ReviewExpired,
    MethodNotAllowed,
    CaptchaRequired,
    RateLimited,
    PaymentDeclined,
    ServiceUnavailable,
    WebhookSignatureInvalid,
    PaymentNotRefundable,
    RefundExceedsPayment,
    MethodUnusable,
    MethodWithoutConsent,
    IdempotencyKeyReused,
)
