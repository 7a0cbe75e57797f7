"""The local AWS endpoint: a proxy in front of the emulators (``AWS_ENDPOINT_URL`` points here).

Every request is forwarded unchanged, over kept-alive connections: DynamoDB and DynamoDB Streams
to DynamoDB Local (AWS's own engine), everything else (SES, KMS, SQS, SSM) to moto. On the way
the proxy

- counts requests per service and operation (``counts()``/``reset_counts()``: the benchmark's
  "DynamoDB requests per route");
- injects faults for tests (``inject()``/``throttle()``/``cancel_transaction()``): an error answer
  in the service's own wire format (so botocore raises the real exception class), after an
  optional delay, or a delay alone (a slow or timed-out call);
- hands every accepted SES send (v1 ``SendEmail``/``SendRawEmail``, v2 ``SendEmail``) to the
  outbox.

It sits on every DynamoDB call of every benchmark, so the path is short: one dict lookup when no
fault is armed, one lock for the counters, no logging.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
_SES_V2 = {
    ("POST", "outbound-emails"): "SendEmail",
    ("POST", "outbound-bulk-emails"): "SendBulkEmail",
    ("POST", "identities"): "CreateEmailIdentity",
    ("GET", "identities"): "ListEmailIdentities",
    ("POST", "configuration-sets"): "CreateConfigurationSet",
    ("GET", "account"): "GetAccount",
}
_SES_SENDS = frozenset({"SendEmail", "SendRawEmail"})
_DYNAMODB_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
# TransactWriteItems cancellation reasons other than a failed condition, with DynamoDB's messages
# (TransactWriteItems API reference, "TransactionCanceledException").
_CANCELLATION_MESSAGES = {
    "TransactionConflict": "Transaction is ongoing for the item",
    "ThrottlingError": "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please try again shortly.",
    "ProvisionedThroughputExceeded": "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API.",
    "ItemCollectionSizeLimitExceeded": "Collection size exceeded.",
    "ValidationError": "One or more parameter values were invalid.",
}
_DEFAULT_CODES = {400: "ThrottlingException", 500: "InternalServerError", 503: "ServiceUnavailable"}
_QUERY_CODES = {"ThrottlingException": "Throttling", "InternalServerError": "InternalFailure"}
_REASONS = {status.value: status.phrase for status in http.HTTPStatus}

EmailSink = Callable[[str, bytes, bytes], Any]
# (service, operation, method, path, headers, body) -> None to go on, or the (status, headers, body) refusal.
Authorizer = Callable[[str, str, str, str, dict[str, str], bytes], tuple[int, list[tuple[str, str]], bytes] | None]


@dataclass
class Fault:
    """An armed fault: the next ``times`` matching requests get it (``status`` None: delay only)."""

    service: str
    operation: str
    status: int | None
    code: str | None
    message: str
    body: bytes | None
    times: int
    delay: float
    cancellation: tuple[str, int] | None = None  # (reason code, item index): a cancelled transaction
    skip: int = 0  # matching requests to let through before the fault applies


def request_operation(service: str, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    """The API operation of a request: X-Amz-Target, the query Action, or SES v2's REST path."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    route = urlsplit(path)
    if route.path.startswith("/v2/email/"):
        parts = route.path.split("/")
        return _SES_V2.get((method, parts[3] if len(parts) > 3 else ""), f"{method} {route.path}")
    if route.query:
        action = parse_qs(route.query).get("Action")
        if action:
            return action[0]
    if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    return f"{method} {route.path}"


def request_service(headers: dict[str, str]) -> str:
    """The signing service of a request (DynamoDB Streams told apart from DynamoDB by its target)."""
    target = headers.get("x-amz-target", "")
    if target.startswith("DynamoDBStreams"):
        return "dynamodbstreams"
    found = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
    return found.group(1) if found else "?"


class _ConnectionPool:
    """Kept-alive HTTP connections to one emulator, shared by the proxy's threads (LIFO: warm ones first)."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self._port = port
        self._timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPConnection("127.0.0.1", self._port, timeout=self._timeout), False

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 64:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class AwsProxy:
    """``AwsProxy(moto_port, dynamodb_port=...).start()``; ``url`` is what ``AWS_ENDPOINT_URL`` should be.

    Without ``dynamodb_port`` every service goes to ``moto_port``.
    """

    def __init__(
        self, moto_port: int, port: int = 0, on_email: EmailSink | None = None, *, dynamodb_port: int | None = None
    ) -> None:
        self.moto_port = moto_port
        self.dynamodb_port = dynamodb_port
        self.on_email = on_email
        self.authorize: Authorizer | None = None  # local IAM (local/iam.py), set by the stack
        self._pool = _ConnectionPool(moto_port)
        self._dynamodb_pool = _ConnectionPool(dynamodb_port) if dynamodb_port else self._pool
        self._counts: Counter[tuple[str, str]] = Counter()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
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
        self._pool.close()
        self._dynamodb_pool.close()

    # -- counters ------------------------------------------------------------------------------------

    def counts(self, service: str | None = None) -> dict[str, int]:
        """Requests since the last reset: ``{"dynamodb:PutItem": 2, ...}``, or ``{"PutItem": 2}`` for one service."""
        with self._lock:
            items = list(self._counts.items())
        if service is None:
            return {f"{svc}:{op}": n for (svc, op), n in sorted(items)}
        return {op: n for (svc, op), n in sorted(items) if svc == service}

    def total(self, service: str) -> int:
        """All requests to one service since the last reset."""
        return sum(self.counts(service).values())

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    # -- faults --------------------------------------------------------------------------------------

    def inject(
        self,
        service: str,
        operation: str,
        status: int | None = 500,
        body: dict[str, Any] | str | bytes | None = None,
        times: int = 1,
        delay: float = 0.0,
        *,
        code: str | None = None,
        message: str = "injected by the local AWS proxy",
    ) -> None:
        """Answer the next ``times`` requests of ``service``/``operation`` (``"*"``: any) with an error.

        ``status`` 400 defaults to ``ThrottlingException``, 500 to ``InternalServerError``; the
        answer is written in the request's protocol (JSON ``__type``, REST-JSON
        ``x-amzn-ErrorType`` or query XML) unless ``body`` is given. ``status=None`` with a
        ``delay`` forwards the request after the delay instead (a slow call; beyond the client's
        read timeout, a timeout).
        """
        if status is None and delay <= 0:
            raise ValueError("a fault needs a status, a delay, or both")
        raw = (
            None
            if body is None
            else body
            if isinstance(body, bytes)
            else body.encode()
            if isinstance(body, str)
            else json.dumps(body).encode()
        )
        fault_code = code or (_DEFAULT_CODES.get(status, "InternalServerError") if status else None)
        with self._lock:
            self._faults.append(Fault(service, operation, status, fault_code, message, raw, times, delay))

    def throttle(self, operation: str, times: int = 1, service: str = "dynamodb") -> None:
        """DynamoDB (by default) answers ``ThrottlingException`` to the next ``times`` ``operation`` calls."""
        self.inject(service, operation, 400, times=times, code="ThrottlingException", message="Rate exceeded")

    def cancel_transaction(
        self, reason: str = "TransactionConflict", times: int = 1, item: int = 0, *, after: int = 0
    ) -> None:
        """Cancel ``times`` ``TransactWriteItems`` with ``reason`` on item ``item``, as DynamoDB does.

        The first ``after`` transactions go through (to reach, say, the settle that follows a
        reserve); the ``times`` after them are cancelled.

        The answer is DynamoDB's: 400 ``TransactionCanceledException`` with one cancellation reason
        per item of the request (``None`` for the others), which botocore parses into
        ``CancellationReasons``. ``reason``: ``TransactionConflict`` (another transaction holds
        the item), ``ThrottlingError``, ``ProvisionedThroughputExceeded``, ... (the codes and
        messages of the TransactWriteItems API reference). Nothing is written, as in DynamoDB.
        """
        if reason not in _CANCELLATION_MESSAGES:
            raise ValueError(f"DynamoDB has no cancellation reason {reason!r}; known: {sorted(_CANCELLATION_MESSAGES)}")
        with self._lock:
            self._faults.append(
                Fault(
                    "dynamodb",
                    "TransactWriteItems",
                    400,
                    "TransactionCanceledException",
                    "",
                    None,
                    times,
                    0.0,
                    cancellation=(reason, item),
                    skip=after,
                )
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, service: str, operation: str) -> Fault | None:
        """The first armed fault matching the request, used once (caller holds the lock)."""
        for fault in self._faults:
            if fault.service in (service, "*") and fault.operation in (operation, "*"):
                if fault.skip > 0:  # this one goes through; the fault waits for a later request
                    fault.skip -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- the request path ----------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        pairs = request.headers.items()
        headers = {k.lower(): v for k, v in pairs}
        service = request_service(headers)
        operation = request_operation(service, request.command, request.path, headers, body)
        if self.authorize is not None:  # AWS authorizes before anything else happens
            refusal = self.authorize(service, operation, request.command, request.path, headers, body)
            if refusal is not None:
                write_response(request, *refusal)
                return
        with self._lock:
            self._counts[(service, operation)] += 1
            fault = self._take_fault(service, operation) if self._faults else None
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                status, out_headers, payload = _fault_reply(fault, service, request.path, headers, body)
                write_response(request, status, out_headers, payload)
                return
        forward_headers = [(k, v) for k, v in pairs if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
        pool = self._dynamodb_pool if service in _DYNAMODB_SERVICES else self._pool
        try:
            status, out_headers, payload = self._forward(pool, request.command, request.path, forward_headers, body)
        except OSError as error:
            status, out_headers, payload = (
                502,
                [("Content-Type", "text/plain")],
                f"emulator unreachable: {error}".encode(),
            )
        if service == "ses" and operation in _SES_SENDS and status == 200 and self.on_email is not None:
            self.on_email(operation, body, payload)
        write_response(request, status, out_headers, payload)

    @staticmethod
    def _forward(
        pool: _ConnectionPool, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        while True:
            conn, reused = pool.get()
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                answer = conn.getresponse()
                payload = answer.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                if reused:  # the emulator closed an idle connection; the request never reached it
                    continue
                raise
            kept = [
                (k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
            ]
            if answer.will_close:
                conn.close()
            else:
                pool.put(conn)
            return answer.status, kept, payload


def _cancellation_body(reason: str, item: int, request_body: bytes) -> bytes:
    """DynamoDB's TransactionCanceledException for this request: one reason per item, in order.

    The shape is the one DynamoDB Local itself answers for a failed condition (checked:
    ``{"__type": "...#TransactionCanceledException", "CancellationReasons": [{"Code": "None"},
    {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}], "Message":
    "Transaction cancelled, please refer cancellation reasons for specific reasons [None,
    ConditionalCheckFailed]"}``); the codes and messages are the TransactWriteItems API
    reference's (docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html,
    and botocore's "DynamoDB / Client / exceptions / TransactionCanceledException").
    """
    count = max(1, len(json.loads(request_body or b"{}").get("TransactItems") or []))
    marked = min(max(item, 0), count - 1)
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(count)]
    reasons[marked] = {"Code": reason, "Message": _CANCELLATION_MESSAGES[reason]}
    summary = ", ".join(r["Code"] for r in reasons)
    return json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "CancellationReasons": reasons,
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{summary}]",
        },
        separators=(",", ":"),
    ).encode()


def _fault_reply(
    fault: Fault, service: str, path: str, headers: dict[str, str], request_body: bytes = b""
) -> tuple[int, list[tuple[str, str]], bytes]:
    assert fault.status is not None
    request_id = str(uuid.uuid4())
    code = fault.code or "InternalServerError"
    if fault.cancellation is not None:
        body = _cancellation_body(*fault.cancellation, request_body)
        return fault.status, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)], body
    if "x-amz-target" in headers:  # AWS JSON 1.0 / 1.1 (DynamoDB, SQS, KMS, SSM)
        content_type = headers.get("content-type", "application/x-amz-json-1.0")
        prefix = "com.amazonaws.dynamodb.v20120810#" if service in ("dynamodb", "dynamodbstreams") else ""
        body = fault.body or json.dumps({"__type": prefix + code, "message": fault.message}).encode()
        return fault.status, [("Content-Type", content_type), ("x-amzn-RequestId", request_id)], body
    if urlsplit(path).path.startswith("/v2/"):  # REST-JSON (SES v2)
        body = fault.body or json.dumps({"message": fault.message}).encode()
        return (
            fault.status,
            [("Content-Type", "application/json"), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", request_id)],
            body,
        )
    query_code = _QUERY_CODES.get(code, code)  # query protocol (SES v1)
    kind = "Sender" if fault.status < 500 else "Receiver"
    body = (
        fault.body
        or (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{query_code}</Code><Message>{fault.message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
    )
    return fault.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body


def write_response(
    request: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], payload: bytes
) -> None:
    """Status line, headers and body in one write (no Nagle/delayed-ACK stalls, one syscall)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(payload)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    request.wfile.write(head + payload if request.command != "HEAD" else head)
