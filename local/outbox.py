"""The local mail outbox: every SES message the stack sends, on disk and in a browser.

``.local/outbox/<time>-<id>/`` holds ``message.eml``, ``meta.json``, ``body.html``, ``body.txt``;
the gateway serves ``/_local/outbox`` (list), ``/_local/outbox/<id>`` (one message as the client
sees it) and ``/_local/outbox.json``.
"""

from __future__ import annotations

import base64
import email
import email.policy
import html
import json
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from local.template import ROOT

OUTBOX = ROOT / ".local" / "outbox"


class Outbox:
    def __init__(self, folder: Path = OUTBOX) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # -- capture -------------------------------------------------------------------------------------

    def capture(self, operation: str, body: bytes) -> None:
        """Called by the AWS proxy with the SES request body of a successful send."""
        try:
            message = _message_from_request(operation, body)
        except Exception as error:  # never break sending because the copy failed
            print(f"outbox: could not read a {operation} request: {error}")
            return
        self.save(message)

    def save(self, message: EmailMessage) -> str:
        message_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        folder = self.folder / message_id
        folder.mkdir(parents=True)
        (folder / "message.eml").write_bytes(message.as_bytes())
        html_part = message.get_body(("html",))
        text_part = message.get_body(("plain",))
        (folder / "body.html").write_text(html_part.get_content() if html_part else "", encoding="utf-8")
        (folder / "body.txt").write_text(text_part.get_content() if text_part else "", encoding="utf-8")
        meta = {
            "id": message_id,
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "reply_to": str(message.get("Reply-To", "")),
            "subject": str(message.get("Subject", "")),
            "date": str(message.get("Date", "")),
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return message_id

    # -- reading -------------------------------------------------------------------------------------

    def list_messages(self) -> list[dict[str, Any]]:
        found = []
        for meta in sorted(self.folder.glob("*/meta.json")):
            found.append(json.loads(meta.read_text(encoding="utf-8")))
        return found

    def read(self, message_id: str) -> dict[str, Any] | None:
        folder = self.folder / message_id
        if "/" in message_id or ".." in message_id or not (folder / "meta.json").exists():
            return None
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        meta["html"] = (folder / "body.html").read_text(encoding="utf-8")
        meta["text"] = (folder / "body.txt").read_text(encoding="utf-8")
        return meta

    def clear(self) -> None:
        for meta in self.folder.glob("*/meta.json"):
            for file in meta.parent.iterdir():
                file.unlink()
            meta.parent.rmdir()

    # -- the dev route -------------------------------------------------------------------------------

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path == "/_local/outbox.json":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.list_messages()).encode()
        if path in ("/_local/outbox", "/_local/outbox/"):
            rows = "".join(
                f"<tr><td>{html.escape(m['date'])}</td><td>{html.escape(m['to'])}</td>"
                f'<td><a href="/_local/outbox/{html.escape(m["id"])}">{html.escape(m["subject"])}</a></td></tr>'
                for m in reversed(self.list_messages())
            )
            page = (
                "<!doctype html><html lang=en><head><meta charset=utf-8><title>Local outbox</title></head>"
                "<body><h1>Local outbox</h1><table><thead><tr><th>Date</th><th>To</th><th>Subject</th></tr>"
                f"</thead><tbody>{rows}</tbody></table></body></html>"
            )
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
        message = self.read(path.removeprefix("/_local/outbox/"))
        if message is None:
            return 404, {"Content-Type": "text/plain"}, b"no such message"
        page = (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(message['subject'])}</title>"
            "</head><body>"
            f"<p><b>From:</b> {html.escape(message['from'])}<br><b>To:</b> {html.escape(message['to'])}<br>"
            f"<b>Reply-To:</b> {html.escape(message['reply_to'])}<br><b>Subject:</b> {html.escape(message['subject'])}</p>"
            f'<iframe title="HTML part" sandbox="" style="width:100%;height:70vh;border:1px solid #ccc" '
            f'srcdoc="{html.escape(message["html"], quote=True)}"></iframe>'
            f"<h2>Text part</h2><pre>{html.escape(message['text'])}</pre></body></html>"
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()


def _message_from_request(operation: str, body: bytes) -> EmailMessage:
    text = body.decode("utf-8")
    if text.lstrip().startswith("{"):  # SES v2 JSON
        request = json.loads(text)
        content = request.get("Content", {})
        if "Raw" in content:
            raw = base64.b64decode(content["Raw"]["Data"])
            return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]
        simple = content.get("Simple", {})
        message = EmailMessage()
        message["From"] = request.get("FromEmailAddress", "")
        message["To"] = ", ".join(request.get("Destination", {}).get("ToAddresses", []))
        if request.get("ReplyToAddresses"):
            message["Reply-To"] = ", ".join(request["ReplyToAddresses"])
        message["Subject"] = simple.get("Subject", {}).get("Data", "")
        parts = simple.get("Body", {})
        message.set_content(parts.get("Text", {}).get("Data", ""))
        if "Html" in parts:
            message.add_alternative(parts["Html"]["Data"], subtype="html")
        return message
    form = parse_qs(text)  # SES v1 query API
    if "RawMessage.Data" in form:
        raw = base64.b64decode(form["RawMessage.Data"][0])
        return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]
    message = EmailMessage()
    message["From"] = form.get("Source", [""])[0]
    message["To"] = ", ".join(v[0] for k, v in form.items() if k.startswith("Destination.ToAddresses"))
    message["Subject"] = form.get("Message.Subject.Data", [""])[0]
    message.set_content(form.get("Message.Body.Text.Data", [""])[0])
    if "Message.Body.Html.Data" in form:
        message.add_alternative(form["Message.Body.Html.Data"][0], subtype="html")
    return message
