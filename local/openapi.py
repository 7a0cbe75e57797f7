"""Build the API's OpenAPI document from the handlers' own pydantic models.

Every ``functions/<name>/app.py`` with a module-level Powertools resolver ``app`` describes its
own routes (placeholders without one are skipped). This merges their documents (paths and
component schemas) into one, then makes it say what the API really does:

- every operation lists the error answers, ``{"code", "message"}`` with the stable codes of
  ``firmpay.errors.ERROR_CLASSES`` (instead of Powertools' default validation-error shape, which
  FirmPay never sends);
- operations behind an ``AWS_IAM`` route of template.yaml need the ``sigv4`` security scheme;
- a 204 answer has no body.

``python -m local.openapi --write`` (``make openapi``) stores it as
``layers/firmpay/firmpay/web/openapi.json`` (sorted keys: stable, reviewable diffs), which
``GET /api/openapi.json`` serves; a test fails when the stored document is not what this builds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from local.template import ROOT, Template, load_template

TARGET = ROOT / "layers" / "firmpay" / "firmpay" / "web" / "openapi.json"
FUNCTIONS = ROOT / "functions"
TITLE = "FirmPay API"
DESCRIPTION = (
    "Pay links, card and eCheck payments for US and Canadian law firms. Money is always an integer "
    "count of minor units (cents) with an ISO currency; dates are ISO (YYYY-MM-DD). Every error "
    'answers `{"code", "message"}` with a stable `code`. Routes under `/firm/` need requests signed '
    "with AWS Signature Version 4 (service `execute-api`) by an IAM principal of the firm; API "
    "Gateway itself refuses unsigned or badly signed requests with a 403."
)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ERROR_REF = "#/components/schemas/Error"


class OpenApiConflict(RuntimeError):
    """Two functions document the same operation, or two different schemas share one name."""


# -- loading the handlers --------------------------------------------------------------------------


@contextlib.contextmanager
def _import_environment() -> Iterator[None]:
    """What a handler module needs to import: some create their AWS clients at module scope.

    Creating a client needs a region, never a network call; the environment is restored after.
    """
    defaults = {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    saved = {name: os.environ.get(name) for name in defaults}
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def load_resolvers(functions_dir: Path = FUNCTIONS) -> dict[str, Any]:
    """Function name -> its module-level resolver, for every ``functions/*/app.py`` that has one.

    Each module is loaded by path under a name of its own (``_firmpay_openapi_<function>``), with
    its directory first on ``sys.path`` as in Lambda, so two functions never share a module.
    """
    resolvers: dict[str, Any] = {}
    with _import_environment():
        for path in sorted(functions_dir.glob("*/app.py")):
            name = path.parent.name
            module_name = f"_firmpay_openapi_{name}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            sys.path.insert(0, str(path.parent))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.parent))
            app = getattr(module, "app", None)
            if callable(getattr(app, "get_openapi_json_schema", None)):
                resolvers[name] = app
    return resolvers


# -- merging ----------------------------------------------------------------------------------------


def error_statuses() -> dict[int, list[str]]:
    """HTTP status -> the stable error codes answered with it (plus 500 ``internal_error``)."""
    from firmpay.errors import ERROR_CLASSES

    statuses: dict[int, set[str]] = {500: {"internal_error"}}
    for error in ERROR_CLASSES:
        statuses.setdefault(error.status, set()).add(error.code)
    return {status: sorted(codes) for status, codes in sorted(statuses.items())}


def _error_schema() -> dict[str, Any]:
    """The ``Error`` schema, its ``code`` an enum of every stable code."""
    from firmpay.models.api import ErrorOut

    schema = ErrorOut.model_json_schema()
    schema["title"] = "Error"
    schema["properties"]["code"]["enum"] = sorted({code for codes in error_statuses().values() for code in codes})
    schema["properties"]["code"]["description"] = "Stable; part of the API contract."
    return schema


def _error_response(codes: list[str]) -> dict[str, Any]:
    return {
        "description": "Error: " + ", ".join(f"`{code}`" for code in codes) + ".",
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }


def _skeleton(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": version, "description": DESCRIPTION},
        "servers": [{"url": "/", "description": "The API's own origin (relative to this document's host)."}],
        "paths": {},
        "components": {
            "schemas": {"Error": _error_schema()},
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4, service `execute-api`, by an IAM principal.",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
        },
    }


_HTML = {"text/html": {"schema": {"type": "string"}}}
# Answers Powertools cannot describe from the handlers' signatures (a handler returning a
# ``Response[str]`` is documented as a JSON string with status 200): pages, assets, the document
# itself. (method, path) -> the success responses, replacing Powertools' ones.
SUCCESS_RESPONSES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/pay/{token}"): {"200": {"description": "The pay page (HTML).", "content": _HTML}},
    ("get", "/methods/remove/{token}"): {"200": {"description": "The removal page (HTML).", "content": _HTML}},
    ("post", "/methods/remove/{token}"): {"200": {"description": "The method is removed (HTML).", "content": _HTML}},
    ("get", "/assets/{name}"): {
        "200": {
            "description": "A static asset of the pay page.",
            "content": {
                "text/css": {"schema": {"type": "string"}},
                "text/javascript": {"schema": {"type": "string"}},
            },
        }
    },
    ("get", "/api/openapi.json"): {
        "200": {"description": "This document.", "content": {"application/json": {"schema": {"type": "object"}}}}
    },
    ("get", "/firm/firms/{firm_id}/payables/{payable_id}/payments/{payment_id}/mandate/print"): {
        "200": {"description": "The authorization as a printable page (HTML).", "content": _HTML}
    },
}
# Pages answer their errors as pages too ("This payment link is not valid").
HTML_ERRORS = {("get", "/pay/{token}"), ("get", "/methods/remove/{token}"), ("post", "/methods/remove/{token}")}


def _shape_operation(operation: dict[str, Any], iam: bool, method: str = "", path: str = "") -> dict[str, Any]:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in [s for s in responses if s.isdigit() and int(s) >= 400]:
        del responses[status]  # Powertools' validation-error shape; ours replace it below
    for code_status, codes in error_statuses().items():
        responses[str(code_status)] = _error_response(codes)
        if (method, path) in HTML_ERRORS:
            responses[str(code_status)]["content"] = {**responses[str(code_status)]["content"], **_HTML}
    if (method, path) in SUCCESS_RESPONSES:
        for status in [s for s in responses if s.isdigit() and int(s) < 400]:
            del responses[status]
        responses.update(SUCCESS_RESPONSES[method, path])
    if "204" in responses:
        responses["204"] = {"description": responses["204"].get("description", "No content.")}
    if iam:
        operation["security"] = [{"sigv4": []}]
    return operation


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _prune_schemas(document: dict[str, Any]) -> None:
    """Drop component schemas nothing refers to (Powertools' validation-error models)."""
    schemas = document["components"]["schemas"]
    prefix = "#/components/schemas/"
    wanted: set[str] = set()
    pending = [r for r in _refs(document["paths"]) if r.startswith(prefix)]
    while pending:
        name = pending.pop().removeprefix(prefix)
        if name in wanted or name not in schemas:
            continue
        wanted.add(name)
        pending += [r for r in _refs(schemas[name]) if r.startswith(prefix)]
    for name in set(schemas) - wanted:
        del schemas[name]


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def build_document(
    resolvers: dict[str, Any] | None = None, template: Template | None = None, version: str | None = None
) -> dict[str, Any]:
    """The merged OpenAPI document of every function's resolver."""
    resolvers = load_resolvers() if resolvers is None else resolvers
    template = template or load_template()
    version = version or project_version()
    document = _skeleton(version)
    schemas: dict[str, Any] = document["components"]["schemas"]
    owners: dict[tuple[str, str], str] = {}
    for function in sorted(resolvers):
        part = json.loads(resolvers[function].get_openapi_json_schema(title=TITLE, version=version))
        for path, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                if method not in HTTP_METHODS:
                    continue
                if (path, method) in owners:
                    raise OpenApiConflict(
                        f"{method.upper()} {path}: documented by {owners[path, method]} and {function}"
                    )
                owners[path, method] = function
                found = template.find_route(method.upper(), path)
                iam = found is not None and found[0].iam
                document["paths"].setdefault(path, {})[method] = _shape_operation(operation, iam, method, path)
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise OpenApiConflict(f"two different schemas are named {name!r} (one is in {function})")
            schemas[name] = schema
    _prune_schemas(document)
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """``(METHOD, path)`` of every operation of ``document``."""
    return sorted(
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    )


def render(document: dict[str, Any] | None = None) -> str:
    """The document as stored: sorted keys, one-space indent, trailing newline."""
    return json.dumps(build_document() if document is None else document, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {TARGET.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        TARGET.write_text(text)
        print(f"wrote {TARGET.relative_to(ROOT)} ({len(operations(json.loads(text)))} operations)")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
