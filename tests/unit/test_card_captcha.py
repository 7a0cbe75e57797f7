"""The reCAPTCHA verifier (siteverify protocol) and the card-testing counters' windows."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from firmpay.errors import CaptchaRequired, ServiceUnavailable
from firmpay.gateways.captcha import RecaptchaVerifier
from firmpay.payments.card_testing import DEFAULT_LIMITS, attempt_counters, over_limit, require_human
from firmpay.payments.ports import CaptchaUnavailable


class Siteverify:
    """A siteverify stand-in on 127.0.0.1 that answers ``success`` as the test says."""

    def __init__(self) -> None:
        self.answer: object = {"success": True}
        self.status = 200
        self.forms: list[dict[str, list[str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.forms.append(parse_qs(body.decode()))
                payload = json.dumps(owner.answer).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/recaptcha/api/siteverify"


@pytest.fixture
def siteverify() -> Iterator[Siteverify]:
    stub = Siteverify()
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def test_verifier_posts_the_token_secret_and_ip(siteverify: Siteverify) -> None:
    verifier = RecaptchaVerifier(siteverify.url, lambda: "the-secret")

    assert verifier.verify("token-1", "203.0.113.9") is True
    assert siteverify.forms == [{"secret": ["the-secret"], "response": ["token-1"], "remoteip": ["203.0.113.9"]}]


@pytest.mark.parametrize("answer", [{"success": False}, {"success": "true"}, {}, ["success"]])
def test_verifier_accepts_only_an_explicit_success(siteverify: Siteverify, answer: object) -> None:
    siteverify.answer = answer

    assert RecaptchaVerifier(siteverify.url, lambda: "s").verify("token", None) is False


GOOGLE_V2 = {"success": True, "challenge_ts": "2026-12-04T16:00:00Z", "hostname": "pay.firm.example"}


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        (GOOGLE_V2, True),  # checkbox: no action in Google's answer
        (GOOGLE_V2 | {"hostname": "cardtester.example"}, False),  # solved on another site
        ({k: v for k, v in GOOGLE_V2.items() if k != "hostname"}, False),
        (GOOGLE_V2 | {"score": 0.9, "action": "card_payment"}, True),
        (GOOGLE_V2 | {"score": 0.9, "action": "login"}, False),  # made for another action
        (GOOGLE_V2 | {"success": False, "error-codes": ["timeout-or-duplicate"]}, False),
    ],
)
def test_verifier_checks_success_hostname_and_action(siteverify: Siteverify, answer: object, accepted: bool) -> None:
    siteverify.answer = answer

    verifier = RecaptchaVerifier(siteverify.url, lambda: "s", hostname="pay.firm.example")

    assert verifier.verify("token", None) is accepted


def test_verifier_reports_an_unreachable_service(siteverify: Siteverify) -> None:
    siteverify.status = 503

    with pytest.raises(CaptchaUnavailable):
        RecaptchaVerifier(siteverify.url, lambda: "s").verify("token", None)


def test_verifier_refuses_non_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        RecaptchaVerifier("file:///etc/passwd", lambda: "s")


def test_secret_is_read_only_when_a_token_is_verified(siteverify: Siteverify) -> None:
    reads: list[str] = []

    def secret() -> str:
        reads.append("read")
        return "s"

    verifier = RecaptchaVerifier(siteverify.url, secret)
    assert reads == []
    verifier.verify("token", None)
    assert reads == ["read"]


class _Down:
    def verify(self, token: str, remote_ip: str | None) -> bool:
        raise CaptchaUnavailable("down")


def test_a_verifier_outage_is_a_503_not_a_pass() -> None:
    with pytest.raises(ServiceUnavailable):
        require_human(_Down(), "token", "203.0.113.9")
    with pytest.raises(CaptchaRequired):
        require_human(_Down(), None, "203.0.113.9")


def test_counters_are_hourly_per_link_and_per_ip_without_the_address() -> None:
    at = datetime(2026, 11, 25, 14, 59, tzinfo=UTC)

    now, later = (
        attempt_counters("h", "203.0.113.9", at, DEFAULT_LIMITS),
        attempt_counters("h", "203.0.113.9", at + timedelta(minutes=2), DEFAULT_LIMITS),
    )

    assert now.link[0] == "cardfail#link#h"
    assert "203.0.113.9" not in now.ip[0]
    assert now.link[1] != later.link[1]
    assert now.expires_at > at.timestamp() + 3600
    assert not over_limit({now.link: 2, now.ip: 9}, now, DEFAULT_LIMITS)
    assert over_limit({now.link: 3}, now, DEFAULT_LIMITS)
    assert over_limit({now.ip: 10}, now, DEFAULT_LIMITS)
