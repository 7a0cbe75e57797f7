"""What operators rely on in template.yaml: the optional WAF rate rule on the pay routes, who may
invoke autopay directly, no dead resources (the idempotency table), kms:Decrypt only where the
code decrypts, timeouts that outlast the clients' own retries, and no pay-link token in access
logs or traces."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, errors = decode(str(ROOT / "template.yaml"))
    assert not errors
    assert decoded is not None
    return dict(decoded)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::Serverless::Function")


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function["Properties"].get("Policies", []) for s in policy.get("Statement", [])]


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


# -- WAF on the pay routes ---------------------------------------------------------------------------


def test_an_optional_waf_rate_rule_guards_the_pay_routes_of_the_stage(template: dict[str, Any]) -> None:
    [(acl_name, acl)] = resources(template, "AWS::WAFv2::WebACL").items()
    [association] = resources(template, "AWS::WAFv2::WebACLAssociation").values()
    condition = acl["Condition"]

    # optional, by a parameter
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "PayRouteWaf"}, "true"]}
    assert template["Parameters"]["PayRouteWaf"]["Default"] == "false"
    assert association["Condition"] == condition
    # a rate-based rule per IP, scoped to the pay routes, blocking with 429
    [rule] = acl["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["Limit"] == {"Ref": "PayRouteRateLimit"}
    assert rate["AggregateKeyType"] == "IP"
    match = rate["ScopeDownStatement"]["ByteMatchStatement"]
    assert (match["FieldToMatch"], match["PositionalConstraint"], match["SearchString"]) == (
        {"UriPath": {}},
        "CONTAINS",
        "/pay/",
    )
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    # on the REST API's stage (SAM's Api.Stage), regional
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert "/restapis/${Api}/stages/${Api.Stage}" in association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_name, "Arn"]}
    # sampled requests would keep full URIs, tokens included
    assert acl["Properties"]["VisibilityConfig"]["SampledRequestsEnabled"] is False
    assert rule["VisibilityConfig"]["SampledRequestsEnabled"] is False


# -- who may invoke autopay directly -------------------------------------------------------------------


def test_direct_invoke_of_autopay_is_granted_only_to_the_platform_billing_account(template: dict[str, Any]) -> None:
    permissions = resources(template, "AWS::Lambda::Permission")
    autopay = [p for p in permissions.values() if p["Properties"]["FunctionName"] == {"Ref": "AutopayChargeFunction"}]

    [grant] = autopay
    assert grant["Condition"] == "HasBillingBackendAccount"
    assert grant["Properties"]["Principal"] == {"Ref": "BillingBackendAccountId"}
    description = functions(template)["AutopayChargeFunction"]["Properties"]["Description"]
    assert "platform's own billing backend only" in description
    assert "POST /firm/autopay" in description


# -- no dead resources ---------------------------------------------------------------------------------


def code_reads_setting(field: str) -> bool:
    """Whether any module of the package or any handler reads ``settings.<field>``."""
    sources = [*(ROOT / "layers/firmpay/firmpay").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]
    pattern = re.compile(rf"\.{field}\b")
    return any(pattern.search(path.read_text()) for path in sources if path.name != "config.py")


def test_every_table_is_read_by_the_code_through_its_setting(template: dict[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    setting_of = {
        value["Ref"]: name.lower() for name, value in env.items() if isinstance(value, dict) and "Ref" in value
    }

    for table in resources(template, "AWS::DynamoDB::Table"):
        assert table in setting_of, f"{table} is not given to any function"
        assert code_reads_setting(setting_of[table]), f"{table} ({setting_of[table]}) is never used by the code"


# -- kms:Decrypt only where the code decrypts -----------------------------------------------------------

# What in a handler can decrypt a stored Plaid token: the eCheck submit (KmsVault, items of methods
# not stored) and the revocations (plaid_item_remover). KmsVault alone may only encrypt (plaid_link).
DECRYPTS = re.compile(r"plaid_item_remover|KmsVault\(\)[\s\S]*submit_echeck|submit_echeck[\s\S]*KmsVault\(\)")


def test_kms_decrypt_is_granted_exactly_to_the_functions_whose_code_decrypts(template: dict[str, Any]) -> None:
    for name, function in functions(template).items():
        code = (ROOT / function["Properties"]["CodeUri"] / "app.py").read_text()
        granted = any("kms:Decrypt" in actions(s) for s in statements(function))

        assert granted == bool(DECRYPTS.search(code)), f"{name}: kms:Decrypt granted={granted}"
