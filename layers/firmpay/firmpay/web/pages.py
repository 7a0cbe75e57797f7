"""The hosted pay page: its view model, and rendering with Jinja2 (autoescaped, lazily loaded).

jinja2 is imported on the first page render only: the JSON route and the error answers of the
same function never pay for it at cold start.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from firmpay.config import get_settings
from firmpay.ledger import LinkContext
from firmpay.models.pay import FirmView, LineItemView, PayableView, PayLinkResponse
from firmpay.money import MINIMUM_CHARGE_MINOR, Locale
from firmpay.payments.methods import PaymentMethodPolicy, offered_methods, registered
from firmpay.payments.presenters import money_view

if TYPE_CHECKING:
    import jinja2

    from firmpay.models.echeck import MandateOut
    from firmpay.payments.method_removal import RemovalView

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

_MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
}


def format_date(day: date, locale: Locale) -> str:
    """``November 2, 2026`` (en-US), ``2 November 2026`` (en-CA), ``2 novembre 2026`` (fr-CA)."""
    if locale == "fr-CA":
        return f"{day.day} {_MONTHS['fr'][day.month - 1]} {day.year}"
    if locale == "en-CA":
        return f"{_MONTHS['en'][day.month - 1]} {day.day}, {day.year}"
    return f"{_MONTHS['en'][day.month - 1]} {day.day}, {day.year}"


def pay_view(context: LinkContext) -> PayLinkResponse:
    """What the client sees behind a pay link, in the firm's currency and locale."""
    firm, payable = context.firm, context.payable
    locale = firm.locale

    def money(amount: int) -> Any:
        return money_view(amount, payable.currency, locale)

    return PayLinkResponse(
        firm=FirmView(name=firm.name, country=firm.country, currency=firm.currency, locale=locale),
        payable=PayableView(
            kind=payable.kind,
            number=payable.number,
            issued_on=payable.issued_on,
            due_on=payable.due_on,
            memo=payable.memo,
            line_items=[
                LineItemView(description=i.description, amount=money(i.amount_minor)) for i in payable.line_items
            ],
            total=money(payable.total_minor),
            paid=money(payable.paid_minor),
            pending=money(payable.pending_minor),
            balance=money(payable.balance_minor),
            status=payable.status.value,
            destination=payable.destination,
        ),
        client_name=context.client.name,
        payment_options=[policy.key for policy in offered_methods(firm, payable)],
        minimum_amount=money(MINIMUM_CHARGE_MINOR),
    )


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        # A method may ship its page section beside its own module (``PageSection.directory``).
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(WEB / "templates"), jinja2.FunctionLoader(_section_of_registered_method)]
        ),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = jinja2.pass_context(_asset_in_context)
    return env


def _section_of_registered_method(name: str) -> str | None:
    """The source of a page section a registered method ships in its own directory."""
    for policy in registered():
        section = policy.section
        if section.template == name and section.directory is not None:
            return (section.directory / name).read_text(encoding="utf-8")
    return None


def page_sections(context: LinkContext) -> list[PaymentMethodPolicy]:
    """The methods whose sections the pay page shows, in order (what ``payment_options`` lists)."""
    return offered_methods(context.firm, context.payable)


def _asset_in_context(context: Any, name: str) -> str:
    """``asset('pay.css')`` in a template: the asset's URL under the page's ``base_path``."""
    return str(context.get("base_path") or "") + asset_url(name)


@lru_cache(maxsize=16)
def asset_url(name: str) -> str:
    """``/assets/pay.css?v=<hash>``: the content hash lets browsers cache assets safely."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]
    return f"/assets/{name}?v={digest}"


def read_asset(name: str) -> tuple[bytes, str] | None:
    """An allow-listed static file and its content type (no paths, no other names)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in ASSET_TYPES or not path.is_file():
        return None
    return path.read_bytes(), ASSET_TYPES[path.suffix]


def render_pay_page(context: LinkContext, base_path: str = "") -> str:
    """The pay page; ``base_path`` ("/{stage}" or "") prefixes its assets and its scripts' API calls."""
    view = pay_view(context)
    settings = get_settings()
    locale = context.firm.locale
    methods = page_sections(context)
    return (
        environment()
        .get_template("pay.html")
        .render(
            view=view,
            lang="fr-CA" if locale == "fr-CA" else "en",
            issued=format_date(view.payable.issued_on, locale),
            due=format_date(view.payable.due_on, locale),
            firm=context.firm,
            payable=context.payable,
            settings=settings,
            country=context.firm.country,
            base_path=base_path,
            sections=[policy.section.template for policy in methods],
            head_scripts=[getattr(settings, name) for policy in methods for name in policy.section.head_scripts],
        )
    )


def render_link_error(status: int, offer_new_link: bool, base_path: str = "") -> str:
    return (
        environment()
        .get_template("link_error.html")
        .render(status=status, offer_new_link=offer_new_link, lang="en", base_path=base_path)
    )


RemovalPageState = Literal["confirm", "removed", "already_removed", "retry", "not_found"]


def render_method_removal(state: RemovalPageState, view: RemovalView | None = None, base: str = "") -> str:
    """The page behind a "Remove it" link of a confirmation email, in the firm's language."""
    return (
        environment()
        .get_template("method_removal.html")
        .render(
            state=state,
            lang="fr-CA" if view is not None and view.firm.locale == "fr-CA" else "en",
            firm_name=view.firm.name if view else "",
            label=view.method.summary.label() if view else "",
            base_path=base,
        )
    )


def render_mandate(mandate: MandateOut, base_path: str = "") -> str:
    """A printable page of the authorization (no scripts; the firm prints it or saves it as PDF).

    ``base_path``: "/{stage}" when served from API Gateway's own URL (its stylesheet lives there).
    """
    return environment().get_template("mandate.html").render(m=mandate, lang="en", base_path=base_path)
