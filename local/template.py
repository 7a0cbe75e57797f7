"""template.yaml as the local stack needs it: functions, API routes, the stream mapping, tables."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


@dataclass(frozen=True)
class Route:
    function: str  # directory name under functions/
    method: str  # GET, POST, ... or ANY
    path: str  # /pay/{token}
    iam: bool
    pattern: re.Pattern[str] = field(compare=False)
    specificity: tuple[int, int] = (0, 0)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class StreamMapping:
    function: str
    batch_size: int
    window_seconds: int
    max_retries: int
    max_record_age: int
    bisect: bool
    report_failures: bool
    filters: list[dict[str, Any]]


@dataclass(frozen=True)
class Template:
    raw: dict[str, Any]
    functions: dict[str, str]  # logical id -> directory name
    routes: list[Route]
    stream: StreamMapping | None
    schedules: dict[str, list[str]]  # function dir -> schedule inputs

    def resource(self, logical_id: str) -> dict[str, Any]:
        return dict(self.raw["Resources"][logical_id])


def _compile(path: str) -> tuple[re.Pattern[str], tuple[int, int]]:
    parts, literal = [], 0
    for segment in path.strip("/").split("/"):
        if segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
            literal += 1
    greedy = 0 if path.endswith("+}") else 1
    return re.compile("/" + "/".join(parts)), (greedy, literal)


@lru_cache(maxsize=1)
def load_template(path: Path = TEMPLATE) -> Template:
    from cfnlint.decode import decode

    raw, problems = decode(str(path))
    if raw is None:
        raise RuntimeError(f"cannot read {path}: {problems}")
    functions: dict[str, str] = {}
    routes: list[Route] = []
    stream: StreamMapping | None = None
    schedules: dict[str, list[str]] = {}
    for logical_id, resource in raw["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        name = Path(props["CodeUri"]).name
        functions[logical_id] = name
        for event in (props.get("Events") or {}).values():
            kind, ep = event["Type"], event.get("Properties", {})
            if kind == "Api":
                pattern, specificity = _compile(ep["Path"])
                iam = (ep.get("Auth") or {}).get("Authorizer") == "AWS_IAM"
                method = str(ep["Method"]).upper()
                routes.append(Route(name, method, ep["Path"], iam, pattern, specificity))
            elif kind == "DynamoDB":
                filters = [json.loads(f["Pattern"]) for f in (ep.get("FilterCriteria") or {}).get("Filters", [])]
                stream = StreamMapping(
                    function=name,
                    batch_size=int(ep.get("BatchSize", 100)),
                    window_seconds=int(ep.get("MaximumBatchingWindowInSeconds", 0)),
                    max_retries=int(ep.get("MaximumRetryAttempts", -1)),
                    max_record_age=int(ep.get("MaximumRecordAgeInSeconds", -1)),
                    bisect=bool(ep.get("BisectBatchOnFunctionError", False)),
                    report_failures="ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
                    filters=filters,
                )
            elif kind in ("Schedule", "ScheduleV2"):
                schedules.setdefault(name, []).append(ep.get("Input", "{}"))
    routes.sort(key=lambda r: r.specificity, reverse=True)
    return Template(raw, functions, routes, stream, schedules)


def table_definition(template: Template, logical_id: str) -> dict[str, Any]:
    """CreateTable arguments built from the template's own table definition."""
    props = template.resource(logical_id)["Properties"]
    definition: dict[str, Any] = {
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if props.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = [
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for gsi in props["GlobalSecondaryIndexes"]
        ]
    if props.get("StreamSpecification"):
        definition["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    return definition


def ttl_attribute(template: Template, logical_id: str) -> str | None:
    spec = template.resource(logical_id)["Properties"].get("TimeToLiveSpecification")
    return spec["AttributeName"] if spec and spec.get("Enabled") else None
