"""Sends the emails that are not tied to a payment state: the bill or trust request itself."""

from __future__ import annotations

from firmpay.config import get_settings
from firmpay.emails.render import build_message, render
from firmpay.errors import EmailRejected, ServiceUnavailable
from firmpay.gateways.ses import MailOutcomeUnknown, MailRejected, MailUnavailable, send_raw
from firmpay.models.ledger import Client, Firm, Payable


def payable_context(firm: Firm, client: Client, payable: Payable, pay_url: str) -> dict[str, object]:
    from firmpay.web.pages import format_date

    locale = firm.locale
    return {
        "lang": "fr" if locale == "fr-CA" else "en",
        "title": f"{firm.name} - {payable.number}",
        "preheader": f"{payable.money(payable.balance_minor).format(locale)} due {format_date(payable.due_on, locale)}",
        "firm_name": firm.name,
        "client_name": client.name,
        "is_trust": payable.kind == "trust_request",
        "number": payable.number,
        "issued": format_date(payable.issued_on, locale),
        "due": format_date(payable.due_on, locale),
        "memo": payable.memo,
        "items": [
            {"description": i.description, "amount": payable.money(i.amount_minor).format(locale)}
            for i in payable.line_items
        ],
        "amount_due": payable.money(payable.balance_minor).format(locale),
        "pay_url": pay_url,
    }


class SesMailer:
    """``PayLinkMailer`` over SES v2."""

    def send_payable(self, firm: Firm, client: Client, payable: Payable, pay_url: str) -> str:
        subject, html, text = render("payable", **payable_context(firm, client, payable, pay_url))
        message = build_message(
            subject,
            html,
            text,
            get_settings().mail_from,
            firm.name,
            client.email,
            firm.reply_to_email,
            reference=payable.number,
        )
        try:
            return send_raw(message)
        except (MailUnavailable, MailOutcomeUnknown) as error:
            # The new link is issued either way; the firm retries the send (a timeout may mean
            # SES did send it: then the client gets the same bill twice, the newer link working).
            raise ServiceUnavailable("The mail service did not answer; please send again in a minute.") from error
        except MailRejected as error:
            raise EmailRejected() from error
