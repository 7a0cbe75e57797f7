"""A local reCAPTCHA stand-in: the widget script and siteverify, with answers tests choose.

The production verifier and the pay page only know two URLs (``RECAPTCHA_JS_URL`` and
``RECAPTCHA_VERIFY_URL``); the local stack points them here:

- ``GET /_local/recaptcha/api.js``: a small ``grecaptcha`` (``render(el, {sitekey, callback})``,
  ``getResponse()``, ``reset()``, ``ready()``, ``execute()``; automatic rendering of
  ``.g-recaptcha`` elements and the ``onload``/``render=explicit`` parameters) that draws an
  accessible **I'm not a robot** checkbox and yields a token when it is ticked;
- ``POST /_local/recaptcha/siteverify``: Google's answer shape (``success``, ``challenge_ts``,
  ``hostname``, ``error-codes``; and ``score`` and ``action`` for tokens of
  ``execute(siteKey, {action})``, as score-based keys answer: developers.google.com/recaptcha/docs/v3),
  with Google's rules: the secret must be the configured one, a token is good once
  (``timeout-or-duplicate`` the second time), a token starting ``fail`` fails, and
  ``set_next_answer(False)`` makes the next verifications fail whatever the token. ``hostname``
  is the site the token was solved on (tests set another one to play a token from another site).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

_SCRIPT = r"""(function () {
  'use strict';
  var widgets = [];
  var script = document.currentScript;
  var params = new URLSearchParams(script && script.src.indexOf('?') >= 0 ? script.src.split('?')[1] : '');
  function token() {
    var bytes = new Uint8Array(24);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return 'local-' + Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  function named(fn) { return typeof fn === 'string' ? window[fn] : fn; }
  function render(el, opts) {
    if (typeof el === 'string') { el = document.getElementById(el); }
    opts = opts || {};
    var id = widgets.length;
    var box = document.createElement('div');
    box.className = 'local-recaptcha';
    box.setAttribute('style', 'display:inline-flex;align-items:center;gap:.6em;padding:.8em 1em;border:1px solid #d3d3d3;border-radius:3px;background:#f9f9f9;font:14px/1.2 sans-serif;color:#222');
    var input = document.createElement('input');
    input.type = 'checkbox';
    input.id = 'local-recaptcha-' + id;
    input.setAttribute('style', 'width:1.6em;height:1.6em;margin:0');
    var label = document.createElement('label');
    label.htmlFor = input.id;
    label.textContent = "I'm not a robot";
    var note = document.createElement('small');
    note.textContent = 'local reCAPTCHA';
    note.setAttribute('style', 'color:#555;margin-left:1em');
    box.appendChild(input); box.appendChild(label); box.appendChild(note);
    el.appendChild(box);
    var widget = {token: '', input: input, opts: opts};
    widgets.push(widget);
    input.addEventListener('change', function () {
      widget.token = input.checked ? token() : '';
      var cb = named(input.checked ? (opts.callback || el.getAttribute('data-callback')) : (opts['expired-callback'] || el.getAttribute('data-expired-callback')));
      if (typeof cb === 'function') { cb(widget.token); }
    });
    return id;
  }
  function widget(id) { return widgets[id === undefined ? 0 : id]; }
  window.grecaptcha = {
    render: render,
    getResponse: function (id) { var w = widget(id); return w ? w.token : ''; },
    reset: function (id) { var w = widget(id); if (w) { w.token = ''; w.input.checked = false; } },
    execute: function (id, opts) {
      if (typeof id === 'string' && opts && opts.action) {  // score-based: execute(siteKey, {action})
        return Promise.resolve('v3.' + opts.action + '.' + token());
      }
      var w = widget(typeof id === 'number' ? id : undefined);
      var value = w && w.token ? w.token : token();
      return Promise.resolve(value);
    },
    ready: function (fn) { if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', fn); } else { fn(); } }
  };
  function start() {
    if (params.get('render') !== 'explicit') {
      Array.prototype.forEach.call(document.querySelectorAll('.g-recaptcha'), function (el) {
        render(el, {sitekey: el.getAttribute('data-sitekey')});
      });
    }
    var onload = named(params.get('onload'));
    if (typeof onload === 'function') { onload(); }
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
"""


@dataclass(frozen=True)
class Verification:
    """One siteverify call, as tests may inspect it (the secret is not kept)."""

    token: str
    remote_ip: str | None
    success: bool
    error_codes: tuple[str, ...]


class RecaptchaStandIn:
    """Serves the two dev routes; ``set_next_answer()`` decides the next verifications."""

    def __init__(self, secret: str | None = None, hostname: str = "127.0.0.1") -> None:
        self.secret = secret  # None: any secret is accepted
        self.hostname = hostname
        self.verifications: list[Verification] = []
        self._next: list[bool] = []
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def set_next_answer(self, success: bool, times: int = 1) -> None:
        """The next ``times`` verifications answer ``success`` (valid tokens still need a good secret)."""
        with self._lock:
            self._next.extend([success] * times)

    def reset(self) -> None:
        """Forget queued answers, used tokens and recorded verifications."""
        with self._lock:
            self._next.clear()
            self._used.clear()
            self.verifications.clear()

    def verify(self, secret: str | None, token: str | None, remote_ip: str | None = None) -> dict[str, object]:
        """Google's siteverify answer for these fields."""
        errors: list[str] = []
        with self._lock:
            if not secret:
                errors.append("missing-input-secret")
            elif self.secret is not None and secret != self.secret:
                errors.append("invalid-input-secret")
            if not token:
                errors.append("missing-input-response")
            elif token in self._used:
                errors.append("timeout-or-duplicate")
            elif token.startswith("fail"):
                errors.append("invalid-input-response")
            forced = self._next.pop(0) if self._next else None
            if forced is False and not errors:
                errors.append("invalid-input-response")
            if token:
                self._used.add(token)
            success = not errors
            self.verifications.append(Verification(token or "", remote_ip, success, tuple(errors)))
        answer: dict[str, object] = {"success": success}
        if success:
            answer["challenge_ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            answer["hostname"] = self.hostname
            if token and token.startswith("v3."):  # a score-based token names its action
                answer["score"] = 0.9
                answer["action"] = token.split(".")[1]
        else:
            answer["error-codes"] = errors
        return answer

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """``/_local/recaptcha/*`` for the gateway."""
        if path == "/_local/recaptcha/api.js" and method == "GET":
            return (
                200,
                {"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-store"},
                _SCRIPT.encode(),
            )
        if path == "/_local/recaptcha/siteverify":
            if method != "POST":
                return 405, {"Content-Type": "text/plain", "Allow": "POST"}, b"method not allowed"
            fields = parse_qs(body.decode("utf-8", "replace"))
            answer = self.verify(
                fields.get("secret", [None])[0], fields.get("response", [None])[0], fields.get("remoteip", [None])[0]
            )
            return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(answer).encode()
        return 404, {"Content-Type": "text/plain"}, b"not found"
