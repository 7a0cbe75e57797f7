"""Print each function's IAM role exactly as SAM generates it (run with .sam-venv's python).

    .sam-venv/bin/python -m local.sam_roles < template.json > roles.json

Reads a decoded template (JSON, intrinsics as ``{"Ref": ...}``) on stdin and writes
``{"<function logical id>": {"role": "<role logical id>", "policies": [<PolicyDocument>, ...],
"managed": ["<managed policy ARN>", ...]}}``. The policies are SAM's own output: policy templates
expanded from samtranslator's ``policy_templates.json``, inline statements, and what SAM adds by
itself (the execution role's managed policies, an event source's read permissions, an on-failure
destination's send permission). Intrinsics stay unresolved; ``local.iam`` resolves them.

samtranslator lives in .sam-venv (aws-sam-cli's pins clash with the project's), hence a separate
process; ``local.iam`` caches the answer per template.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


class _NoManagedPolicyNames:
    """SAM asks for the account's managed policy names only when a template names one by name."""

    def load(self) -> dict[str, str]:
        return {}


def roles(template: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    for resource in template.get("Resources", {}).values():  # SAM wants S3 URIs; the code is irrelevant here
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://firmpay-local/code.zip"
        if resource.get("Type") == "AWS::Serverless::LayerVersion" and "ContentUri" in props:
            props["ContentUri"] = "s3://firmpay-local/layer.zip"
    output = transform(template, {}, _NoManagedPolicyNames())
    resources = output["Resources"]
    found: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role_ref = (resource.get("Properties") or {}).get("Role")
        if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
            found[logical_id] = {"role": None, "policies": [], "managed": []}  # an external role: unknown here
            continue
        target = role_ref["Fn::GetAtt"]
        role_id = (target.split(".", 1) if isinstance(target, str) else target)[0]
        props = resources[role_id].get("Properties") or {}
        found[logical_id] = {
            "role": role_id,
            "policies": [policy["PolicyDocument"] for policy in props.get("Policies") or []],
            "managed": list(props.get("ManagedPolicyArns") or []),
        }
    return found


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # SAM fills AWS::Region; never used for a call
    json.dump(roles(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
