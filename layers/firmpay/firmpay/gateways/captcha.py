"""reCAPTCHA behind ``CaptchaVerifier``: Google's siteverify in production, the local stand-in locally.

Both answer the same protocol (a form POST of ``secret``, ``response`` and ``remoteip``; a JSON
answer with ``success``, ``challenge_ts``, ``hostname`` and, for score-based keys, ``score`` and
``action``: developers.google.com/recaptcha/docs/verify and /docs/v3), so only the URL differs.
A token passes only with ``success`` true, the ``hostname`` of our own pay pages (a token solved
on another site that uses our public site key is refused) and, when Google names an ``action``
(score-based keys), ours. The secret is read from SSM on the first verification, not at start-up:
most requests never need it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from firmpay.config import get_settings
from firmpay.payments.ports import CaptchaUnavailable
from firmpay.secrets import get_secret

# The action a score-based token must have been made for (grecaptcha.execute(key, {action})).
CARD_ACTION = "card_payment"


class RecaptchaVerifier:
    """Verifies reCAPTCHA tokens at ``verify_url`` (Google's siteverify protocol)."""

    def __init__(
        self,
        verify_url: str,
        secret: Callable[[], str],
        timeout: float = 5.0,
        hostname: str | None = None,
        action: str = CARD_ACTION,
    ) -> None:
        if not verify_url.startswith(("https://", "http://")):
            raise ValueError("the reCAPTCHA verify URL must be http(s)")
        self._url = verify_url
        self._secret = secret
        self._timeout = timeout
        self._hostname = hostname
        self._action = action

    @classmethod
    def from_settings(cls) -> RecaptchaVerifier:
        settings = get_settings()
        from urllib.parse import urlsplit

        return cls(
            settings.recaptcha_verify_url,
            lambda: get_secret(settings.recaptcha_secret_param),
            hostname=urlsplit(settings.public_base_url).hostname,
        )

    def verify(self, token: str, remote_ip: str | None) -> bool:
        import urllib.error  # imported on first use: most requests never verify a token
        import urllib.parse
        import urllib.request

        fields = {"secret": self._secret(), "response": token}
        if remote_ip:
            fields["remoteip"] = remote_ip
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self._url,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:  # noqa: S310
                body = json.loads(answer.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
            raise CaptchaUnavailable(type(error).__name__) from error
        return isinstance(body, dict) and self._accepts(body)

    def _accepts(self, answer: dict[str, object]) -> bool:
        if answer.get("success") is not True:
            return False
        if self._hostname is not None and answer.get("hostname") != self._hostname:
            return False
        # Checkbox (v2) answers carry no action; score-based ones do, and it must be ours.
        return "action" not in answer or answer["action"] == self._action
