"""What operators rely on in template.yaml: the optional WAF rate rule on the pay routes, who may
invoke autopay directly, no dead resources (the idempotency table), kms:Decrypt only where the
code decrypts, timeouts that outlast the clients' own retries, and no pay-link token in access
logs or traces."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "firmpay"


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


def route_modules(source: str) -> set[Path]:
    """The files of the ``firmpay.routes`` modules a source imports (the routers a handler includes)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            if name == "firmpay.routes" or name.startswith("firmpay.routes."):
                base = PACKAGE.joinpath(*name.split("."))
                found |= {p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()}
    return found


def handler_code(function: dict[str, Any]) -> str:
    """The handler's source and that of every route module it includes, transitively."""
    code = (ROOT / function["Properties"]["CodeUri"] / "app.py").read_text()
    seen: set[Path] = set()
    pending = route_modules(code)
    while pending:
        path = pending.pop()
        seen.add(path)
        text = path.read_text()
        code += "\n" + text
        pending |= route_modules(text) - seen
    return code


def test_handler_code_follows_the_routers_a_handler_includes(template: dict[str, Any]) -> None:
    # Given the firm API, whose routes live in firmpay.routes.firm: its code includes their modules
    code = handler_code(functions(template)["FirmApiFunction"])
    assert "def refund_payment(" in code
    assert "def revoke_method(" in code


def test_kms_decrypt_is_granted_exactly_to_the_functions_whose_code_decrypts(template: dict[str, Any]) -> None:
    for name, function in functions(template).items():
        code = handler_code(function)
        granted = any("kms:Decrypt" in actions(s) for s in statements(function))

        assert granted == bool(DECRYPTS.search(code)), f"{name}: kms:Decrypt granted={granted}"


# -- function timeouts outlast their clients' own retries -----------------------------------------------


def botocore_worst_case(config: Any) -> float:
    """Every attempt of one call to its connect and read timeouts, plus standard-mode backoff
    (at most 2**i seconds before retry i+1, capped at 20)."""
    attempts = config.retries.get("total_max_attempts") or config.retries["max_attempts"]
    backoff = sum(min(2**i, 20) for i in range(attempts - 1))
    return float(attempts * (config.connect_timeout + config.read_timeout) + backoff)


@pytest.fixture(scope="module")
def worst_cases() -> dict[str, float]:
    """Seconds one call of each client may take with all its retries, from the real clients."""
    import os

    from firmpay.config import get_settings
    from firmpay.gateways import kms, ses, stripe_gateway
    from firmpay.ledger import client

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
        # The deployed values (the template sets neither): a local stack started by an earlier
        # test raises both for a loaded two-core machine.
        patch.delenv("OUTBOUND_TIMEOUT_SECONDS", raising=False)
        patch.delenv("AWS_READ_TIMEOUT_SECONDS", raising=False)
        for cached in (client.dynamodb_client, kms.kms_client, ses.ses_client, get_settings):
            cached.cache_clear()  # clients an earlier test built on those settings
        try:
            settings = get_settings()
            dynamodb = botocore_worst_case(client.dynamodb_client()._client_config)
            kms_call = botocore_worst_case(kms.kms_client()._client_config)
            ses_config = ses.ses_client()._client_config
        finally:
            for cached in (client.dynamodb_client, kms.kms_client, ses.ses_client, get_settings):
                cached.cache_clear()
    # send_raw: ATTEMPTS sends, no SDK retries, sleeping 0.05 * 2**n between them
    ses_call = ses.ATTEMPTS * (ses_config.connect_timeout + ses_config.read_timeout) + sum(
        0.05 * 2**n for n in range(1, ses.ATTEMPTS)
    )
    # stripe-python: retries sleep 0.5 * 2**(n-1) s (at most 5)
    stripe_attempts = 1 + stripe_gateway.STRIPE_NETWORK_RETRIES
    stripe_call = stripe_attempts * (stripe_gateway.STRIPE_CONNECT_TIMEOUT + settings.outbound_timeout_seconds) + sum(
        min(0.5 * 2 ** (n - 1), 5) for n in range(1, stripe_attempts)
    )
    # plaid-python: urllib3's default Retry(3) re-tries failed connects (not reads of a POST)
    plaid_call = 4 * 2.0 + settings.outbound_timeout_seconds
    # reCAPTCHA: urllib's one timeout (5 s) bounds the connect and the read
    recaptcha_call = 2 * 5.0
    return {
        "dynamodb": dynamodb,
        "kms": kms_call,
        "ses": ses_call,
        "stripe": stripe_call,
        "plaid": plaid_call,
        "recaptcha": recaptcha_call,
    }


def clients_of(function: dict[str, Any]) -> set[str]:
    """The outside services a function calls, read from what the template gives it."""
    granted = {a for s in statements(function) for a in actions(s)}
    layers = {layer["Ref"] for layer in function["Properties"].get("Layers", [])}
    text = str(function["Properties"].get("Policies"))
    used = {"dynamodb"} if any(a.startswith("dynamodb:") for a in granted) else set()
    used |= {"ses"} if "ses:SendEmail" in granted else set()
    used |= {"kms"} if any(a.startswith("kms:") for a in granted) else set()
    used |= {"stripe"} if "StripeLayer" in layers else set()
    used |= {"plaid"} if "PlaidLayer" in layers else set()
    used |= {"recaptcha"} if "RecaptchaSecretParam" in text else set()
    return used


def test_every_function_timeout_outlasts_the_retries_of_each_of_its_clients(
    template: dict[str, Any], worst_cases: dict[str, float]
) -> None:
    default = template["Globals"]["Function"]["Timeout"]
    short = {}
    for name, function in functions(template).items():
        timeout = function["Properties"].get("Timeout", default)
        needed = max(worst_cases[c] for c in clients_of(function))
        if timeout < needed:
            short[name] = (timeout, needed)

    assert short == {}, f"Timeout (s) shorter than a client's worst case: {short}"
    assert worst_cases["ses"] > 15  # pay_link's old 10 s could not even wait out one SES read


def test_ses_sends_are_never_resent_by_the_sdk_and_other_aws_calls_are_retried() -> None:
    # botocore's ``max_attempts`` counts retries: {"max_attempts": 1} resent a SendEmail whose
    # answer timed out (a second email); send_raw alone decides what may be sent again.
    from firmpay.gateways import kms, ses
    from firmpay.ledger import client

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        try:
            attempts = {
                "ses": ses.ses_client()._client_config.retries["total_max_attempts"],
                "dynamodb": client.dynamodb_client()._client_config.retries["total_max_attempts"],
                "kms": kms.kms_client()._client_config.retries["total_max_attempts"],
            }
        finally:
            for cached in (client.dynamodb_client, kms.kms_client, ses.ses_client):
                cached.cache_clear()

    assert attempts == {"ses": 1, "dynamodb": 4, "kms": 3}


# -- no pay-link token in access logs or traces ---------------------------------------------------------


def test_access_logs_record_the_route_template_and_the_stage_has_no_url_recording_trace(
    template: dict[str, Any],
) -> None:
    api = template["Resources"]["Api"]["Properties"]
    log_format = api["AccessLogSetting"]["Fn::If"][1]["Format"]

    assert "$context.resourcePath" in log_format  # /pay/{token}, the template
    assert not re.search(r"\$context\.(path|requestOverride|domainName)", log_format)  # the path itself
    assert api["MethodSettings"][0]["DataTraceEnabled"] is False  # full request logs
    assert api["TracingEnabled"] is False  # X-Ray's API Gateway segment keeps http.request.url


def test_the_code_never_hands_a_request_path_to_the_tracer_or_logs_whole_events() -> None:
    sources = [*(ROOT / "layers/firmpay/firmpay").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]
    offending = [
        str(path.relative_to(ROOT))
        for path in sources
        if re.search(r"put_annotation|put_metadata|log_event\s*=\s*True|capture_response\s*=\s*True", path.read_text())
    ]

    assert offending == []
