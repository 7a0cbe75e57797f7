"""Security properties that need no stack: pay-link tokens are 256 random bits and only their hash
is looked up; secrets are compared in constant time; the logger redacts what must not be logged,
and the leak scanner used by the integration suite finds what it must."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import logging
import math
import random
import re
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from firmpay.gateways import stripe_gateway
from firmpay.observability import logger, redact
from firmpay.payments import links
from local import gateway
from tests.support.log_scan import LogCollector, find_leaks, luhn_valid

ROOT = Path(__file__).resolve().parents[2]
URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# -- pay-link tokens --------------------------------------------------------------------------------


def test_tokens_are_43_url_safe_characters_and_never_repeat() -> None:
    tokens = [links.new_token() for _ in range(5_000)]

    assert len(set(tokens)) == len(tokens)
    assert all(links.TOKEN_PATTERN.fullmatch(t) for t in tokens)
    assert set("".join(tokens)) == URL_SAFE


def test_tokens_carry_256_bits_of_entropy() -> None:
    tokens = [links.new_token() for _ in range(5_000)]
    # The first 42 characters carry 6 bits each, the 43rd the last 4 bits of the 32 bytes.
    body = Counter("".join(t[:42] for t in tokens))
    total = sum(body.values())
    entropy_per_char = -sum(n / total * math.log2(n / total) for n in body.values())
    last = {t[42] for t in tokens}

    assert entropy_per_char > 5.99  # uniform over 64 symbols is exactly 6
    assert len(last) == 16  # 4 bits: 42 * 6 + 4 = 256
    assert max(body.values()) < 1.1 * total / 64


def test_tokens_come_from_the_operating_systems_random_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python's seeded generator does not make them: the same seed gives two different tokens ...
    random.seed(7)
    first = links.new_token()
    random.seed(7)
    assert links.new_token() != first
    # ... the secrets module's CSPRNG does: its 32 bytes are the token, URL-safe.
    monkeypatch.setattr(secrets, "token_bytes", lambda n: bytes(range(n)))
    assert links.new_token() == base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


class _LinkLookups:
    """A ledger that only records what a pay-link lookup asks it for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_link(self, token_hash: str) -> None:
        self.asked.append(token_hash)


def test_a_token_is_stored_and_looked_up_only_as_its_sha256() -> None:
    token = links.new_token()
    ledger = _LinkLookups()

    with pytest.raises(links.PayLinkNotFound):
        links.find_link(ledger, token)  # type: ignore[arg-type]

    assert ledger.asked == [hashlib.sha256(token.encode()).hexdigest()]
    assert links.hash_token(token) == ledger.asked[0]


# -- constant-time comparisons ------------------------------------------------------------------------

SECRET_NAME = re.compile(r"signature|token|secret|hash|digest|password|api_?key|credential", re.I)
# Where FirmPay's own code checks what a caller sends: the package, the handlers, and the local
# gateway's SigV4 check (it stands in for API Gateway's). The emulators of Stripe, Plaid and
# reCAPTCHA stand in for third parties and are not scanned.
SCANNED = [ROOT / "layers/firmpay/firmpay", ROOT / "functions", ROOT / "local/gateway.py"]
# Comparisons of names that sound secret but compare nothing a caller could probe.
NOT_SECRET = {
    # Both hashes come from the ledger, read after the lookup by the caller's token's hash.
    ("layers/firmpay/firmpay/payments/links.py", "context.payable.current_link_hash != link.token_hash"),
    # The declared SHA-256 of the body against the body's own: public values the sender computes.
    ("local/gateway.py", "declared != hashlib.sha256(body).hexdigest()"),
}


def _names(node: ast.AST) -> list[str]:
    found = []
    for part in ast.walk(node):
        if isinstance(part, ast.Name):
            found.append(part.id)
        elif isinstance(part, ast.Attribute):
            found.append(part.attr)
        elif isinstance(part, ast.Subscript) and isinstance(part.slice, ast.Constant):
            found.append(str(part.slice.value))
    return found


def secret_equality_comparisons(scanned: list[Path], root: Path = ROOT) -> set[tuple[str, str]]:
    """``==``/``!=`` between values named like secrets (a literal on either side is not a secret)."""
    found = set()
    files = [p for top in scanned for p in ([top] if top.is_file() else sorted(top.rglob("*.py")))]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) for o in operands):
                continue
            if any(SECRET_NAME.search(name) for o in operands for name in _names(o)):
                found.add((str(path.relative_to(root)), ast.unparse(node)))
    return found


def test_no_secret_is_compared_with_equality_in_firmpay_or_the_gateway() -> None:
    found = secret_equality_comparisons(SCANNED)

    assert found - NOT_SECRET == set()
    assert found >= NOT_SECRET  # the exceptions still exist (else remove them from the list)


def test_the_scan_finds_equality_comparisons_of_secrets_and_not_constant_time_ones(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text(
        "import hmac\n"
        "def check(expected_signature, given, event):\n"
        "    if event['token'] != given:\n"
        "        return False\n"
        "    if event.kind == 'refund':\n"
        "        return hmac.compare_digest(expected_signature, given)\n"
        "    return expected_signature == given\n"
    )

    assert secret_equality_comparisons([tmp_path], tmp_path) == {
        ("handler.py", "event['token'] != given"),
        ("handler.py", "expected_signature == given"),
    }


class _CompareDigestSpy:
    """``hmac.compare_digest``, recording what it was asked to compare."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, object]] = []

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return _REAL_COMPARE_DIGEST(a, b)


_REAL_COMPARE_DIGEST = hmac.compare_digest


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _signed_firm_request(body: str) -> dict[str, str]:
    url = "http://127.0.0.1:3000/Prod/firm/firms"
    return {"host": "127.0.0.1:3000", **gateway.sign_request("POST", url, body, "AKIALOCALFIRMUS00001")}


def test_sigv4_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _CompareDigestSpy()
    monkeypatch.setattr(gateway.hmac, "compare_digest", spy)
    headers = _signed_firm_request('{"name": "x"}')
    given = headers["Authorization"].rsplit("Signature=", 1)[1]

    assert gateway.verify_sigv4("POST", "/Prod/firm/firms", headers, b'{"name": "x"}').access_key
    with pytest.raises(gateway.SignatureRejected):
        gateway.verify_sigv4("POST", "/Prod/firm/firms", headers, b'{"name": "y"}')

    assert [found for _, found in spy.calls] == [given, given]  # both verdicts came from compare_digest
    assert spy.calls[0][0] == given
    assert spy.calls[1][0] != given


def test_webhook_signatures_are_checked_in_constant_time_within_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    import stripe

    spy = _CompareDigestSpy()
    monkeypatch.setattr(hmac, "compare_digest", spy)  # where stripe's secure_compare finds it
    payload, secret, now = '{"id": "evt_1", "object": "event"}', "whsec_test_static", int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, now)
    expected = header.split("v1=", 1)[1]

    assert stripe_gateway.webhook_signature_valid(payload, header, secret)
    assert not stripe_gateway.webhook_signature_valid(payload.replace("evt_1", "evt_2"), header, secret)
    assert not stripe_gateway.webhook_signature_valid(payload, header, "whsec_someone_else")
    stale = stripe.WebhookSignature.generate_signature_header(payload, secret, now - 301)
    assert not stripe_gateway.webhook_signature_valid(payload, stale, secret)
    assert stripe_gateway.webhook_signature_valid(
        payload, stripe.WebhookSignature.generate_signature_header(payload, secret, now - 290), secret
    )

    # The verdicts came from compare_digest: the first compared the header's signature with itself.
    assert len(spy.calls) >= 4
    assert {_text(part) for part in spy.calls[0]} == {expected}


# -- logs: redaction and the scanner ------------------------------------------------------------------


def test_the_scanner_finds_card_numbers_tokens_plaid_tokens_stripe_secrets_and_emails() -> None:
    token = links.new_token()
    text = "\n".join(
        [
            "card 4242424242424242",
            "card 4000 0566 5566 5556",
            f"link {token}",
            "plaid access-sandbox-5cd6e1b1-1b5b-459d-9284-366e2da89755",
            "plaid public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d",
            "stripe sk_test_local_firmpay whsec_abc123",
            "to jordan.client@example.com",
        ]
    )

    kinds = [leak.split(":")[0] for leak in find_leaks(text, [token])]

    assert kinds == [
        "card number",
        "card number",
        "pay-link token",
        "plaid token",
        "plaid token",
        "stripe secret",
        "stripe secret",
        "email address",
    ]


def test_the_scanner_leaves_ids_timestamps_and_redacted_values_alone() -> None:
    text = (
        '{"timestamp":"2026-12-01 14:22:10,348+0000","epoch_ms":1796133600123,"payment_id":"pay_1f8b7980aa956187",'
        '"to":"j***@example.com","key":"sk_test_<redacted>","plaid":"access-sandbox-<redacted>",'
        '"path":"/pay/<token>","hash":"' + "4" * 64 + '","card":"Visa 4242","amount_minor":4242424242424241}'
    )
    assert find_leaks(text, [links.new_token()]) == []
    assert not luhn_valid("4242424242424241")


def test_redaction_removes_every_kind_of_secret_the_scanner_knows() -> None:
    token = links.new_token()
    raw = (
        f"GET /pay/{token} card 4242424242424242 access-sandbox-5cd6e1b1-1b5b-459d-9284-366e2da89755 "
        "public-sandbox-b0e2c4ee-a763 sk_test_local_firmpay whsec_local_firmpay rk_live_abc to jordan@example.com"
    )
    assert find_leaks(redact(raw), [token]) == []


def test_what_the_firmpay_logger_writes_is_redacted_messages_and_extras_alike() -> None:
    token = links.new_token()
    with LogCollector() as logs:
        logger.info(f"opened /pay/{token} for jordan@example.com", extra={"card": "4242424242424242"})
        logger.warning("retry", extra={"secret": "sk_test_local_firmpay", "plaid": "public-sandbox-abc-123"})

    assert logs.records == 2
    assert [json.loads(line)["message"] for line in logs.lines] == ["opened /pay/<token> for j***@example.com", "retry"]
    assert find_leaks(logs.text, [token]) == []


def test_an_exception_logged_with_its_traceback_is_redacted_too() -> None:
    token = links.new_token()
    with LogCollector() as logs:
        try:
            raise ValueError(f"no link /pay/{token} for jordan@example.com with card 4242424242424242")
        except ValueError:
            logger.exception("unexpected error")

    assert logs.records == 1
    assert "ValueError" in logs.text
    assert find_leaks(logs.text, [token]) == []


def test_the_collector_restores_the_logger_level() -> None:
    inner = logging.getLogger(logger.name)
    before = inner.level
    with LogCollector(level=logging.DEBUG):
        assert inner.getEffectiveLevel() == logging.DEBUG
    assert inner.level == before
