"""Build the API's OpenAPI document from the handlers' own pydantic models.

Each function's Powertools resolver describes its routes; this merges them into one document,
adds the error answers (``{"code", "message"}`` with the stable codes) and the SigV4 scheme of the
firm routes. ``--write`` stores it as ``firmpay/web/openapi.json``, which ``GET /api/openapi.json``
serves; a test checks the stored document is current.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tomllib
from typing import Any

from local.template import ROOT, load_template

TARGET = ROOT / "layers" / "firmpay" / "firmpay" / "web" / "openapi.json"


def _resolver(name: str) -> Any:
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"firmpay_openapi_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return getattr(module, "app", None)


def build_document() -> dict[str, Any]:
    from firmpay.errors import ERROR_CLASSES

    template = load_template()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    iam_paths = {r.path.split("{proxy+}")[0] for r in template.routes if r.iam}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "FirmPay API",
            "version": version,
            "description": "Pay links, card and eCheck payments for law firms. Money is integer minor units.",
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {
                            "type": "string",
                            "enum": sorted({c.code for c in ERROR_CLASSES} | {"internal_error"}),
                        },
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                }
            },
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
        },
    }
    for name in sorted(set(template.functions.values())):
        app = _resolver(name)
        if app is None or not hasattr(app, "get_openapi_schema"):
            continue
        part = json.loads(app.get_openapi_json_schema(title="FirmPay API", version=version))
        for path, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                operation.setdefault("responses", {})
                for status in ("400", "403", "404", "409", "410", "422", "429", "503"):
                    error = {
                        "description": "Error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
                    # Our validation errors are {"code", "message"} too, not Powertools' default shape.
                    if status == "422" or status not in operation["responses"]:
                        operation["responses"][status] = error
                if any(path.startswith(prefix) for prefix in iam_paths):
                    operation["security"] = [{"sigv4": []}]
                document["paths"].setdefault(path, {})[method] = operation
        for schema_name, schema in part.get("components", {}).get("schemas", {}).items():
            document["components"]["schemas"].setdefault(schema_name, schema)
    return document


def render() -> str:
    return json.dumps(build_document(), indent=1, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.write:
        TARGET.write_text(text)
        print(f"wrote {TARGET.relative_to(ROOT)} ({len(json.loads(text)['paths'])} paths)")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
