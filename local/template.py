"""template.yaml as the local stack needs it: functions, API routes, the stream mapping, tables, schedules.

The template is read with ``cfnlint.decode.decode`` (plain dicts, intrinsic functions left as
``{"Ref": ...}``), then described with small typed records. Nothing here knows FirmPay: it reads
whatever the template declares, so the local stack follows the template instead of a copy of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"

# Rank of one path segment when several routes match: a literal beats {param}, which beats {proxy+}
# (API Gateway walks its resource tree segment by segment, preferring the most specific child).
_LITERAL, _PARAM, _GREEDY = 2, 1, 0


class TemplateError(RuntimeError):
    """The template cannot be read, or uses something the local stack cannot resolve."""


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` with its Globals applied."""

    logical_id: str
    name: str  # directory under functions/ (CodeUri's last part)
    code_dir: Path
    handler: str  # "app.lambda_handler"
    runtime: str
    memory_mb: int
    timeout_s: int
    environment: Mapping[str, Any]  # Globals merged with the function's own, intrinsics unresolved
    layers: tuple[Any, ...] = ()

    @property
    def module_file(self) -> Path:
        """The handler's source file (``app.py`` for ``app.lambda_handler``)."""
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]

    def resolved_environment(self, resolver: Resolver) -> dict[str, str]:
        """The function's environment variables with every intrinsic replaced by a local value."""
        return {key: resolver.resolve_str(value) for key, value in self.environment.items()}


@dataclass(frozen=True)
class Route:
    """One ``Api`` event: method + path of the REST API, and whether it needs SigV4 (AWS_IAM)."""

    function: str  # directory name under functions/
    method: str  # GET, POST, ... or ANY
    path: str  # /pay/{token}, /firm/{proxy+}
    iam: bool
    event_name: str = ""
    segments: tuple[tuple[int, str], ...] = field(default=(), compare=False)

    @classmethod
    def build(cls, function: str, method: str, path: str, iam: bool, event_name: str = "") -> Route:
        segments: list[tuple[int, str]] = []
        for part in path.strip("/").split("/") if path.strip("/") else []:
            if part.startswith("{") and part.endswith("+}"):
                segments.append((_GREEDY, part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                segments.append((_PARAM, part[1:-1]))
            else:
                segments.append((_LITERAL, part))
        return cls(function, method.upper(), path, iam, event_name, tuple(segments))

    @property
    def auth(self) -> str:
        return "AWS_IAM" if self.iam else "NONE"

    @property
    def rank(self) -> tuple[tuple[int, ...], int]:
        """Sort key, most specific first: segment kinds left to right, then exact method over ANY."""
        return tuple(kind for kind, _ in self.segments), 0 if self.method == "ANY" else 1

    def match_path(self, path: str) -> dict[str, str] | None:
        """Path parameters (URL-decoded, as API Gateway passes them) if ``path`` fits this resource."""
        parts = path.strip("/").split("/") if path.strip("/") else []
        params: dict[str, str] = {}
        for index, (kind, value) in enumerate(self.segments):
            if kind == _GREEDY:
                rest = parts[index:]
                if not rest or not all(rest):
                    return None
                params[value] = unquote("/".join(rest))
                return params
            if index >= len(parts) or not parts[index]:
                return None
            if kind == _LITERAL:
                if parts[index] != value:
                    return None
            else:
                params[value] = unquote(parts[index])
        return params if len(parts) == len(self.segments) else None

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        return self.match_path(path)


@dataclass(frozen=True)
class StreamMapping:
    """A ``DynamoDB`` event source mapping as the template declares it."""

    function: str
    event_name: str
    source: str  # logical id of the table whose stream feeds it
    starting_position: str
    batch_size: int
    window_seconds: float
    max_retries: int  # -1: until the record expires
    max_record_age: int  # -1: no limit
    bisect: bool
    report_failures: bool
    filters: list[dict[str, Any]]
    on_failure: str | None  # logical id of the SQS queue (or SNS topic) for discarded batches
    on_failure_type: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """An ``AWS::DynamoDB::Table``: enough to create the same table in moto."""

    logical_id: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    global_secondary_indexes: list[dict[str, Any]]
    local_secondary_indexes: list[dict[str, Any]]
    stream_view_type: str | None
    ttl_attribute: str | None

    def create_table_args(self, table_name: str) -> dict[str, Any]:
        """``CreateTable`` arguments (on-demand billing; the template's keys, indexes and stream)."""
        args: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.attribute_definitions,
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.global_secondary_indexes:
            args["GlobalSecondaryIndexes"] = self.global_secondary_indexes
        if self.local_secondary_indexes:
            args["LocalSecondaryIndexes"] = self.local_secondary_indexes
        if self.stream_view_type:
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view_type}
        return args


@dataclass(frozen=True)
class Schedule:
    """A ``Schedule``/``ScheduleV2`` event: what EventBridge would send the function, and how often."""

    function: str
    event_name: str
    expression: str
    input: Any  # the decoded Input (EventBridge Scheduler sends it as the event)


@dataclass(frozen=True)
class Template:
    path: Path
    raw: dict[str, Any]
    functions: dict[str, str]  # logical id -> directory name (kept for tools that only need names)
    specs: dict[str, FunctionSpec]  # directory name -> full description
    routes: list[Route]  # most specific first
    streams: list[StreamMapping]
    tables: dict[str, TableSpec]
    schedules: list[Schedule]
    parameters: dict[str, Any]  # parameter name -> Default

    @property
    def stream(self) -> StreamMapping | None:
        """The (only) DynamoDB stream mapping, if any."""
        return self.streams[0] if self.streams else None

    def resource(self, logical_id: str) -> dict[str, Any]:
        return dict(self.raw["Resources"][logical_id])

    def resources_of_type(self, kind: str) -> list[str]:
        return [lid for lid, res in self.raw["Resources"].items() if res.get("Type") == kind]

    def function(self, name: str) -> FunctionSpec:
        """A function by directory name (``pay_link``) or logical id (``PayLinkFunction``)."""
        if name in self.specs:
            return self.specs[name]
        if name in self.functions:
            return self.specs[self.functions[name]]
        raise KeyError(f"no function {name!r} in {self.path.name} (known: {', '.join(sorted(self.specs))})")

    def find_route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route API Gateway would pick for ``method path``, with its path parameters."""
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None


class Resolver:
    """Replaces ``Ref``/``Fn::Sub``/``Fn::GetAtt``/``Fn::Join`` with local values.

    ``parameters`` override the template's parameter defaults; ``physical`` gives what ``Ref`` of a
    resource means locally (table name, queue URL, key id); ``attributes`` give ``Fn::GetAtt``
    values keyed ``"Logical.Attribute"``.
    """

    def __init__(
        self,
        template: Template,
        parameters: Mapping[str, str] | None = None,
        physical: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self._values: dict[str, str] = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "firmpay-local",
            "AWS::NoValue": "",
        }
        for name, default in template.parameters.items():
            if default is not None:
                self._values[name] = str(default)
        self._values.update(parameters or {})
        self._values.update(physical or {})
        self._attributes = dict(attributes or {})

    def ref(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise TemplateError(f"no local value for Ref {name!r}") from None

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self._attributes[f"{logical_id}.{attribute}"]
        except KeyError:
            raise TemplateError(f"no local value for Fn::GetAtt {logical_id}.{attribute}") from None

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Fn::GetAtt":
                logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(str(logical_id), str(attribute))
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                local = {k: self.resolve_str(v) for k, v in extra.items()}
                return re.sub(r"\$\{([^}!][^}]*)\}", lambda m: self._sub(m.group(1), local), text)
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(self.resolve_str(item) for item in items)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local stack")
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def resolve_str(self, value: Any) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        return str(resolved)

    def _sub(self, name: str, local: Mapping[str, str]) -> str:
        if name in local:
            return local[name]
        if "." in name and name not in self._values:
            logical_id, attribute = name.split(".", 1)
            return self.get_att(logical_id, attribute)
        return self.ref(name)


def _plain(value: Any) -> Any:
    """cfn-lint's node subclasses turned into plain dicts/lists/strings."""
    return json.loads(json.dumps(value))


def _merge_globals(globals_: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(globals_)
    for key, value in props.items():
        if key == "Environment":
            variables = dict((globals_.get("Environment") or {}).get("Variables") or {})
            variables.update((value or {}).get("Variables") or {})
            merged["Environment"] = {"Variables": variables}
        elif key == "Layers":
            merged["Layers"] = list(globals_.get("Layers") or []) + list(value or [])
        else:
            merged[key] = value
    return merged


def _function_spec(logical_id: str, props: Mapping[str, Any], root: Path) -> FunctionSpec:
    code_uri = props.get("CodeUri")
    if not isinstance(code_uri, str):
        raise TemplateError(f"{logical_id}: CodeUri must be a local directory")
    code_dir = (root / code_uri).resolve()
    return FunctionSpec(
        logical_id=logical_id,
        name=Path(code_uri).name,
        code_dir=code_dir,
        handler=str(props.get("Handler", "app.lambda_handler")),
        runtime=str(props.get("Runtime", "")),
        memory_mb=int(props.get("MemorySize", 128)),
        timeout_s=int(props.get("Timeout", 3)),
        environment=dict((props.get("Environment") or {}).get("Variables") or {}),
        layers=tuple(props.get("Layers") or ()),
    )


def _stream_mapping(function: str, event_name: str, ep: Mapping[str, Any]) -> StreamMapping:
    stream = ep.get("Stream")
    source = ""
    if isinstance(stream, dict) and "Fn::GetAtt" in stream:
        target = stream["Fn::GetAtt"]
        source = (target.split(".", 1) if isinstance(target, str) else target)[0]
    destination = ((ep.get("DestinationConfig") or {}).get("OnFailure")) or {}
    on_failure = None
    target = destination.get("Destination")
    if isinstance(target, dict):
        ref = target.get("Fn::GetAtt") or target.get("Ref")
        on_failure = (ref.split(".", 1)[0] if isinstance(ref, str) else ref[0]) if ref else None
    filters = [json.loads(f["Pattern"]) for f in (ep.get("FilterCriteria") or {}).get("Filters", [])]
    return StreamMapping(
        function=function,
        event_name=event_name,
        source=source,
        starting_position=str(ep.get("StartingPosition", "LATEST")),
        batch_size=int(ep.get("BatchSize", 100)),
        window_seconds=float(ep.get("MaximumBatchingWindowInSeconds", 0)),
        max_retries=int(ep.get("MaximumRetryAttempts", -1)),
        max_record_age=int(ep.get("MaximumRecordAgeInSeconds", -1)),
        bisect=bool(ep.get("BisectBatchOnFunctionError", False)),
        report_failures="ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
        filters=filters,
        on_failure=on_failure,
        on_failure_type=destination.get("Type"),
    )


def _table_spec(logical_id: str, props: Mapping[str, Any]) -> TableSpec:
    def index(spec: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k in ("IndexName", "KeySchema", "Projection")}

    ttl = props.get("TimeToLiveSpecification") or {}
    return TableSpec(
        logical_id=logical_id,
        key_schema=list(props["KeySchema"]),
        attribute_definitions=list(props["AttributeDefinitions"]),
        global_secondary_indexes=[index(g) for g in props.get("GlobalSecondaryIndexes") or []],
        local_secondary_indexes=[index(g) for g in props.get("LocalSecondaryIndexes") or []],
        stream_view_type=(props.get("StreamSpecification") or {}).get("StreamViewType"),
        ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
    )


def parse_template(raw: dict[str, Any], path: Path = TEMPLATE) -> Template:
    """Describe an already-decoded template (tests pass small fixtures here)."""
    raw = _plain(raw)
    root = path.parent
    globals_ = (raw.get("Globals") or {}).get("Function") or {}
    functions: dict[str, str] = {}
    specs: dict[str, FunctionSpec] = {}
    routes: list[Route] = []
    streams: list[StreamMapping] = []
    tables: dict[str, TableSpec] = {}
    schedules: list[Schedule] = []
    for logical_id, resource in (raw.get("Resources") or {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == "AWS::DynamoDB::Table":
            tables[logical_id] = _table_spec(logical_id, props)
            continue
        if kind != "AWS::Serverless::Function":
            continue
        spec = _function_spec(logical_id, _merge_globals(globals_, props), root)
        functions[logical_id] = spec.name
        specs[spec.name] = spec
        for event_name, event in (props.get("Events") or {}).items():
            event_type, ep = event.get("Type"), event.get("Properties") or {}
            if event_type == "Api":
                iam = (ep.get("Auth") or {}).get("Authorizer") == "AWS_IAM"
                routes.append(Route.build(spec.name, str(ep["Method"]), str(ep["Path"]), iam, event_name))
            elif event_type == "DynamoDB":
                streams.append(_stream_mapping(spec.name, event_name, ep))
            elif event_type in ("Schedule", "ScheduleV2"):
                text = ep.get("Input")
                schedules.append(
                    Schedule(
                        spec.name,
                        event_name,
                        str(ep.get("ScheduleExpression") or ep.get("Schedule") or ""),
                        json.loads(text) if isinstance(text, str) else {},
                    )
                )
    routes.sort(key=lambda r: r.rank, reverse=True)
    parameters = {name: p.get("Default") for name, p in (raw.get("Parameters") or {}).items()}
    return Template(path, raw, functions, specs, routes, streams, tables, schedules, parameters)


CACHE = ROOT / ".local" / "cache"


@lru_cache(maxsize=4)
def load_template(path: Path = TEMPLATE) -> Template:
    """template.yaml, decoded by cfn-lint once per process.

    cfn-lint's import costs ~0.5 s, so its output is also kept under ``.local/cache/`` keyed by the
    template's SHA-256: an unchanged template is read back as JSON (what every stack start does).
    """
    data = path.read_bytes()
    cached = CACHE / f"template-{hashlib.sha256(data).hexdigest()[:32]}.json"
    try:
        return parse_template(json.loads(cached.read_text(encoding="utf-8")), path)
    except (OSError, ValueError):
        pass
    from cfnlint.decode import decode

    raw, problems = decode(str(path))
    if raw is None:
        raise TemplateError(f"cannot read {path}: {problems}")
    template = parse_template(raw, path)
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob("template-*.json"):
            old.unlink(missing_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(template.raw), encoding="utf-8")
        partial.replace(cached)
    except OSError:
        pass  # a read-only checkout still works, just slower
    return template


def table_definition(template: Template, logical_id: str) -> dict[str, Any]:
    """CreateTable arguments (without TableName) built from the template's own table definition."""
    args = template.tables[logical_id].create_table_args("")
    del args["TableName"]
    return args


def ttl_attribute(template: Template, logical_id: str) -> str | None:
    return template.tables[logical_id].ttl_attribute
