"""The local mail outbox: every SES message the stack sends, on disk and in a browser.

``<folder>/<time>-<id>/`` holds ``message.eml`` (the raw MIME when the sender gave one, else the
message SES would have built), ``meta.json`` (from, to, cc, reply-to, subject, date, SES message
id), ``body.html`` and ``body.txt``. The gateway serves, for developers only (these routes never
exist in template.yaml):

- ``GET /_local/outbox``: the list, newest first;
- ``GET /_local/outbox/<id>``: one message as the client sees it (the HTML part in a sandboxed
  iframe, no scripts, plus the text part);
- ``GET /_local/outbox/<id>/message.eml``: the raw message;
- ``GET /_local/outbox.json``: the list as JSON (tests and tools);
- ``DELETE /_local/outbox``: empty it.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import html
import json
import re
import shutil
import threading
import time
import uuid
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from local.template import ROOT

OUTBOX = ROOT / ".local" / "outbox"
_ID = re.compile(r"^[0-9T.Z-]+-[0-9a-f]{8}$")
_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1a1a1a}"
    "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}"
    "iframe{width:100%;height:70vh;border:1px solid #ccc}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}"
)

Reply = tuple[int, dict[str, str], bytes]


class Outbox:
    """Captured messages under ``folder``; thread-safe (the AWS proxy captures from many threads)."""

    def __init__(self, folder: Path = OUTBOX) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    # -- capture -------------------------------------------------------------------------------------

    def capture(self, operation: str, request_body: bytes, response_body: bytes = b"") -> str | None:
        """Called by the AWS proxy with an accepted SES send; returns the outbox id (None if unreadable)."""
        try:
            message, raw = parse_ses_send(request_body)
        except Exception as error:  # never break sending because the local copy failed
            print(f"outbox: could not read a {operation} request: {type(error).__name__}: {error}", flush=True)
            return None
        return self.save(message, raw=raw, ses_message_id=_ses_message_id(response_body))

    def save(self, message: Message, raw: bytes | None = None, ses_message_id: str | None = None) -> str:
        """Write ``message`` (and its original bytes, when it came raw) to a new folder; return its id."""
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        message_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
        folder = self.folder / message_id
        folder.mkdir(parents=True)
        html_body, text_body = _bodies(message)
        (folder / "message.eml").write_bytes(raw if raw is not None else message.as_bytes(policy=email.policy.SMTP))
        (folder / "body.html").write_text(html_body, encoding="utf-8")
        (folder / "body.txt").write_text(text_body, encoding="utf-8")
        meta = {
            "id": message_id,
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "cc": str(message.get("Cc", "")),
            "reply_to": str(message.get("Reply-To", "")),
            "subject": str(message.get("Subject", "")),
            "date": str(message.get("Date", "")) or email.utils.formatdate(now, usegmt=True),
            "ses_message_id": ses_message_id,
            "captured_at": now,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return message_id

    # -- reading -------------------------------------------------------------------------------------

    def list_messages(self) -> list[dict[str, Any]]:
        """Every captured message's meta, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for meta in sorted(self.folder.glob("*/meta.json")):
            try:
                found.append(json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # being written right now
        return found

    def read(self, message_id: str) -> dict[str, Any] | None:
        """Meta plus ``html`` and ``text`` bodies of one message, None if there is no such message."""
        if not _ID.match(message_id):
            return None
        folder = self.folder / message_id
        if not (folder / "meta.json").exists():
            return None
        meta: dict[str, Any] = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        meta["html"] = (folder / "body.html").read_text(encoding="utf-8")
        meta["text"] = (folder / "body.txt").read_text(encoding="utf-8")
        meta["links"] = message_links(meta["html"], meta["text"])
        return meta

    def raw(self, message_id: str) -> bytes | None:
        if not _ID.match(message_id):
            return None
        path = self.folder / message_id / "message.eml"
        return path.read_bytes() if path.exists() else None

    def clear(self) -> None:
        """Delete every captured message (the folder itself stays)."""
        with self._lock:
            if self.folder.is_dir():
                for child in self.folder.iterdir():
                    if child.is_dir() and _ID.match(child.name):
                        shutil.rmtree(child, ignore_errors=True)

    # -- the dev routes ------------------------------------------------------------------------------

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """``/_local/outbox*`` for the gateway."""
        if path == "/_local/outbox.json" and method == "GET":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.list_messages()).encode()
        if path in ("/_local/outbox", "/_local/outbox/"):
            if method == "DELETE":
                self.clear()
                return 204, {}, b""
            if method == "GET":
                return _html(self._index_page())
            return 405, {"Content-Type": "text/plain", "Allow": "GET, DELETE"}, b"method not allowed"
        rest = path.removeprefix("/_local/outbox/")
        if method != "GET":
            return 405, {"Content-Type": "text/plain", "Allow": "GET"}, b"method not allowed"
        if rest.endswith("/message.eml"):
            raw = self.raw(rest.removesuffix("/message.eml"))
            if raw is None:
                return 404, {"Content-Type": "text/plain"}, b"no such message"
            return 200, {"Content-Type": "message/rfc822"}, raw
        message = self.read(rest.rstrip("/"))
        if message is None:
            return 404, {"Content-Type": "text/plain"}, b"no such message"
        return _html(_message_page(message))

    def _index_page(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(m['date'])}</td><td>{html.escape(m['to'])}</td>"
            f'<td><a href="/_local/outbox/{html.escape(m["id"])}">{html.escape(m["subject"] or "(no subject)")}</a>'
            "</td></tr>"
            for m in reversed(self.list_messages())
        )
        table = (
            "<table><thead><tr><th scope=col>Date</th><th scope=col>To</th><th scope=col>Subject</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            if rows
            else "<p>No mail sent yet.</p>"
        )
        return _page("Local outbox", f"<h1>Local outbox</h1>{table}")


def _html(page: str) -> Reply:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        # The message's own HTML lives in a sandboxed srcdoc iframe; nothing here runs scripts.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data: http: https:",
    }
    return 200, headers, page.encode("utf-8")


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f'<meta name=viewport content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>"
    )


def _message_page(message: dict[str, Any]) -> str:
    fields = "".join(
        f"<dt>{label}</dt><dd>{html.escape(str(message.get(key) or ''))}</dd>"
        for label, key in (
            ("From", "from"),
            ("To", "to"),
            ("Cc", "cc"),
            ("Reply-To", "reply_to"),
            ("Subject", "subject"),
            ("Date", "date"),
        )
    )
    # No scripts, no forms, no same-origin access; links may open in a new tab (to follow a pay link).
    sandbox = "allow-popups allow-popups-to-escape-sandbox"
    srcdoc = '<base target="_blank">' + message["html"]
    iframe = (
        f'<iframe title="HTML part of the message" sandbox="{sandbox}" srcdoc="{html.escape(srcdoc, quote=True)}">'
        "</iframe>"
        if message["html"]
        else "<p>(no HTML part)</p>"
    )
    found = message["links"]
    link_list = "".join(
        f'<li><a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{html.escape(url)}</a></li>'
        for url in found
    )
    body = (
        '<p><a href="/_local/outbox">All messages</a> · '
        f'<a href="/_local/outbox/{html.escape(message["id"])}/message.eml">Raw message</a></p>'
        f"<h1>{html.escape(message['subject'] or '(no subject)')}</h1><dl>{fields}</dl>"
        f"<h2>HTML part</h2>{iframe}<h2>Text part</h2><pre>{html.escape(message['text']) or '(no text part)'}</pre>"
        + (f"<h2>Links</h2><ul>{link_list}</ul>" if link_list else "")
    )
    return _page(message["subject"] or "Message", body)


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href and href.startswith(("http://", "https://")):
                self.found.append(href)


def links(html_body: str) -> list[str]:
    """The http(s) links of an HTML body, in order (tests follow the pay link in an email with it)."""
    parser = _LinkParser()
    parser.feed(html_body)
    return parser.found


def message_links(html_body: str, text_body: str) -> list[str]:
    """Distinct http(s) links of a message: from its HTML part, else from its text part."""
    found = links(html_body) or re.findall(r"https?://[^\s<>\"')\]]+", text_body)
    return list(dict.fromkeys(found))


def _bodies(message: Message) -> tuple[str, str]:
    if not isinstance(message, EmailMessage):
        message = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    html_body = html_part.get_content() if isinstance(html_part, EmailMessage) else ""
    text_body = text_part.get_content() if isinstance(text_part, EmailMessage) else ""
    return str(html_body), str(text_body)


def _ses_message_id(response_body: bytes) -> str | None:
    text = response_body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text).get("MessageId")
        except ValueError:
            return None
        return str(value) if value else None
    found = re.search(r"<MessageId>([^<]+)</MessageId>", text)
    return found.group(1) if found else None


def _parse_raw(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _build(
    source: str,
    to: list[str],
    cc: list[str],
    reply_to: list[str],
    subject: str,
    text: str | None,
    html_body: str | None,
) -> EmailMessage:
    """The MIME message SES builds from a Simple send."""
    message = EmailMessage()
    message["From"] = source
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = ", ".join(reply_to)
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain="local.amazonses.com")
    if text is not None:
        message.set_content(text)
        if html_body is not None:
            message.add_alternative(html_body, subtype="html")
    elif html_body is not None:
        message.set_content(html_body, subtype="html")
    else:
        message.set_content("")
    return message


def _members(form: dict[str, list[str]], prefix: str) -> list[str]:
    keyed = [(int(k.rsplit(".", 1)[1]), v[0]) for k, v in form.items() if k.startswith(prefix + ".member.")]
    return [value for _, value in sorted(keyed)]


def parse_ses_send(body: bytes) -> tuple[EmailMessage, bytes | None]:
    """The message an SES v1 (query) or v2 (JSON) send request carries, and its raw bytes if sent raw."""
    text = body.decode("utf-8")
    if text.lstrip().startswith("{"):  # SES v2: POST /v2/email/outbound-emails
        request = json.loads(text)
        content = request.get("Content") or {}
        destination = request.get("Destination") or {}
        if "Raw" in content:
            raw = base64.b64decode(content["Raw"]["Data"])
            message = _parse_raw(raw)
            if "To" not in message and destination.get("ToAddresses"):
                message["To"] = ", ".join(destination["ToAddresses"])
            return message, raw
        if "Simple" in content:
            simple = content["Simple"]
            parts = simple.get("Body") or {}
            return _build(
                request.get("FromEmailAddress", ""),
                destination.get("ToAddresses") or [],
                destination.get("CcAddresses") or [],
                request.get("ReplyToAddresses") or [],
                (simple.get("Subject") or {}).get("Data", ""),
                (parts.get("Text") or {}).get("Data"),
                (parts.get("Html") or {}).get("Data"),
            ), None
        template = content.get("Template") or {}
        return _build(
            request.get("FromEmailAddress", ""),
            destination.get("ToAddresses") or [],
            destination.get("CcAddresses") or [],
            request.get("ReplyToAddresses") or [],
            f"(SES template {template.get('TemplateName', '?')})",
            template.get("TemplateData", ""),
            None,
        ), None
    form = parse_qs(text, keep_blank_values=True)  # SES v1: Action=SendEmail / SendRawEmail
    if "RawMessage.Data" in form:
        raw = base64.b64decode(form["RawMessage.Data"][0])
        message = _parse_raw(raw)
        destinations = _members(form, "Destinations")
        if "To" not in message and destinations:
            message["To"] = ", ".join(destinations)
        return message, raw
    return _build(
        form.get("Source", [""])[0],
        _members(form, "Destination.ToAddresses"),
        _members(form, "Destination.CcAddresses"),
        _members(form, "ReplyToAddresses"),
        form.get("Message.Subject.Data", [""])[0],
        form["Message.Body.Text.Data"][0] if "Message.Body.Text.Data" in form else None,
        form["Message.Body.Html.Data"][0] if "Message.Body.Html.Data" in form else None,
    ), None
