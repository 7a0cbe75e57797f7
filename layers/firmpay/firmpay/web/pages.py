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

from firmpay import i18n
from firmpay.config import get_settings
from firmpay.i18n import Language, active_language
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


def format_date(day: date, locale: Locale) -> str:
    """CLDR's long date, by Babel: ``November 2, 2026`` (en-US, en-CA), ``2 novembre 2026`` (fr-CA)."""
    from babel.dates import format_date as babel_format_date

    return str(babel_format_date(day, "long", locale=locale.replace("-", "_")))


def amount_input(amount_minor: int, locale: Locale) -> str:
    """An amount as the client would type it: ``3500.50``, or ``3500,50`` in French."""
    major, minor = divmod(amount_minor, 100)
    return f"{major}{',' if locale == 'fr-CA' else '.'}{minor:02d}"


def pay_view(context: LinkContext) -> PayLinkResponse:
    """What the client sees behind a pay link, in the firm's currency and the reader's language."""
    firm, payable = context.firm, context.payable
    locale = active_language() or firm.locale

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
        extensions=["jinja2.ext.i18n"],
    )
    # The active language is read at each call (firmpay.i18n), so one environment serves all three.
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
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


def _page(template: str, chosen: Language, offered: tuple[Language, ...], **values: Any) -> str:
    """Render ``template`` in ``chosen``, with a switch to the other ``offered`` languages."""
    switch = [(other, i18n.AUTONYMS[other]) for other in offered if other != chosen]
    with i18n.language(chosen):
        return environment().get_template(template).render(lang=chosen, languages=switch, **values)


def render_pay_page(context: LinkContext, base_path: str = "") -> str:
    """The pay page; ``base_path`` ("/{stage}" or "") prefixes its assets and its scripts' API calls."""
    firm = context.firm
    chosen = i18n.page_language(firm)
    with i18n.language(chosen):
        view = pay_view(context)
    settings = get_settings()
    methods = page_sections(context)
    return _page(
        "pay.html",
        chosen,
        i18n.offered_languages(firm),
        view=view,
        issued=format_date(view.payable.issued_on, chosen),
        due=format_date(view.payable.due_on, chosen),
        amount_value=amount_input(view.payable.balance.amount_minor, chosen),
        example_amount=amount_input(25_000, chosen),
        firm=firm,
        payable=context.payable,
        settings=settings,
        country=firm.country,
        base_path=base_path,
        sections=[policy.section.template for policy in methods],
        head_scripts=[getattr(settings, name) for policy in methods for name in policy.section.head_scripts],
    )


def render_link_error(status: int, offer_new_link: bool, base_path: str = "") -> str:
    """The page of a pay link that does not work (the firm is unknown: the browser's language)."""
    chosen = i18n.page_language(None)
    return _page("link_error.html", chosen, (), status=status, offer_new_link=offer_new_link, base_path=base_path)


RemovalPageState = Literal["confirm", "removed", "already_removed", "retry", "not_found"]


def render_method_removal(state: RemovalPageState, view: RemovalView | None = None, base: str = "") -> str:
    """The page behind a "Remove it" link of a confirmation email, in the firm's language."""
    firm = view.firm if view is not None else None
    chosen = i18n.page_language(firm)
    offered = i18n.offered_languages(firm) if firm is not None else ()
    return _page(
        "method_removal.html",
        chosen,
        offered,
        state=state,
        firm_name=firm.name if firm else "",
        label=view.method.summary.label() if view else "",
        base_path=base,
    )


def render_mandate(mandate: MandateOut, base_path: str = "", language: Language = "en-US") -> str:
    """A printable page of the authorization (no scripts; the firm prints it or saves it as PDF).

    ``base_path``: "/{stage}" when served from API Gateway's own URL (its stylesheet lives there).
    The eCheck mandate is a US firm's (NACHA WEB): en-US unless a caller says otherwise.
    """
    return _page("mandate.html", language, (), m=mandate, base_path=base_path)
