"""IAM on the local stack: every AWS call a function makes is checked against its role's policies.

On AWS each function runs as its execution role, and a call outside the role's policies fails with
``AccessDeniedException``; moto and DynamoDB Local check nothing. Here:

1. ``sam_roles()`` asks samtranslator (in .sam-venv) for each function's role as SAM generates it:
   inline statements, policy templates expanded, the managed policies and event-source and
   destination permissions SAM adds by itself. ``LocalIam.from_template`` resolves the intrinsics
   with the stack's ``Resolver`` to the local ARNs.
2. ``acting_as(function)`` marks the invocation's thread (a contextvar; ``FunctionRegistry.invoke``
   wraps every invocation, the stream poller's included). A botocore ``before-send`` hook
   (``install_caller_header()``, registered by the local stack, never by firmpay code) copies it
   into the ``x-firmpay-local-function`` header of every request that thread sends.
3. The AWS proxy calls ``LocalIam.authorize`` first thing: a request with that header is mapped to
   the (action, resource ARN, condition context) AWS would authorize (``authorization_requests``),
   evaluated with AWS's logic (``evaluate``), and refused in the service's own wire format.
   Requests without it (tests' own clients, stack set-up, seeding) are the operator's: allowed.

What it cannot see or does not model (docs/decisions.md, "Local IAM"): calls from threads a
function starts itself (a new thread has an empty context: its calls look like the operator's);
resource-based policies (KMS key policies, SQS queue policies, DynamoDB resource policies),
permission boundaries, SCPs and session policies; the KMS Decrypt SSM performs for a SecureString;
condition keys other than those ``request_context`` fills in.

Sources: IAM policy evaluation logic and the access-denied message format (IAM User Guide,
"Policy evaluation logic", "Troubleshoot access denied error messages"; ARN wildcards, "IAM JSON
policy elements: Resource"; condition operators, "IAM JSON policy elements: Condition operators");
DynamoDB's per-item authorization of transactions ("Using IAM with DynamoDB transactions").
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import email.utils
import fnmatch
import functools
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.template import ROOT, Resolver, Template, TemplateError

CALLER_HEADER = "x-firmpay-local-function"
SAM_PYTHON = ROOT / ".sam-venv" / "bin" / "python"
CACHE = ROOT / ".local" / "cache"

_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("firmpay_local_function", default=None)

# The AWS managed policies SAM attaches to function roles, as AWS publishes them (AWS Managed Policy
# Reference: AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess, AWSLambdaDynamoDBExecutionRole).
MANAGED_POLICIES: dict[str, dict[str, Any]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ]
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": "*",
            }
        ]
    },
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole": {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                ],
                "Resource": "*",
            }
        ]
    },
}


class IamPolicyError(TemplateError):
    """A policy uses something local IAM does not evaluate (it refuses to guess)."""


# -- who is calling ---------------------------------------------------------------------------------


@contextlib.contextmanager
def acting_as(function: str) -> Iterator[None]:
    """AWS calls made by this thread inside the block are ``function``'s (its logical id)."""
    token = _caller.set(function)
    try:
        yield
    finally:
        _caller.reset(token)


def current_caller() -> str | None:
    return _caller.get()


def _add_caller_header(request: Any, **_: Any) -> None:
    caller = _caller.get()
    if caller is not None:
        request.headers[CALLER_HEADER] = caller


@functools.cache
def install_caller_header() -> None:
    """Every botocore session created from now on tags its requests with the calling function.

    ``BUILTIN_HANDLERS`` is what each new botocore session registers (firmpay creates its clients
    from fresh sessions, lazily, inside invocations); ``before-send`` runs after signing, just
    before the HTTP request leaves, with the request's headers still writable.
    """
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.append(("before-send", _add_caller_header))


# -- policies -------------------------------------------------------------------------------------

_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Bool",
    "Null",
}
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


@dataclass(frozen=True)
class Condition:
    """One operator/key/values triple of a Condition block (``ForAnyValue:``/``...IfExists`` kept apart)."""

    operator: str
    key: str
    values: tuple[str, ...]
    set_operator: str | None = None  # ForAllValues | ForAnyValue
    if_exists: bool = False

    @classmethod
    def parse(cls, operator: str, key: str, values: Any) -> Condition:
        set_operator, _, name = operator.rpartition(":")
        if_exists = name.endswith("IfExists")
        name = name.removesuffix("IfExists")
        if name not in _OPERATORS or set_operator not in ("", "ForAllValues", "ForAnyValue"):
            raise IamPolicyError(f"condition operator {operator!r} is not evaluated by local IAM (local/iam.py)")
        return cls(name, key.lower(), _strings(values), set_operator or None, if_exists)

    def holds(self, context: Mapping[str, Sequence[str]]) -> bool:
        present = context.get(self.key)
        if self.operator == "Null":
            wants_missing = self.values[0].lower() == "true"
            return (not present) == wants_missing
        if not present:
            if self.set_operator == "ForAllValues":
                return True  # vacuously true: AWS's documented ForAllValues trap
            if self.set_operator == "ForAnyValue":
                return False
            return self.if_exists or self.operator in _NEGATED
        if self.set_operator == "ForAllValues":
            return all(self._one(value) for value in present)
        return any(self._one(value) for value in present)

    def _one(self, value: str) -> bool:
        negated = self.operator in _NEGATED
        base = self.operator.replace("Not", "", 1) if negated else self.operator
        matched = any(_compare(base, value, expected) for expected in self.values)
        return not matched if negated else matched


def _compare(operator: str, value: str, expected: str) -> bool:
    if operator == "StringEquals":
        return value == expected
    if operator == "StringEqualsIgnoreCase":
        return value.lower() == expected.lower()
    if operator == "StringLike":
        return _like(value, expected)
    if operator == "ArnEquals":
        return value == expected
    if operator == "ArnLike":
        return arn_matches(expected, value)
    if operator == "Bool":
        return value.lower() == expected.lower()
    raise IamPolicyError(f"condition operator {operator!r} is not evaluated by local IAM")


def _like(value: str, pattern: str) -> bool:
    """IAM's ``*`` (any run of characters) and ``?`` (one character), case-sensitive; nothing else is special."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """An ARN against a policy's Resource (or ArnLike) pattern.

    ``*`` alone is every resource. Otherwise each of the six colon-separated parts is matched on
    its own (the sixth, the resource, keeps its own colons and slashes), with ``*`` and ``?``
    (IAM User Guide, "IAM JSON policy elements: Resource" and "Condition operators: ARN").
    """
    if pattern == "*":
        return True
    wanted = pattern.split(":", 5)
    actual = arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        return pattern == arn
    return all(_like(part, want) for part, want in zip(actual, wanted, strict=True))


def action_matches(pattern: str, action: str) -> bool:
    """Actions compare case-insensitively, with ``*`` and ``?`` wildcards (``dynamodb:Get*``)."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


@dataclass(frozen=True)
class Statement:
    effect: str  # Allow | Deny
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    sid: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        effect = str(raw.get("Effect", ""))
        if effect not in ("Allow", "Deny"):
            raise IamPolicyError(f"statement {raw.get('Sid', '')!r}: Effect must be Allow or Deny, not {effect!r}")
        if "Principal" in raw or "NotPrincipal" in raw:
            raise IamPolicyError("an identity-based policy has no Principal")
        conditions = tuple(
            Condition.parse(operator, key, values)
            for operator, block in (raw.get("Condition") or {}).items()
            for key, values in block.items()
        )
        return cls(
            effect=effect,
            actions=_strings(raw.get("Action")),
            not_actions=_strings(raw.get("NotAction")),
            resources=_strings(raw.get("Resource")),
            not_resources=_strings(raw.get("NotResource")),
            conditions=conditions,
            sid=str(raw.get("Sid", "")),
        )

    def applies(self, action: str, resource: str, context: Mapping[str, Sequence[str]]) -> bool:
        if self.actions:
            if not any(action_matches(p, action) for p in self.actions):
                return False
        elif any(action_matches(p, action) for p in self.not_actions):
            return False
        if self.resources:
            if not any(arn_matches(p, resource) for p in self.resources):
                return False
        elif any(arn_matches(p, resource) for p in self.not_resources):
            return False
        return all(condition.holds(context) for condition in self.conditions)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool = False
    statement: str = ""  # the Sid that decided it, when there is one


def evaluate(
    statements: Sequence[Statement], action: str, resource: str, context: Mapping[str, Sequence[str]]
) -> Decision:
    """Identity-based policies of one principal in one account: an explicit Deny wins, then any
    Allow, else the implicit deny (IAM User Guide, "Policy evaluation logic")."""
    allow: Statement | None = None
    for statement in statements:
        if not statement.applies(action, resource, context):
            continue
        if statement.effect == "Deny":
            return Decision(False, explicit_deny=True, statement=statement.sid)
        allow = allow or statement
    if allow is not None:
        return Decision(True, statement=allow.sid)
    return Decision(False)


def parse_policy(document: Mapping[str, Any]) -> list[Statement]:
    raw = document.get("Statement") or []
    return [Statement.parse(s) for s in (raw if isinstance(raw, list) else [raw])]


# -- requests as AWS authorizes them --------------------------------------------------------------


@dataclass(frozen=True)
class AuthRequest:
    """One authorization AWS makes for a request (a transaction or batch makes several)."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Resources:
    """Local names to ARNs, as the stack created them (so ARNs match what the policies resolve to)."""

    region: str
    account: str
    tables: dict[str, str] = field(default_factory=dict)  # table name -> table ARN
    queues: dict[str, str] = field(default_factory=dict)  # queue URL -> queue ARN
    keys: dict[str, str] = field(default_factory=dict)  # key id, key ARN or alias name/ARN -> key ARN
    ses_identities: set[str] = field(default_factory=set)

    def table_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return name
        return self.tables.get(name) or f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"

    def queue_arn(self, url: str) -> str:
        if url in self.queues:
            return self.queues[url]
        account, _, name = urlsplit(url).path.strip("/").partition("/")
        return f"arn:aws:sqs:{self.region}:{account or self.account}:{name}"

    def key_arn(self, key_id: str) -> str:
        """KMS authorizes on the key's ARN, an alias resolved to its key first."""
        if key_id in self.keys:
            return self.keys[key_id]
        if key_id.startswith("arn:"):
            return key_id
        if key_id.startswith("alias/"):
            return f"arn:aws:kms:{self.region}:{self.account}:{key_id}"
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def ses_identity_arn(self, address: str) -> str:
        """SES authorizes a send on the sender's identity: the address if verified as one, else its domain."""
        domain = address.rpartition("@")[2]
        identity = address if address in self.ses_identities or domain not in self.ses_identities else domain
        return f"arn:aws:ses:{self.region}:{self.account}:identity/{identity}"


_TRANSACT_WRITE = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_STREAM_ARN = re.compile(r"arn:aws[\w-]*:dynamodb:[^|\"\s]+?/stream/[^|\"\s]+")
_KMS_KEY_IN_BLOB = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _dynamodb(operation: str, body: dict[str, Any], res: Resources) -> list[AuthRequest]:
    """DynamoDB API permissions: one action per table (index ARNs for index reads), per item in transactions."""
    if operation == "TransactWriteItems":
        found = []
        for item in body.get("TransactItems") or []:
            for kind, spec in item.items():
                found.append(
                    AuthRequest(f"dynamodb:{_TRANSACT_WRITE.get(kind, kind)}", res.table_arn(spec["TableName"]))
                )
        return found
    if operation == "TransactGetItems":
        return [
            AuthRequest("dynamodb:GetItem", res.table_arn(item["Get"]["TableName"]))
            for item in body.get("TransactItems") or []
            if "Get" in item
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [AuthRequest(f"dynamodb:{operation}", res.table_arn(name)) for name in body.get("RequestItems") or {}]
    name = body.get("TableName") or body.get("TableArn") or body.get("ResourceArn")
    if not name:
        return [AuthRequest(f"dynamodb:{operation}", "*")]
    arn = res.table_arn(str(name))
    if body.get("IndexName") and operation in ("Query", "Scan"):
        arn = f"{arn}/index/{body['IndexName']}"
    return [AuthRequest(f"dynamodb:{operation}", arn)]


def _dynamodb_streams(operation: str, body: dict[str, Any]) -> list[AuthRequest]:
    arn = body.get("StreamArn")
    if not arn:  # GetRecords names a shard iterator; both engines embed the stream ARN in it
        found = _STREAM_ARN.search(str(body.get("ShardIterator", "")))
        arn = found.group(0) if found else "*"
    return [AuthRequest(f"dynamodb:{operation}", str(arn))]


def _kms(operation: str, body: dict[str, Any], res: Resources) -> list[AuthRequest]:
    key = body.get("KeyId") or body.get("DestinationKeyId")
    if not key and body.get("CiphertextBlob"):  # Decrypt without KeyId: the key named in the ciphertext
        with contextlib.suppress(ValueError):
            found = _KMS_KEY_IN_BLOB.search(base64.b64decode(body["CiphertextBlob"])[:64])
            key = found.group(0).decode() if found else None
    return [AuthRequest(f"kms:{operation}", res.key_arn(str(key)) if key else "*")]


def _ssm(operation: str, body: dict[str, Any], res: Resources) -> list[AuthRequest]:
    names = body.get("Names") or [body.get("Name") or body.get("Path") or ""]
    return [
        AuthRequest(f"ssm:{operation}", f"arn:aws:ssm:{res.region}:{res.account}:parameter/{str(n).lstrip('/')}")
        for n in names
    ]


def _sqs(operation: str, params: Mapping[str, Any], res: Resources) -> list[AuthRequest]:
    url = params.get("QueueUrl")
    action = f"sqs:{_SQS_BATCH.get(operation, operation)}"
    return [AuthRequest(action, res.queue_arn(str(url)) if url else "*")]


def _ses_send(body: dict[str, Any], res: Resources) -> list[AuthRequest]:
    """SES v2 SendEmail: the sending identity and the configuration set, with SES's condition keys."""
    sender = str(body.get("FromEmailAddress") or "")
    raw = ((body.get("Content") or {}).get("Raw") or {}).get("Data")
    if not sender and raw:
        with contextlib.suppress(ValueError):
            text = base64.b64decode(raw).decode("utf-8", "replace")
            sender = next((line[5:].strip() for line in text.splitlines() if line.lower().startswith("from:")), "")
    display, address = email.utils.parseaddr(sender)
    destination = body.get("Destination") or {}
    recipients = tuple(
        email.utils.parseaddr(a)[1]
        for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
        for a in destination.get(kind) or []
    )
    context: dict[str, tuple[str, ...]] = {
        "ses:fromaddress": (address,) if address else (),
        "ses:fromdisplayname": (display,) if display else (),
        "ses:recipients": recipients,
        "ses:feedbackaddress": _strings(body.get("FeedbackForwardingEmailAddress")),
        "ses:apiversion": ("2",),
    }
    found = [AuthRequest("ses:SendEmail", res.ses_identity_arn(address), context)]
    if body.get("ConfigurationSetName"):
        arn = f"arn:aws:ses:{res.region}:{res.account}:configuration-set/{body['ConfigurationSetName']}"
        found.append(AuthRequest("ses:SendEmail", arn, context))
    return found


def authorization_requests(
    service: str, operation: str, method: str, path: str, body: bytes, headers: Mapping[str, str], res: Resources
) -> list[AuthRequest]:
    """What AWS authorizes for one request: (action, resource ARN, condition context), each of which must be allowed."""
    form = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    if service == "dynamodb":
        return _dynamodb(operation, _json(body), res)
    if service == "dynamodbstreams":
        return _dynamodb_streams(operation, _json(body))
    if service == "kms":
        return _kms(operation, _json(body), res)
    if service == "ssm":
        return _ssm(operation, _json(body), res)
    if service == "sqs":
        if form:
            query = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
            query.setdefault("QueueUrl", f"http://sqs{urlsplit(path).path}" if urlsplit(path).path.strip("/") else "")
            return _sqs(operation, {k: v for k, v in query.items() if v}, res)
        return _sqs(operation, _json(body), res)
    if service == "ses" and urlsplit(path).path.startswith("/v2/email/outbound-emails"):
        return _ses_send(_json(body), res)
    if service == "ses" and operation in ("SendEmail", "SendRawEmail"):  # SES v1, query protocol
        source = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}.get("Source", "")
        address = email.utils.parseaddr(source)[1]
        return [AuthRequest(f"ses:{operation}", res.ses_identity_arn(address), {"ses:fromaddress": (address,)})]
    return [AuthRequest(f"{service}:{operation}", "*")]


# -- the roles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    function: str  # logical id
    role_name: str
    principal_arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<function name> (Lambda's session name)
    statements: tuple[Statement, ...]


Answer = tuple[int, list[tuple[str, str]], bytes]


class LocalIam:
    """The functions' roles, resolved to local ARNs; ``authorize`` is the AWS proxy's hook."""

    def __init__(self, roles: Mapping[str, Role], resources: Resources, resolver: Resolver | None = None) -> None:
        self.roles = dict(roles)
        self.resources = resources
        self.resolver = resolver
        self.denials: list[str] = []  # every refusal's message, in order (tests look here)
        self.on_denial: Callable[[str], None] | None = None  # the stack's request log

    @classmethod
    def from_template(cls, template: Template, resolver: Resolver, resources: Resources) -> LocalIam:
        roles: dict[str, Role] = {}
        for function, role in sam_roles(template).items():
            documents = [resolver.resolve(doc) for doc in role["policies"]]
            for arn in role["managed"]:
                arn = resolver.resolve_str(arn)
                if arn not in MANAGED_POLICIES:
                    raise IamPolicyError(f"{function}: managed policy {arn} is unknown to local IAM (local/iam.py)")
                documents.append(MANAGED_POLICIES[arn])
            statements = tuple(s for doc in documents for s in parse_policy(doc))
            role_name = f"{resolver.ref('AWS::StackName')}-{role['role'] or function + 'Role'}"
            session = resolver.ref(function)
            arn = f"arn:aws:sts::{resources.account}:assumed-role/{role_name}/{session}"
            roles[function] = Role(function, role_name, arn, statements)
        return cls(roles, resources, resolver)

    def for_template(self, template: Template) -> LocalIam:
        """The roles another version of the template would give, on this stack's resources (tests)."""
        assert self.resolver is not None
        other = LocalIam.from_template(template, self.resolver, self.resources)
        other.on_denial = self.on_denial
        return other

    def authorize(
        self, service: str, operation: str, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        """None to let the request through; otherwise AWS's refusal, in the request's protocol."""
        caller = headers.get(CALLER_HEADER)
        if caller is None:
            return None  # the operator: tests, stack set-up, seeding
        role = self.roles.get(caller)
        for request in authorization_requests(service, operation, method, path, body, headers, self.resources):
            decision = evaluate(role.statements if role else (), request.action, request.resource, request.context)
            if not decision.allowed:
                principal = (
                    role.principal_arn if role else f"arn:aws:sts::{self.resources.account}:assumed-role/{caller}"
                )
                return self._refuse(service, path, headers, principal, request, decision)
        return None

    def _refuse(
        self,
        service: str,
        path: str,
        headers: Mapping[str, str],
        principal: str,
        request: AuthRequest,
        decision: Decision,
    ) -> Answer:
        reason = (
            "with an explicit deny in an identity-based policy"
            if decision.explicit_deny
            else f"because no identity-based policy allows the {request.action} action"
        )
        message = (
            f"User: {principal} is not authorized to perform: {request.action} on resource: {request.resource} {reason}"
        )
        self.denials.append(message)
        if self.on_denial is not None:
            self.on_denial(f"local IAM: AccessDenied: {message}")
        return access_denied(service, path, headers, message, principal, request)


def access_denied(
    service: str, path: str, headers: Mapping[str, str], message: str, principal: str, request: AuthRequest
) -> Answer:
    """AccessDenied as each service sends it (botocore raises the same error code as on AWS).

    JSON protocols (DynamoDB, KMS, SSM): 400 ``AccessDeniedException`` (the services' "Common
    Errors"; DynamoDB's ``__type`` is ``com.amazon.coral.service#AccessDeniedException``). SQS: 403
    ``AccessDenied`` "Access to the resource <queue URL> is denied." (query XML, or JSON with the
    ``x-amzn-query-error`` header botocore reads). SES: 403, with SES's own quoting
    (User `arn' is not authorized to perform `ses:SendEmail' on resource `arn').
    """
    request_id = hashlib.sha256(message.encode()).hexdigest()[:32]
    if service == "sqs":
        text = f"Access to the resource {_queue_url(request.resource)} is denied."
        if "x-amz-target" in headers:
            body = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "message": text})
            return (
                403,
                [
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-query-error", "AccessDenied;Sender"),
                    ("x-amzn-RequestId", request_id),
                ],
                body.encode(),
            )
        return (
            403,
            [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)],
            _query_error("AccessDenied", text, request_id),
        )
    if service == "ses":
        text = f"User `{principal}' is not authorized to perform `{request.action}' on resource `{request.resource}'"
        if urlsplit(path).path.startswith("/v2/"):
            return (
                403,
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", "AccessDeniedException"),
                    ("x-amzn-RequestId", request_id),
                ],
                json.dumps({"message": text}).encode(),
            )
        return (
            403,
            [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)],
            _query_error("AccessDenied", text, request_id),
        )
    if "x-amz-target" in headers:
        if service in ("dynamodb", "dynamodbstreams"):
            error = {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": message}
        else:
            error = {"__type": "AccessDeniedException", "message": message}
        content_type = headers.get("content-type", "application/x-amz-json-1.1")
        return 400, [("Content-Type", content_type), ("x-amzn-RequestId", request_id)], json.dumps(error).encode()
    if urlsplit(path).path.startswith("/v2/") or headers.get("content-type", "").startswith("application/json"):
        return (
            403,
            [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", "AccessDeniedException"),
                ("x-amzn-RequestId", request_id),
            ],
            json.dumps({"message": message}).encode(),
        )
    return (
        403,
        [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)],
        _query_error("AccessDenied", message, request_id),
    )


def _queue_url(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) == 6:
        return f"https://sqs.{parts[3]}.amazonaws.com/{parts[4]}/{parts[5]}"
    return arn


def _query_error(code: str, message: str, request_id: str) -> bytes:
    from xml.sax.saxutils import escape

    return (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


# -- SAM's roles, cached --------------------------------------------------------------------------


def sam_roles(template: Template) -> dict[str, Any]:
    """``local.sam_roles`` run in .sam-venv on this template; cached under .local/cache by content."""
    source = json.dumps(template.raw, sort_keys=True)
    script = (ROOT / "local" / "sam_roles.py").read_bytes()
    digest = hashlib.sha256(source.encode() + script).hexdigest()[:32]
    cached = CACHE / f"iam-roles-{digest}.json"
    with contextlib.suppress(OSError, ValueError):
        found: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
        return found
    if not SAM_PYTHON.exists():
        raise TemplateError(f"local IAM needs samtranslator from {SAM_PYTHON.parent.parent} (scripts/bootstrap.sh)")
    done = subprocess.run(
        [str(SAM_PYTHON), "-m", "local.sam_roles"],
        input=source.encode(),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise TemplateError(f"SAM could not translate the template: {done.stderr.decode(errors='replace')[-2000:]}")
    found = json.loads(done.stdout)
    with contextlib.suppress(OSError):
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(found), encoding="utf-8")
        partial.replace(cached)
    return found


def denial_summary(denials: Sequence[str]) -> str:
    """The distinct refusals, one a line (for a test's failure message)."""
    return "\n".join(dict.fromkeys(denials))


__all__ = [
    "CALLER_HEADER",
    "MANAGED_POLICIES",
    "AuthRequest",
    "Condition",
    "Decision",
    "IamPolicyError",
    "LocalIam",
    "Resources",
    "Role",
    "Statement",
    "acting_as",
    "action_matches",
    "arn_matches",
    "authorization_requests",
    "evaluate",
    "install_caller_header",
    "parse_policy",
    "sam_roles",
]
