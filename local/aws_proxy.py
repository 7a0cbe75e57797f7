"""The local AWS endpoint: a proxy in front of moto (``AWS_ENDPOINT_URL`` points here).

Every request goes to moto unchanged; on the way the proxy counts requests per service and
operation (the benchmark's "DynamoDB requests per route"), injects faults for tests (throttling,
5xx, delays), and copies every SES message into the local outbox.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


@dataclass
class Fault:
    service: str
    operation: str
    status: int
    body: bytes
    times: int
    delay: float
    headers: dict[str, str]


def _operation(service: str, path: str, headers: dict[str, str], body: bytes) -> str:
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if service == "ses" and path.startswith("/v2/email/outbound-emails"):
        return "SendEmail"
    if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return path.strip("/").split("/")[0] or "?"


class AwsProxy:
    def __init__(self, port: int, moto_port: int, on_email: Callable[[str, bytes], None] | None = None) -> None:
        self.moto_port = moto_port
        self.on_email = on_email
        self._counts: Counter[tuple[str, str]] = Counter()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="aws-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AwsProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- counters and faults ------------------------------------------------------------------------

    def counts(self, service: str | None = None) -> dict[str, int]:
        """Requests per ``service:Operation`` (or per operation of one service) since the last reset."""
        with self._lock:
            return {
                (op if service else f"{svc}:{op}"): n
                for (svc, op), n in self._counts.items()
                if service is None or svc == service
            }

    def total(self, service: str) -> int:
        return sum(self.counts(service).values())

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def inject(
        self,
        service: str,
        operation: str,
        status: int = 500,
        body: dict[str, Any] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``/``body`` (after ``delay`` s)."""
        if body is None:
            body = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "injected fault"}
        payload = json.dumps(body).encode()
        content_type = "application/x-amz-json-1.0" if service == "dynamodb" else "application/json"
        with self._lock:
            self._faults.append(
                Fault(service, operation, status, payload, times, delay, {"Content-Type": content_type})
            )

    def throttle(self, operation: str, times: int = 1) -> None:
        self.inject(
            "dynamodb",
            operation,
            400,
            {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"},
            times,
        )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, service: str, operation: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.service == service and fault.operation in (operation, "*") and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- forwarding ---------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=30)
            self._local.conn = conn
        return conn

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        found = _SERVICE.search(headers.get("authorization", ""))
        service = found.group(1) if found else "?"
        if headers.get("x-amz-target", "").startswith("DynamoDBStreams"):
            service = "dynamodbstreams"
        operation = _operation(service, request.path, headers, body)
        with self._lock:
            self._counts[(service, operation)] += 1
        fault = self._take_fault(service, operation)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            self._reply(request, fault.status, list(fault.headers.items()), fault.body)
            return
        status, out_headers, payload = self._forward(request.command, request.path, request.headers.items(), body)
        if service == "ses" and operation in ("SendEmail", "SendRawEmail") and status == 200 and self.on_email:
            self.on_email(operation, body)
        self._reply(request, status, out_headers, payload)

    def _forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                answer = conn.getresponse()
                payload = answer.read()
                kept = [
                    (k, v)
                    for k, v in answer.getheaders()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length")
                ]
                return answer.status, kept, payload
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)
