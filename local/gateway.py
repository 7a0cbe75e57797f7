"""An in-process API Gateway (REST API) for the local stack.

It reads the routes from template.yaml, turns each HTTP request into the proxy event API Gateway
would send, calls the real ``functions/<name>/app.py`` handler, and maps the answer back. Routes
with ``AWS_IAM`` auth need a valid SigV4 signature from one of ``LOCAL_IAM_USERS``; the caller's
ARN then arrives in ``requestContext.identity.userArn`` exactly as in AWS.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.lambda_context import LambdaContext
from local.template import ROOT, Route, Template, load_template

ACCOUNT_ID = "000000000000"


@dataclass(frozen=True)
class IamUser:
    access_key: str
    secret_key: str
    arn: str


# Local IAM principals: the two demo firms' billing systems and an operator.
LOCAL_IAM_USERS = {
    user.access_key: user
    for user in (
        IamUser("AKIALOCALFIRMUS00001", "local-secret-firm-us", f"arn:aws:iam::{ACCOUNT_ID}:user/firm-us"),
        IamUser("AKIALOCALFIRMCA00001", "local-secret-firm-ca", f"arn:aws:iam::{ACCOUNT_ID}:user/firm-ca"),
        IamUser("AKIALOCALFIRMXX00001", "local-secret-firm-xx", f"arn:aws:iam::{ACCOUNT_ID}:user/firm-other"),
        IamUser("AKIALOCALOPERATOR001", "local-secret-operator", f"arn:aws:iam::{ACCOUNT_ID}:user/operator"),
    )
}

_TOKEN_IN_PATH = re.compile(r"(/pay/)[^/?]+")
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/([^/]+)/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)"
)

DevRoute = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


def redact_path(path: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1<token>", path)


def verify_sigv4(method: str, host: str, raw_path: str, headers: dict[str, str], body: bytes) -> IamUser | None:
    """The local IAM user who signed this request, or None when unsigned or forged."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lower = {k.lower(): v for k, v in headers.items()}
    found = _AUTH.fullmatch(lower.get("authorization", "").strip())
    if not found:
        return None
    access_key, _, region, service, signed, signature = found.groups()
    user = LOCAL_IAM_USERS.get(access_key)
    amz_date = lower.get("x-amz-date")
    if user is None or not amz_date:
        return None
    signed_headers = {name: lower.get(name, "") for name in signed.split(";")}
    request = AWSRequest(method=method, url=f"http://{host}{raw_path}", data=body, headers=signed_headers)
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(user.access_key, user.secret_key), service, region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    import hmac

    return user if hmac.compare_digest(expected, signature) else None


class FunctionRegistry:
    """Warm "containers" per function: each is its own import of ``functions/<name>/app.py``.

    Lambda never runs two invocations in one container at once (Powertools' resolver keeps the
    current event on the module's ``app``), so each instance serves one request at a time and
    concurrent requests get more instances, up to ``max_containers`` per function.
    """

    def __init__(self, template: Template, max_containers: int = 8) -> None:
        self._template = template
        self._max = max_containers
        self._idle: dict[str, queue.LifoQueue[ModuleType]] = {}
        self._created: dict[str, int] = {}
        self._lock = threading.Lock()

    def _load(self, name: str, index: int) -> ModuleType:
        path = ROOT / "functions" / name / "app.py"
        spec = importlib.util.spec_from_file_location(f"firmpay_function_{name}_{index}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    def _acquire(self, name: str) -> ModuleType:
        with self._lock:
            idle = self._idle.setdefault(name, queue.LifoQueue())
            try:
                return idle.get_nowait()
            except queue.Empty:
                if self._created.get(name, 0) >= self._max:
                    create = False
                else:
                    create = True
                    self._created[name] = self._created.get(name, 0) + 1
                    index = self._created[name]
        if create:
            with _IMPORT_LOCK:
                return self._load(name, index)
        return idle.get()

    def module(self, name: str) -> ModuleType:
        """One instance of the function's module (for tools that inspect it, e.g. the OpenAPI builder)."""
        instance = self._acquire(name)
        self._idle[name].put(instance)
        return instance

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        instance = self._acquire(name)
        try:
            return instance.lambda_handler(event, LambdaContext(name))
        finally:
            self._idle[name].put(instance)


_IMPORT_LOCK = threading.Lock()


def build_event(
    route: Route,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    params: dict[str, str],
    source_ip: str,
    user: IamUser | None,
    stage: str = "local",
) -> dict[str, Any]:
    """An API Gateway REST API (v1) proxy event, as AWS builds it."""
    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    try:
        text, is_base64 = (body.decode("utf-8"), False) if body else (None, False)
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    identity: dict[str, Any] = {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": headers.get("User-Agent"),
        "user": None,
    }
    if user is not None:
        identity |= {
            "accountId": ACCOUNT_ID,
            "caller": user.arn.rsplit("/", 1)[-1],
            "accessKey": user.access_key,
            "userArn": user.arn,
            "user": user.arn.rsplit("/", 1)[-1],
        }
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers) or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "127",
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": headers.get("Host", "127.0.0.1"),
            "apiId": "local",
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


class LocalGateway:
    """The HTTP server: ``LocalGateway(port).start()``; ``stop()`` when done."""

    def __init__(self, port: int, template: Template | None = None, log: Callable[[str], None] | None = None) -> None:
        self.template = template or load_template()
        self.functions = FunctionRegistry(self.template)
        self.dev_routes: dict[str, DevRoute] = {}
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_dev_route(self, prefix: str, handler: DevRoute) -> None:
        """Dev-only routes (outbox, reCAPTCHA stand-in): never part of template.yaml."""
        self.dev_routes[prefix] = handler

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        method = request.command
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = dict(request.headers.items())
        status, out_headers, payload = self.dispatch(
            method, parts.path, parts.query, request.path, headers, body, request.client_address[0]
        )
        request.send_response(status)
        for name, value in out_headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if method != "HEAD":
            request.wfile.write(payload)
        self._log(f"{method} {redact_path(parts.path)} {status} {(time.perf_counter() - started) * 1000:.1f}ms")

    def dispatch(
        self, method: str, path: str, query: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for prefix, dev in self.dev_routes.items():
            if path.startswith(prefix):
                status, dev_headers, payload = dev(method, path, headers, body)
                return status, list(dev_headers.items()), payload
        for route in self.template.routes:
            params = route.match(method, path)
            if params is None:
                continue
            user = None
            if route.iam:
                user = verify_sigv4(method, headers.get("Host", ""), raw_path, headers, body)
                if user is None:
                    return _gateway_error(
                        403,
                        "The request signature we calculated does not match the signature you provided."
                        if "Authorization" in headers
                        else "Missing Authentication Token",
                    )
            event = build_event(route, method, path, query, headers, body, params, source_ip, user)
            try:
                answer = self.functions.invoke(route.function, event)
            except Exception as error:  # a crash in a handler is a 502 from API Gateway
                self._log(f"handler {route.function} raised {type(error).__name__}: {error}")
                return _gateway_error(502, "Internal server error")
            return _from_proxy_answer(answer)
        return _gateway_error(403, "Missing Authentication Token")


def _gateway_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


def _from_proxy_answer(answer: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    if not isinstance(answer, dict) or "statusCode" not in answer:
        return _gateway_error(502, "Internal server error")
    headers: list[tuple[str, str]] = []
    for name, value in (answer.get("headers") or {}).items():
        headers.append((name, str(value)))
    single = {name.lower() for name, _ in headers}
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        if name.lower() in single:
            continue
        headers.extend((name, str(v)) for v in values)
    body = answer.get("body") or ""
    payload = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(answer["statusCode"]), headers, payload


def sign_request(
    method: str,
    url: str,
    body: bytes | str | None = None,
    access_key: str = "AKIALOCALFIRMUS00001",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Headers of a SigV4-signed request (service execute-api) for a local IAM user."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    user = LOCAL_IAM_USERS[access_key]
    data = body.encode() if isinstance(body, str) else body
    request = AWSRequest(method=method, url=url, data=data, headers=headers or {})
    SigV4Auth(Credentials(user.access_key, user.secret_key), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


__all__ = ["LOCAL_IAM_USERS", "LocalGateway", "Path", "build_event", "sign_request", "verify_sigv4"]
