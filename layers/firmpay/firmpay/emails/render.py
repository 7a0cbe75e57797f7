"""Rendering of every email kind: one base layout, one template per kind, HTML and text parts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=2)
def _environment(html: bool) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=html,  # noqa: S701 - the text part is plain text, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render(kind: str, **context: Any) -> tuple[str, str, str]:
    """``(subject, html, text)`` of one email kind."""
    html_env, text_env = _environment(True), _environment(False)
    html = html_env.get_template(f"{kind}.html").render(**context)
    text = text_env.get_template(f"{kind}.txt").render(**context)
    subject = text_env.get_template(f"{kind}.subject.txt").render(**context).strip()
    return subject, html, text


def build_message(
    subject: str,
    html: str,
    text: str,
    sender: str,
    sender_name: str,
    to: str,
    reply_to: str | None,
    reference: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    local, _, domain = sender.partition("@")
    message["From"] = Address(display_name=f"{sender_name} via FirmPay", username=local, domain=domain)
    message["To"] = to
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{uuid.uuid4()}@{domain}>"
    if reference:
        message["X-FirmPay-Reference"] = reference
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message
