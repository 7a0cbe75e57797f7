"""Confirmation emails of payment state changes, each sent exactly once.

SES has no idempotency token and the stream delivers at least once, so every (payment, kind) has a
sent-once marker in the ledger (``EMAIL#<payment>`` / ``<kind>``, or ``<kind>#<refund_id>`` for a
refund's email, one per refund; kept ~400 days by TTL) that moves
``claimed`` -> ``sending`` -> ``sent`` under a 60 s lease:

1. **claim** (a conditional put): succeeds only if there is no marker yet, or a ``claimed`` one
   whose lease ran out (an attempt that died before reaching SES). A message needing no fresh pay
   link is rendered first and claimed straight into ``sending``; one that needs a link is claimed,
   then the link is issued (which revokes the previous one, so never for an email already sent),
   then marked ``sending``. A live lease held by another attempt fails the record (retried);
2. **send** through SES; an answer saying it was not accepted (throttling, 5xx, after three tries)
   or no connection at all gives the claim back (``claimed``, lease 0) and fails the record, so
   the stream's retry sends it. No answer at all (a read timeout) leaves it ``sending``;
3. **mark sent** with SES's message id. If that write fails, the record still counts as done.

Kill points: before the stream record is handled, or after the claim but before SES, the retry
sends the email once. After SES accepted it, the marker says ``sending`` or ``sent`` and nothing
sends it again. The one uncertain case is an attempt killed *during* the SES call, or an SES
call that times out: the marker stays ``sending`` and the email is not sent again (logged as an error, and the marker can be
listed and replayed by an operator); a lost receipt is recoverable, a duplicate is not.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

from firmpay.emails.notifications import (
    REFUND_KINDS,
    EmailKind,
    PaymentChange,
    emails_for,
    marker_key,
    return_reason,
)
from firmpay.emails.render import build_message, render
from firmpay.gateways.ses import MailOutcomeUnknown, MailRejected
from firmpay.ledger import Ledger
from firmpay.models.ledger import Client, Firm, Payable, Payment
from firmpay.money import Locale, Money
from firmpay.observability import logger
from firmpay.payments.links import issue_pay_link
from firmpay.payments.method_removal import RemovalOffer, issue_removal_link, removable_method
from firmpay.payments.methods import method

LEASE_SECONDS = 60
MARKER_TTL_SECONDS = 400 * 24 * 3600
ENGLISH_ONLY = frozenset({EmailKind.CLIENT_SUBMITTED, EmailKind.FIRM_RETURNED})  # eCheck: US firms only
# The client's emails after a payment that may have stored its method: they offer a removal link.
OFFERS_REMOVAL = frozenset({EmailKind.CLIENT_RECEIVED, EmailKind.CLIENT_SUBMITTED})

_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029\x85]+")

MailSender = Callable[[EmailMessage], str]
"""Sends one MIME message, returns the provider's message id (``firmpay.gateways.ses.send_raw``)."""


class EmailInFlight(Exception):
    """Another attempt holds the claim on this email right now; the record is retried later."""


@dataclass(frozen=True)
class EmailOutcome:
    kind: EmailKind
    result: Literal["sent", "already_sent", "rejected", "uncertain"]
    message_id: str | None = None


@dataclass(frozen=True)
class MailSettings:
    """What the emails need from the deployment: sender address, pay link base URL and lifetime."""

    mail_from: str
    public_base_url: str
    pay_link_days: int


def send_payment_emails(
    ledger: Ledger, change: PaymentChange, send: MailSender, settings: MailSettings, now: datetime
) -> list[EmailOutcome]:
    """Send the emails ``change`` produces (none for most changes), each at most once per marker."""
    kinds = emails_for(change)
    if not kinds:
        return []
    payment = change.payment
    firm, client, payable = ledger.get_payment_parties(payment)
    return [
        _send_once(ledger, kind, marker_key(kind, payment), payment, firm, client, payable, send, settings, now)
        for kind in kinds
    ]


def _send_once(
    ledger: Ledger,
    kind: EmailKind,
    marker: str,
    payment: Payment,
    firm: Firm,
    client: Client,
    payable: Payable,
    send: MailSender,
    settings: MailSettings,
    now: datetime,
) -> EmailOutcome:
    claim_id = uuid.uuid4().hex
    epoch = int(now.timestamp())
    needs_link = kind.needs_pay_link and payable.open_for_payment
    stored = removable_method(ledger, payment) if kind in OFFERS_REMOVAL else None
    ready = not needs_link and stored is None
    message = payment_email(kind, firm, client, payable, payment, settings.mail_from, None) if ready else None
    # A ready message is claimed straight into "sending"; one that needs a fresh pay link is
    # claimed first (issuing the link revokes the previous one, so never for an email already sent).
    claim = ledger.claim_email(
        payment.payment_id,
        marker,
        claim_id,
        epoch,
        LEASE_SECONDS,
        epoch + MARKER_TTL_SECONDS,
        status="claimed" if message is None else "sending",
    )
    if claim == "done":
        return EmailOutcome(kind, "already_sent")
    if claim == "uncertain":
        logger.warning(
            "another attempt handed this email to SES (or vanished doing so); not sent again",
            extra={"kind": marker, "payment_id": payment.payment_id},
        )
        return EmailOutcome(kind, "uncertain")
    if claim == "busy":
        raise EmailInFlight(f"{marker} of payment {payment.payment_id} is being sent by another attempt")
    try:
        if message is None:
            pay_url = None
            if needs_link:
                pay_url, _ = issue_pay_link(ledger, payable, settings.public_base_url, now, settings.pay_link_days)
            removal = None
            if stored is not None:  # like the pay link: issued once the claim is ours, never for a sent email
                removal = issue_removal_link(ledger, stored, payment.payment_id, settings.public_base_url, now)
            message = payment_email(kind, firm, client, payable, payment, settings.mail_from, pay_url, removal)
            if not ledger.mark_email_sending(payment.payment_id, marker, claim_id, epoch):
                raise EmailInFlight(f"{marker} of payment {payment.payment_id}: the claim was lost before sending")
        message_id = send(message)
    except MailOutcomeUnknown:
        # SES may have accepted it: the marker stays "sending" and no retry sends it again.
        logger.error(
            "no answer from SES; the email may or may not have been sent and is not sent again",
            extra={"kind": marker, "payment_id": payment.payment_id},
        )
        return EmailOutcome(kind, "uncertain")
    except MailRejected as error:
        ledger.finish_email(payment.payment_id, marker, claim_id, "rejected", str(error), now)
        logger.error("SES refused a confirmation email", extra={"kind": marker, "payment_id": payment.payment_id})
        return EmailOutcome(kind, "rejected")
    except BaseException:
        ledger.release_email_claim(payment.payment_id, marker, claim_id)
        raise
    # SES accepted it: whatever happens to the marker now, this record is done (a retry would
    # find "sending" and never send it again).
    try:
        if not ledger.finish_email(payment.payment_id, marker, claim_id, "sent", message_id, now):
            logger.warning("sent an email whose claim had expired", extra={"kind": marker})
    except Exception:
        logger.exception(
            "email sent but its marker stays 'sending'", extra={"kind": marker, "payment_id": payment.payment_id}
        )
    logger.info("confirmation email sent", extra={"kind": marker, "payment_id": payment.payment_id})
    return EmailOutcome(kind, "sent", message_id)


# -- content ---------------------------------------------------------------------------------------

_PAYABLE_WORDS: dict[str, dict[str, tuple[str, str]]] = {  # (label, phrase in a sentence)
    "en": {"bill": ("Bill", "bill"), "trust_request": ("Trust request", "trust request")},
    "fr": {
        "bill": ("Facture", "la facture"),
        "trust_request": ("Demande de dépôt en fidéicommis", "la demande de dépôt en fidéicommis"),
    },
}
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "amount": "Amount",
        "method": "Payment method",
        "date": "Date",
        "reference": "Reference number",
        "balance": "Remaining balance",
        "client": "Client",
        "deposit": "Deposit account",
        "reason": "Reason",
        "pay": "Pay online now",
        "copy": "Or copy this link into your browser:",
        "client_footer": "Sent by FirmPay on behalf of {firm}. Reply to this email to reach the firm.",
        "firm_footer": "Sent by FirmPay to {firm} about a payment made through its pay links.",
        "refund_amount": "Refund amount",
        "original_payment": "Original payment",
        "refund_date": "Refund date",
        "refunded_total": "Total refunded on this payment",
    },
    "fr": {
        "amount": "Montant",
        "method": "Mode de paiement",
        "date": "Date",
        "reference": "Numéro de référence",
        "balance": "Solde restant",
        "client": "Client",
        "deposit": "Compte de dépôt",
        "reason": "Motif",
        "pay": "Payer en ligne",
        "copy": "Ou copiez ce lien dans votre navigateur :",
        "client_footer": "Envoyé par FirmPay au nom de {firm}. Répondez à ce courriel pour joindre le cabinet.",
        "firm_footer": "Envoyé par FirmPay à {firm} au sujet d'un paiement fait par ses liens de paiement.",
        "refund_amount": "Montant remboursé",
        "original_payment": "Paiement initial",
        "refund_date": "Date du remboursement",
        "refunded_total": "Total remboursé sur ce paiement",
    },
}


def payment_email_context(
    kind: EmailKind,
    firm: Firm,
    client: Client,
    payable: Payable,
    payment: Payment,
    pay_url: str | None,
    removal: RemovalOffer | None = None,
) -> dict[str, object]:
    """Everything the templates of ``kind`` show, formatted for the firm's locale."""
    from firmpay.web.pages import format_date

    locale = "en-US" if kind in ENGLISH_ONLY and firm.locale == "fr-CA" else firm.locale
    lang = "fr" if locale == "fr-CA" else "en"
    words = _WORDS[lang]
    label, phrase = _PAYABLE_WORDS[lang][payable.kind]
    amount = payment.amount.format(locale)
    account = payment.destination_account
    deposit_account = f"{account.name} \u2022\u2022\u2022\u2022{account.last4}"
    reason = return_reason(payment, lang)
    details: list[tuple[str, str]] = []
    if kind.to_firm:
        details.append((words["client"], client.name))
    details += [
        (label, payable.number),
        (words["amount"], amount),
        (words["method"], payment.method.label()),
    ]
    if kind.to_firm:
        details.append((words["deposit"], deposit_account))
    details += [
        (words["date"], format_date(payment.updated_at.date(), locale)),
        (words["reference"], payment.reference),
        (words["balance"], payable.money(payable.balance_minor).format(locale)),
    ]
    footer = words["firm_footer" if kind.to_firm else "client_footer"].format(firm=firm.name)
    refund: dict[str, object] = {}
    if kind in REFUND_KINDS:
        details, refund = _refund_context(words, label, payable, payment, locale)
        if kind.to_firm:
            details.insert(0, (words["client"], client.name))
    return {
        "lang": lang,
        "title": f"{firm.name} - {payable.number}",
        "preheader": f"{label} {payable.number}: {amount}",
        "firm_name": firm.name,
        "client_name": client.name,
        "is_trust": payment.destination == "trust",
        "payable_label": label,
        "payable_phrase": phrase,
        "number": payable.number,
        "amount": amount,
        # The method's name in the firm's language ("eCheck"), as its policy says it.
        "method_name": method(payment.method.type).label(lang),
        "deposit_account": deposit_account,
        "details": details,
        "returned": bool(payment.return_code),
        "failure_code": payment.failure_code or "",
        "origin": payment.origin,
        "return_code": payment.return_code or "",
        "reason": reason,
        "pay_url": pay_url,
        "removal_url": removal.url if removal else None,
        "removal_method": removal.method_label if removal else "",
        "link_sent": payable.open_for_payment,
        "pay_label": words["pay"],
        "copy_link_label": words["copy"],
        "colon": "\u00a0: " if lang == "fr" else ": ",
        "footer": footer,
    } | refund


def _refund_context(
    words: dict[str, str], label: str, payable: Payable, payment: Payment, locale: Locale
) -> tuple[list[tuple[str, str]], dict[str, object]]:
    """A refund email's details and what it adds: the refund (the payment's ``last_refund``) and
    where it leaves the payment and the payable."""
    from firmpay.web.pages import format_date

    refund = payment.last_refund
    if refund is None:
        raise ValueError(f"payment {payment.payment_id} has no refund to email about")
    refund_amount = Money(amount_minor=refund.amount_minor, currency=refund.currency).format(locale)
    refunded_total = Money(amount_minor=payment.refunded_minor, currency=payment.currency).format(locale)
    balance = payable.money(payable.balance_minor).format(locale)
    details = [
        (label, payable.number),
        (words["refund_amount"], refund_amount),
        (words["original_payment"], payment.amount.format(locale)),
        (words["method"], payment.method.label()),
        (words["refund_date"], format_date(refund.updated_at.date(), locale)),
        (words["reference"], payment.reference),
        (words["refunded_total"], refunded_total),
        (words["balance"], balance),
    ]
    return details, {
        "refund_amount": refund_amount,
        "refunded_total": refunded_total,
        "balance": balance,
        "preheader": f"{label} {payable.number}: {refund_amount}",
        # A bill's refund reopens its balance (owed again); a trust refund is a trust disbursement.
        "trust_disbursement": refund.booking == "trust_disbursement",
        "due_again": refund.booking == "balance_restored" and payable.open_for_payment,
        "by_card": method(payment.method.type).instrument == "card",
    }


def payment_email(
    kind: EmailKind,
    firm: Firm,
    client: Client,
    payable: Payable,
    payment: Payment,
    mail_from: str,
    pay_url: str | None = None,
    removal: RemovalOffer | None = None,
) -> EmailMessage:
    """The MIME message of one confirmation email (HTML and text parts)."""
    context = payment_email_context(kind, firm, client, payable, payment, pay_url, removal)
    subject, html, text = render(str(kind), **context)
    return build_message(
        _LINE_BREAKS.sub(" ", subject),  # a header is one line, whatever a name contains
        html,
        text,
        mail_from,
        firm.name,
        firm.reply_to_email if kind.to_firm else client.email,
        None if kind.to_firm else firm.reply_to_email,
        reference=payment.reference,
    )
