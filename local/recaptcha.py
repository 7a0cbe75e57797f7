"""A local reCAPTCHA stand-in: the widget script and siteverify, with answers tests choose."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs

_SCRIPT = """(function () {
  var widgets = [];
  function render(el, opts) {
    if (typeof el === 'string') { el = document.getElementById(el); }
    var id = widgets.length, label = document.createElement('label'), box = document.createElement('input');
    box.type = 'checkbox';
    label.appendChild(box);
    label.appendChild(document.createTextNode(" I'm not a robot"));
    el.appendChild(label);
    widgets.push({token: ''});
    box.addEventListener('change', function () {
      widgets[id].token = box.checked ? 'local-ok-' + Date.now() : '';
      if (box.checked && opts && typeof opts.callback === 'function') { opts.callback(widgets[id].token); }
    });
    return id;
  }
  window.grecaptcha = {
    render: render,
    getResponse: function (id) { return (widgets[id || 0] || {token: ''}).token; },
    reset: function (id) { if (widgets[id || 0]) { widgets[id || 0].token = ''; } },
    ready: function (fn) { fn(); }
  };
})();
"""


class RecaptchaStandIn:
    """``/_local/recaptcha/api.js`` and ``/_local/recaptcha/siteverify`` (Google's answer shape)."""

    def __init__(self) -> None:
        self._next: list[bool] = []
        self._lock = threading.Lock()
        self.verifications = 0

    def set_next_answer(self, success: bool, times: int = 1) -> None:
        with self._lock:
            self._next.extend([success] * times)

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path.endswith("/api.js"):
            return 200, {"Content-Type": "application/javascript"}, _SCRIPT.encode()
        if path.endswith("/siteverify") and method == "POST":
            token = parse_qs(body.decode()).get("response", [""])[0]
            with self._lock:
                self.verifications += 1
                success = self._next.pop(0) if self._next else bool(token) and not token.startswith("fail")
            answer = {
                "success": success,
                "challenge_ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "hostname": "127.0.0.1",
            }
            if not success:
                answer["error-codes"] = ["invalid-input-response"]
            return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()
        return 404, {"Content-Type": "text/plain"}, b"not found"
