"""An in-process API Gateway (REST API) for the local stack.

It reads the routes from template.yaml, turns each HTTP request into the proxy event API Gateway
would send (REST API, payload v1), calls the real ``functions/<name>/app.py`` handler with a
Lambda-shaped context, and maps the proxy answer back to HTTP. Routes with ``AWS_IAM`` auth need
a valid SigV4 signature (service ``execute-api``) from one of ``LOCAL_IAM_USERS``; the caller's
ARN then arrives in ``requestContext.identity.userArn`` exactly as in AWS. Unknown routes, and
unsigned or forged requests to IAM routes, get API Gateway's own 403 answers.

Handlers run in "warm containers": each is a separate import of the function's module, serving
one request at a time, as Lambda never runs two invocations in one container (Powertools'
resolver keeps per-request state on the module's ``app``); concurrent requests get more
containers. Powertools also keeps the current event in a class attribute shared by the whole
process; ``isolate_powertools_per_thread()`` makes it per thread, so concurrent requests never
see each other's event. Dev-only routes (outbox, reCAPTCHA stand-in, health) live under ``/_local/``, a prefix
template.yaml never uses.

One log line per request: method, path (link tokens redacted), status, milliseconds. Request
and response bodies are never logged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import queue
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.aws_proxy import write_response
from local.iam import acting_as
from local.lambda_context import LambdaContext
from local.template import FunctionSpec, Route, Template, load_template

ACCOUNT_ID = "000000000000"  # the account of the local IAM principals (demo firms are seeded with these ARNs)
REGION = "us-east-1"
STAGE = "local"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
SIGNATURE_MAX_SKEW = 300  # seconds, as AWS SigV4

# One process runs every function (and the test client) on a developer's or CI's cores: a function
# counts as timed out after this many times its template Timeout (LOCAL_TIMEOUT_FACTOR, default 3).
TIMEOUT_FACTOR = float(os.environ.get("LOCAL_TIMEOUT_FACTOR", "3"))


@dataclass(frozen=True)
class IamUser:
    """A local IAM principal that may call ``AWS_IAM`` routes."""

    name: str
    access_key: str
    secret_key: str
    user_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:user/{self.name}"


# The two demo firms' billing systems, a principal that belongs to no firm, and an operator.
LOCAL_IAM_USERS: dict[str, IamUser] = {
    user.access_key: user
    for user in (
        IamUser("firm-us", "AKIALOCALFIRMUS00001", "local-secret-firm-us", "AIDALOCALFIRMUS00001"),
        IamUser("firm-ca", "AKIALOCALFIRMCA00001", "local-secret-firm-ca", "AIDALOCALFIRMCA00001"),
        IamUser("firm-other", "AKIALOCALFIRMXX00001", "local-secret-firm-xx", "AIDALOCALFIRMXX00001"),
        IamUser("operator", "AKIALOCALOPERATOR001", "local-secret-operator", "AIDALOCALOPERATOR001"),
    )
}


def iam_user(name: str) -> IamUser:
    """A local principal by name (``firm-us``, ``firm-ca``, ``firm-other``, ``operator``)."""
    for user in LOCAL_IAM_USERS.values():
        if user.name == name:
            return user
    raise KeyError(f"no local IAM user {name!r}")


_TOKEN_IN_PATH = re.compile(r"(/pay/|/methods/remove/)[^/?]+")
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)

DevReply = tuple[int, dict[str, str], bytes]
DevRoute = Callable[[str, str, dict[str, str], bytes], DevReply]
Answer = tuple[int, list[tuple[str, str]], bytes]


def redact_path(path: str) -> str:
    """The path with any pay-link or removal-link token replaced by ``<token>`` (logs never carry tokens)."""
    return _TOKEN_IN_PATH.sub(r"\1<token>", path)


class SignatureRejected(Exception):
    """API Gateway's 403 for an IAM route: ``message`` and ``error_type`` as AWS sends them."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


def verify_sigv4(
    method: str, raw_path: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> IamUser:
    """The local IAM user who signed this request; ``SignatureRejected`` (API Gateway's words) otherwise."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lower = {k.lower(): v for k, v in headers.items()}
    authorization = lower.get("authorization", "").strip()
    if not authorization:
        raise SignatureRejected("Missing Authentication Token", "MissingAuthenticationTokenException")
    found = _AUTH.fullmatch(authorization)
    if not found:
        raise SignatureRejected(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
            "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires "
            "existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=" + authorization.split(" ")[0],
            "IncompleteSignatureException",
        )
    user = LOCAL_IAM_USERS.get(found["key"])
    if user is None:
        raise SignatureRejected("The security token included in the request is invalid.", "UnrecognizedClientException")
    if found["service"] != "execute-api":
        raise SignatureRejected(
            "Credential should be scoped to correct service: 'execute-api'. ", "InvalidSignatureException"
        )
    if found["region"] != REGION:
        raise SignatureRejected("Credential should be scoped to a valid region. ", "InvalidSignatureException")
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise SignatureRejected(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            "IncompleteSignatureException",
        ) from None
    current = time.time() if now is None else now
    if abs(current - signed_at) > SIGNATURE_MAX_SKEW:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(current))
        raise SignatureRejected(
            f"Signature expired: {amz_date} is now earlier than {stamp} ({stamp} - 5 min.)", "InvalidSignatureException"
        )
    declared = lower.get("x-amz-content-sha256")
    if declared and declared != "UNSIGNED-PAYLOAD" and declared != hashlib.sha256(body).hexdigest():
        raise _mismatch()
    signed = found["signed"].split(";")
    if "host" not in signed:
        raise _mismatch()
    request = AWSRequest(
        method=method,
        url=f"http://{lower.get('host', '')}{raw_path}",
        data=body,
        headers={name: lower.get(name, "") for name in signed},
    )
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(user.access_key, user.secret_key), "execute-api", REGION)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not hmac.compare_digest(expected, found["signature"]):
        raise _mismatch()
    return user


def _mismatch() -> SignatureRejected:
    return SignatureRejected(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        "Access Key and signing method. Consult the service documentation for details.",
        "InvalidSignatureException",
    )


def sign_request(
    method: str,
    url: str,
    body: bytes | str | None = None,
    access_key: str = "AKIALOCALFIRMUS00001",
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers (``headers`` plus Authorization, X-Amz-Date) of a SigV4-signed ``execute-api`` request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    user = LOCAL_IAM_USERS[access_key]
    data = body.encode() if isinstance(body, str) else body
    request = AWSRequest(method=method, url=url, data=data or b"", headers=dict(headers or {}))
    SigV4Auth(Credentials(user.access_key, user.secret_key), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())


class IamAuth:
    """``requests`` auth that signs like a firm's billing system: ``requests.get(url, auth=IamAuth("firm-us"))``."""

    def __init__(self, user: str = "firm-us") -> None:
        self.user = iam_user(user) if user not in LOCAL_IAM_USERS else LOCAL_IAM_USERS[user]

    def __call__(self, request: Any) -> Any:
        body = request.body or b""
        signed = sign_request(request.method, request.url, body, self.user.access_key, {})
        request.headers.update({k: v for k, v in signed.items() if k in ("Authorization", "X-Amz-Date")})
        return request


class _PerThread:
    """A data descriptor whose value belongs to the thread that set it."""

    def __init__(self, name: str) -> None:
        self._local = threading.local()
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        try:
            return self._local.value
        except AttributeError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: object, value: Any) -> None:
        self._local.value = value


_ISOLATION_LOCK = threading.Lock()


def isolate_powertools_per_thread() -> bool:
    """Make Powertools' "current event" per thread, as it is per process in Lambda.

    ``APIGatewayRestResolver.resolve`` stores the event in ``BaseRouter.current_event``, a class
    attribute shared by every resolver of the process: fine in Lambda (one invocation per
    process), wrong here, where concurrent requests run in threads of one process (measured:
    119 of 120 concurrent requests read another request's event). The class attribute becomes
    thread-local, for class-level access (a metaclass descriptor) and instance access alike.
    Returns False when Powertools is not installed.
    """
    try:
        from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
    except ImportError:
        return False
    with _ISOLATION_LOCK:
        if getattr(type(BaseRouter), "_per_thread", False):
            return True
        slots = {name: _PerThread(name) for name in ("current_event", "lambda_context")}
        for name, descriptor in slots.items():
            setattr(BaseRouter, name, descriptor)  # instance access: self.current_event
        meta = type(BaseRouter)
        BaseRouter.__class__ = type(f"PerThread{meta.__name__}", (meta,), {**slots, "_per_thread": True})  # type: ignore[method-assign]
    return True


class FunctionRegistry:
    """Warm "containers" per function: each is its own import of the function's handler module.

    Lambda never runs two invocations in one container at once, so each instance serves one
    request at a time and concurrent requests get more instances, up to ``max_containers`` per
    function (beyond that, requests wait for a free one, like reserved concurrency).
    """

    def __init__(self, template: Template, max_containers: int = 32) -> None:
        self.template = template
        self._max = max_containers
        self._idle: dict[str, queue.LifoQueue[ModuleType]] = {}
        self._created: dict[str, int] = {}
        self._overrides: dict[str, Callable[[Any, LambdaContext], Any]] = {}
        self._lock = threading.Lock()
        isolate_powertools_per_thread()

    def spec(self, name: str) -> FunctionSpec:
        return self.template.function(name)

    def _load(self, spec: FunctionSpec, index: int) -> ModuleType:
        module_name = f"firmpay_function_{spec.name}_{index}"
        loader_spec = importlib.util.spec_from_file_location(module_name, spec.module_file)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load {spec.module_file}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            with self._lock:
                self._created[spec.name] -= 1
            raise
        return module

    def _acquire(self, spec: FunctionSpec) -> ModuleType:
        with self._lock:
            idle = self._idle.setdefault(spec.name, queue.LifoQueue())
            try:
                return idle.get_nowait()
            except queue.Empty:
                create = self._created.get(spec.name, 0) < self._max
                if create:
                    self._created[spec.name] = index = self._created.get(spec.name, 0) + 1
        if create:
            with _IMPORT_LOCK:
                return self._load(spec, index)
        return idle.get()

    def _release(self, spec: FunctionSpec, module: ModuleType) -> None:
        self._idle[spec.name].put(module)

    def module(self, name: str) -> ModuleType:
        """One instance of the function's module (for tools that inspect it)."""
        spec = self.spec(name)
        instance = self._acquire(spec)
        self._release(spec, instance)
        return instance

    def containers(self, name: str) -> int:
        """How many instances of ``name`` exist (a cold start each)."""
        with self._lock:
            return self._created.get(self.spec(name).name, 0)

    @contextlib.contextmanager
    def use_handler(self, name: str, handler: Callable[[Any, LambdaContext], Any]) -> Iterator[None]:
        """Route ``name``'s invocations to ``handler(event, context)`` inside the ``with`` block (tests)."""
        key = self.spec(name).name
        with self._lock:
            previous = self._overrides.get(key)
            self._overrides[key] = handler
        try:
            yield
        finally:
            with self._lock:
                if previous is None:
                    self._overrides.pop(key, None)
                else:
                    self._overrides[key] = previous

    def invoke(self, name: str, event: Any, request_id: str | None = None) -> Any:
        """Run the function's handler on ``event`` in a free warm container; exceptions propagate."""
        spec = self.spec(name)
        override = self._overrides.get(spec.name)
        if override is not None:
            return override(event, LambdaContext(spec.logical_id, spec.memory_mb, spec.timeout_s, request_id))
        with acting_as(spec.logical_id):  # its AWS calls are checked against its role (local/iam.py)
            instance = self._acquire(spec)
            try:
                handler = getattr(instance, spec.handler_name)
                context = LambdaContext(spec.logical_id, spec.memory_mb, spec.timeout_s, request_id)
                return handler(event, context)
            finally:
                self._release(spec, instance)


_IMPORT_LOCK = threading.Lock()


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


def build_event(
    route: Route,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]] | Mapping[str, str],
    body: bytes,
    params: Mapping[str, str],
    source_ip: str,
    user: IamUser | None,
    stage: str = STAGE,
    request_id: str | None = None,
    domain: str | None = None,
    base_path: str | None = None,
) -> dict[str, Any]:
    """The API Gateway REST API (v1) proxy event for one request, as AWS builds it.

    ``base_path``: what the browser's path has in front of ``path``; ``requestContext.path`` is the
    whole of it. None: ``/{stage}``, a request to the execute-api URL (``path`` lacks the stage);
    ``""``: a custom domain mapped at its root (both paths the same).

    ``path`` is the request path as received (API Gateway keeps percent-encoding there);
    ``params`` are the decoded path parameters; query values are decoded, the last value of a
    repeated key in ``queryStringParameters`` and all of them in the multi-value map.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    multi_query = parse_qs(query, keep_blank_values=True) if query else {}
    if not body:
        text, is_base64 = None, False
    else:
        try:
            text, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    request_id = request_id or str(uuid.uuid4())
    user_agent = next((v for k, v in single.items() if k.lower() == "user-agent"), None)
    host = next((v for k, v in single.items() if k.lower() == "host"), "127.0.0.1")
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
        "userAgent": user_agent,
        "user": None,
    }
    if user is not None:
        identity |= {
            "accountId": ACCOUNT_ID,
            "caller": user.user_id,
            "accessKey": user.access_key,
            "userArn": user.arn,
            "user": user.user_id,
        }
    domain = domain or host
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(params) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": hashlib.sha1(route.path.encode()).hexdigest()[:6],  # noqa: S324 - an id, not a secret
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode(),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": (f"/{stage}" if base_path is None else base_path) + path,
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": domain,
            "deploymentId": "local",
            "apiId": "local",
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def proxy_answer(answer: Any) -> Answer:
    """Map a Lambda proxy answer to status, headers, body; a malformed one is API Gateway's 502."""
    if not isinstance(answer, dict) or "statusCode" not in answer:
        raise MalformedAnswer("the answer has no statusCode")
    try:
        status = int(answer["statusCode"])
    except (TypeError, ValueError):
        raise MalformedAnswer("statusCode is not a number") from None
    body = answer.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedAnswer(f"body must be a string, not {type(body).__name__}")
    merged: dict[str, list[str]] = {}
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        merged[name] = [str(v) for v in values]
    for name, value in (answer.get("headers") or {}).items():
        if name not in merged:  # a key in both: only multiValueHeaders' values count
            merged[name] = [str(value)]
    headers = [(name, value) for name, values in merged.items() for value in values]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    payload = base64.b64decode(body) if body and answer.get("isBase64Encoded") else (body or "").encode("utf-8")
    if len(payload) > MAX_RESPONSE_BYTES:
        raise MalformedAnswer("the answer is over Lambda's 6 MB limit")
    return status, headers, payload


class MalformedAnswer(Exception):
    """A handler answered something API Gateway cannot map (it answers 502)."""


# The headers template.yaml's GatewayResponses (DEFAULT_4XX, DEFAULT_5XX) add to API Gateway's own
# answers (JSON, nothing to run: no CSP, whose quotes API Gateway's header literals cannot hold).
GATEWAY_RESPONSE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}


def gateway_error(status: int, message: str, error_type: str | None = None, request_id: str | None = None) -> Answer:
    """An answer API Gateway itself produces (403 Missing Authentication Token, 502, ...)."""
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id or str(uuid.uuid4()))]
    headers += list(GATEWAY_RESPONSE_HEADERS.items())
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return status, headers, json.dumps({"message": message}).encode()


def stderr_log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class LocalGateway:
    """The HTTP server: ``LocalGateway(port=3000).start()``; ``stop()`` when done (port 0: any free port)."""

    def __init__(
        self,
        port: int = 3000,
        template: Template | None = None,
        log: Callable[[str], None] | None = stderr_log,
        max_containers: int = 32,
        stage_path: bool = True,
    ) -> None:
        """``stage_path``: also serve the API under ``/{stage}`` as API Gateway's own URL does
        (``https://{api}.execute-api.{region}.amazonaws.com/{stage}/...``); the root stands for a
        custom domain mapped at its root. AWS keeps both open unless the execute-api endpoint is
        disabled."""
        self.template = template or load_template()
        self.stage_prefix = f"/{STAGE}" if stage_path else None
        self.functions = FunctionRegistry(self.template, max_containers)
        self.dev_routes: dict[str, DevRoute] = {}
        self.log = log
        self.requests_served = 0
        for route in self.template.routes:
            if route.path.startswith("/_local"):
                raise ValueError(f"template route {route.path} uses the dev-only /_local prefix")
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                gateway.handle(self)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches dispatch (TRACE, PROPFIND, ...): API Gateway answers a method no
                # route has with its 403, where http.server would answer 501 by itself.
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
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
        """A dev-only route under ``/_local`` (outbox, reCAPTCHA stand-in): never part of template.yaml."""
        if not prefix.startswith("/_local"):
            raise ValueError("dev-only routes live under /_local")
        self.dev_routes[prefix] = handler

    # -- HTTP ----------------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        method = request.command
        parts = urlsplit(request.path)
        body = _read_body(request)
        headers = request.headers.items()
        host = request.headers.get("Host") or f"127.0.0.1:{self.port}"
        status, out_headers, payload = self.dispatch(
            method, parts.path, parts.query, request.path, headers, body, request.client_address[0], host
        )
        write_response(request, status, out_headers, payload)
        self.requests_served += 1
        if self.log is not None:
            self.log(f"{method} {redact_path(parts.path)} {status} {(time.perf_counter() - started) * 1000:.1f}ms")

    def dispatch(
        self,
        method: str,
        path: str,
        query: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        host: str = "127.0.0.1",
    ) -> Answer:
        """What API Gateway answers to this request (dev routes first, then template routes)."""
        if path.startswith("/_local"):
            return self._dev(method, path, headers, body)
        request_id = str(uuid.uuid4())
        base_path = ""
        if self.stage_prefix and (path == self.stage_prefix or path.startswith(self.stage_prefix + "/")):
            base_path, path = self.stage_prefix, path[len(self.stage_prefix) :] or "/"
        # A path or a method no route has: API Gateway's 403 (AWS re:Post knowledge center,
        # "api-gateway-authentication-token-errors": "a method or resource that does not exist").
        found = self.template.find_route(method, path)
        if found is None:
            return gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException", request_id)
        route, params = found
        user = None
        if route.iam:
            try:
                user = verify_sigv4(method, raw_path, dict(headers), body)
            except SignatureRejected as rejected:
                return gateway_error(403, rejected.message, rejected.error_type, request_id)
        event_headers = _with_forwarding(headers, source_ip, self.port)
        event = build_event(
            route,
            method,
            path,
            query,
            event_headers,
            body,
            params,
            source_ip,
            user,
            request_id=request_id,
            domain=host,
            base_path=base_path,
        )
        spec = self.template.function(route.function)
        started = time.monotonic()
        try:
            answer = self.functions.invoke(route.function, event, request_id)
        except Exception:
            self._log_error(f"{spec.logical_id} raised (request {request_id}):\n{traceback.format_exc()}")
            return gateway_error(502, "Internal server error", None, request_id)
        if time.monotonic() - started > spec.timeout_s * TIMEOUT_FACTOR:
            self._log_error(
                f"{spec.logical_id}: Task timed out after {spec.timeout_s}.00 seconds (request {request_id})"
            )
            return gateway_error(502, "Internal server error", None, request_id)
        try:
            status, out_headers, payload = proxy_answer(answer)
        except MalformedAnswer as error:
            self._log_error(f"{spec.logical_id}: malformed Lambda proxy response: {error} (request {request_id})")
            return gateway_error(502, "Internal server error", None, request_id)
        out_headers.append(("x-amzn-RequestId", request_id))
        return status, out_headers, payload

    def _dev(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        if path == "/_local/health":
            return 200, [("Content-Type", "application/json")], b'{"status":"ok"}'
        for prefix, dev in self.dev_routes.items():
            if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "."):
                status, dev_headers, payload = dev(method, path, dict(headers), body)
                return status, list(dev_headers.items()), payload
        return 404, [("Content-Type", "text/plain")], b"no such dev route"

    def _log_error(self, text: str) -> None:
        if self.log is not None:
            self.log(text)


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(request.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while request.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def _with_forwarding(headers: list[tuple[str, str]], source_ip: str, port: int) -> list[tuple[str, str]]:
    """The headers API Gateway adds: X-Forwarded-For (client IP appended), -Port, -Proto, trace id."""
    kept: list[tuple[str, str]] = []
    forwarded_for = None
    for name, value in headers:
        lower = name.lower()
        if lower == "x-forwarded-for":
            forwarded_for = value
        elif lower not in ("x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"):
            kept.append((name, value))
    kept.append(("X-Forwarded-For", f"{forwarded_for}, {source_ip}" if forwarded_for else source_ip))
    kept.append(("X-Forwarded-Port", str(port)))
    kept.append(("X-Forwarded-Proto", "http"))
    kept.append(("X-Amzn-Trace-Id", _trace_id()))
    return kept


__all__ = [
    "LOCAL_IAM_USERS",
    "FunctionRegistry",
    "IamAuth",
    "IamUser",
    "LocalGateway",
    "build_event",
    "iam_user",
    "proxy_answer",
    "redact_path",
    "sign_request",
    "verify_sigv4",
]
