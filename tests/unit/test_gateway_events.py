"""The local API Gateway: events shaped like AWS's, API Gateway's route choice, SigV4 on IAM routes.

No network: requests go straight to ``LocalGateway.dispatch`` (the server socket is bound on
127.0.0.1 but never used), handlers are small modules written to a temporary directory.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from local.gateway import (
    LOCAL_IAM_USERS,
    LocalGateway,
    MalformedAnswer,
    SignatureRejected,
    build_event,
    iam_user,
    proxy_answer,
    redact_path,
    sign_request,
    verify_sigv4,
)
from local.lambda_context import LambdaContext
from local.template import Route, load_template, parse_template

# `SAM_CLI_TELEMETRY=0 sam local generate-event apigateway aws-proxy` (aws-sam-cli 1.170), headers trimmed.
SAM_SAMPLE: dict[str, Any] = {
    "body": "eyJ0ZXN0IjoiYm9keSJ9",
    "resource": "/{proxy+}",
    "path": "/path/to/resource",
    "httpMethod": "POST",
    "isBase64Encoded": True,
    "queryStringParameters": {"foo": "bar"},
    "multiValueQueryStringParameters": {"foo": ["bar"]},
    "pathParameters": {"proxy": "/path/to/resource"},
    "stageVariables": {"baz": "qux"},
    "headers": {
        "Accept": "text/html",
        "Host": "1234567890.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "Custom User Agent String",
    },
    "multiValueHeaders": {"Accept": ["text/html"], "Host": ["0123456789.execute-api.us-east-1.amazonaws.com"]},
    "requestContext": {
        "accountId": "123456789012",
        "resourceId": "123456",
        "stage": "prod",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "requestTime": "09/Apr/2015:12:34:56 +0000",
        "requestTimeEpoch": 1428582896000,
        "identity": {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "accessKey": None,
            "sourceIp": "127.0.0.1",
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": "Custom User Agent String",
            "user": None,
        },
        "path": "/prod/path/to/resource",
        "resourcePath": "/{proxy+}",
        "httpMethod": "POST",
        "apiId": "1234567890",
        "protocol": "HTTP/1.1",
    },
}

ECHO_HANDLER = """
import json, time

def lambda_handler(event, context):
    if event.get("body") == "boom":
        raise RuntimeError("boom")
    if event.get("body") == "slow":
        time.sleep(0.3)
    if event.get("body") == "malformed":
        return {"statusCode": 200, "body": {"not": "a string"}}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Single": "one"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps({"event": event, "module": __name__, "remaining": context.get_remaining_time_in_millis(),
                            "memory": context.memory_limit_in_mb, "function": context.function_name}),
    }
"""


def fixture_template(tmp_path: Path) -> Any:
    """A template with one echo function on literal, parameter, greedy, ANY and IAM routes."""
    (tmp_path / "functions" / "echo").mkdir(parents=True)
    (tmp_path / "functions" / "echo" / "app.py").write_text(ECHO_HANDLER)
    events = {
        "Literal": {"Path": "/firm/autopay", "Method": "post"},
        "Param": {"Path": "/pay/{token}", "Method": "get"},
        "Nested": {"Path": "/api/pay/{token}/card/{step}", "Method": "post"},
        "Greedy": {"Path": "/firm/{proxy+}", "Method": "any", "Auth": {"Authorizer": "AWS_IAM"}},
        "Exact": {"Path": "/things/{id}", "Method": "get"},
        "AnyThing": {"Path": "/things/{id}", "Method": "any"},
    }
    raw = {
        "Globals": {"Function": {"Timeout": 7, "MemorySize": 256, "Environment": {"Variables": {"A": "1"}}}},
        "Resources": {
            "EchoFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/echo/",
                    "Handler": "app.lambda_handler",
                    "Events": {name: {"Type": "Api", "Properties": props} for name, props in events.items()},
                },
            }
        },
    }
    return parse_template(raw, tmp_path / "template.yaml")


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    server = LocalGateway(port=0, template=fixture_template(tmp_path), log=None)
    yield server
    server.server.server_close()


def call(
    gateway: LocalGateway, method: str, path: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> Any:
    route, _, query = path.partition("?")
    status, out_headers, payload = gateway.dispatch(
        method,
        route,
        query,
        path,
        headers or [("Host", "127.0.0.1:3000"), ("User-Agent", "pytest")],
        body,
        "203.0.113.9",
    )
    return status, out_headers, payload


def keys(value: Any) -> set[str]:
    return set(value) if isinstance(value, dict) else set()


# -- the event -------------------------------------------------------------------------------------


def test_the_event_has_every_field_of_a_real_rest_api_event() -> None:
    route = Route.build("echo", "POST", "/{proxy+}", iam=False)
    event = build_event(
        route,
        "POST",
        "/path/to/resource",
        "foo=bar",
        [("Accept", "text/html"), ("User-Agent", "ua")],
        b"{}",
        {"proxy": "path/to/resource"},
        "127.0.0.1",
        None,
    )

    assert keys(SAM_SAMPLE) <= keys(event)
    assert keys(SAM_SAMPLE["requestContext"]) <= keys(event["requestContext"])
    assert keys(SAM_SAMPLE["requestContext"]["identity"]) <= keys(event["requestContext"]["identity"])
    for key, value in SAM_SAMPLE["requestContext"].items():
        if value is not None and key != "identity":
            assert type(event["requestContext"][key]) is type(value), key


def test_headers_query_and_path_parameters_are_shaped_as_api_gateway_does() -> None:
    route = Route.build("echo", "GET", "/pay/{token}", iam=False)
    headers = [("Accept", "a"), ("X-Dup", "1"), ("X-Dup", "2"), ("User-Agent", "Mobile Safari")]

    event = build_event(
        route, "GET", "/pay/ab%2Bc", "x=1&x=2&empty=&q=a%20b", headers, b"", {"token": "ab+c"}, "198.51.100.4", None
    )

    assert event["path"] == "/pay/ab%2Bc"
    assert event["pathParameters"] == {"token": "ab+c"}
    assert event["headers"]["X-Dup"] == "2"
    assert event["multiValueHeaders"]["X-Dup"] == ["1", "2"]
    assert event["queryStringParameters"] == {"x": "2", "empty": "", "q": "a b"}
    assert event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["identity"]["sourceIp"] == "198.51.100.4"
    assert context["identity"]["userAgent"] == "Mobile Safari"
    assert context["resourcePath"] == "/pay/{token}"
    assert context["path"] == "/local/pay/ab%2Bc"
    assert abs(context["requestTimeEpoch"] - time.time() * 1000) < 5000


def test_a_binary_body_arrives_base64_encoded() -> None:
    route = Route.build("echo", "POST", "/upload", iam=False)
    event = build_event(route, "POST", "/upload", "", [], b"\xff\x00\xfe", {}, "127.0.0.1", None)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"


def test_powertools_reads_the_event_like_a_deployed_one() -> None:
    route = Route.build("echo", "POST", "/api/pay/{token}/card/{step}", iam=False)
    event = build_event(
        route,
        "POST",
        "/api/pay/tok/card/review",
        "a=1",
        [("Content-Type", "application/json")],
        b'{"amount_minor": 5}',
        {"token": "tok", "step": "review"},
        "192.0.2.1",
        None,
    )

    parsed = APIGatewayProxyEvent(event)

    assert parsed.json_body == {"amount_minor": 5}
    assert parsed.path_parameters == {"token": "tok", "step": "review"}
    assert parsed.request_context.identity.source_ip == "192.0.2.1"
    assert parsed.query_string_parameters == {"a": "1"}
    assert parsed.resource == "/api/pay/{token}/card/{step}"


# -- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "resource", "params"),
    [
        ("POST", "/firm/autopay", "/firm/autopay", {}),
        ("POST", "/firm/clients/c1/bills", "/firm/{proxy+}", {"proxy": "clients/c1/bills"}),
        ("GET", "/pay/abc", "/pay/{token}", {"token": "abc"}),
        ("POST", "/api/pay/t/card/submit", "/api/pay/{token}/card/{step}", {"token": "t", "step": "submit"}),
        ("GET", "/things/7", "/things/{id}", {"id": "7"}),
    ],
)
def test_the_most_specific_route_wins(
    tmp_path: Path, method: str, path: str, resource: str, params: dict[str, str]
) -> None:
    template = fixture_template(tmp_path)
    found = template.find_route(method, path)
    assert found is not None
    route, got = found
    assert (route.path, got) == (resource, params)


def test_an_exact_method_beats_any_on_the_same_resource(tmp_path: Path) -> None:
    template = fixture_template(tmp_path)
    get = template.find_route("GET", "/things/1")
    delete = template.find_route("DELETE", "/things/1")
    assert get is not None
    assert delete is not None
    assert get[0].event_name == "Exact"
    assert delete[0].event_name == "AnyThing"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("POST", "/pay/abc"), ("GET", "/pay/abc/extra"), ("GET", "/pay/"), ("GET", "/firm")],
)
def test_unknown_routes_get_api_gateways_403(gateway: LocalGateway, method: str, path: str) -> None:
    status, headers, payload = call(gateway, method, path)
    assert status == 403
    assert json.loads(payload) == {"message": "Missing Authentication Token"}
    assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in headers


def test_the_real_templates_firm_routes_need_iam_and_pay_routes_do_not() -> None:
    template = load_template()
    autopay = template.find_route("POST", "/firm/autopay")
    firm = template.find_route("GET", "/firm/firms/f1")
    page = template.find_route("GET", "/pay/some-token")
    assert autopay is not None
    assert firm is not None
    assert page is not None
    assert (autopay[0].function, autopay[0].iam) == ("autopay_charge", True)
    assert (firm[0].function, firm[0].iam, firm[1]) == ("firm_api", True, {"proxy": "firms/f1"})
    assert (page[0].function, page[0].iam) == ("pay_link", False)
    assert not any(r.path.startswith("/_local") for r in template.routes)


def test_tokens_never_reach_the_request_log() -> None:
    assert redact_path("/pay/s3cr3t") == "/pay/<token>"
    assert redact_path("/api/pay/s3cr3t/card/review") == "/api/pay/<token>/card/review"
    assert redact_path("/firm/clients") == "/firm/clients"


# -- handler invocation and answers ----------------------------------------------------------------


def test_a_request_reaches_the_handler_and_its_answer_comes_back(gateway: LocalGateway) -> None:
    status, headers, payload = call(gateway, "GET", "/pay/tok-1?x=1")

    assert status == 200
    answer = json.loads(payload)
    assert answer["event"]["pathParameters"] == {"token": "tok-1"}
    assert answer["event"]["headers"]["X-Forwarded-For"] == "203.0.113.9"
    assert answer["memory"] == "256"  # a string, as the Python runtime gives it
    assert 6000 < answer["remaining"] <= 7000
    assert answer["function"] == "firmpay-local-EchoFunction"
    assert ("Set-Cookie", "a=1") in headers
    assert ("Set-Cookie", "b=2") in headers
    assert ("X-Single", "one") in headers


def test_a_crashing_or_malformed_handler_is_a_502(gateway: LocalGateway) -> None:
    for body in (b"boom", b"malformed"):
        status, _, payload = call(gateway, "POST", "/firm/autopay", body)
        assert status == 502
        assert json.loads(payload) == {"message": "Internal server error"}


def test_each_concurrent_request_gets_its_own_container(gateway: LocalGateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: json.loads(call(gateway, "POST", "/firm/autopay", b"slow")[2]), range(4)))

    assert len({a["module"] for a in answers}) == 4
    assert gateway.functions.containers("echo") == 4


def test_proxy_answers_merge_headers_and_decode_base64() -> None:
    status, headers, body = proxy_answer(
        {
            "statusCode": "201",
            "headers": {"A": "x", "B": "y"},
            "multiValueHeaders": {"A": ["1", "2"]},
            "body": "aGk=",
            "isBase64Encoded": True,
        }
    )
    assert status == 201
    assert body == b"hi"
    assert [v for k, v in headers if k == "A"] == ["1", "2"]
    assert ("Content-Type", "application/json") in headers
    with pytest.raises(MalformedAnswer):
        proxy_answer({"body": "no status"})


# -- SigV4 on IAM routes ---------------------------------------------------------------------------


def signed(method: str, url: str, body: str, key: str = "AKIALOCALFIRMUS00001") -> list[tuple[str, str]]:
    headers = sign_request(method, url, body, key, {"Content-Type": "application/json"})
    return [("Host", "127.0.0.1:3000"), *headers.items()]


def test_a_signed_request_reaches_the_handler_with_the_callers_arn(gateway: LocalGateway) -> None:
    body = '{"name": "Hartley"}'
    status, _, payload = call(
        gateway,
        "POST",
        "/firm/clients?x=1",
        body.encode(),
        signed("POST", "http://127.0.0.1:3000/firm/clients?x=1", body),
    )

    assert status == 200
    identity = json.loads(payload)["event"]["requestContext"]["identity"]
    assert identity["userArn"] == "arn:aws:iam::000000000000:user/firm-us"
    assert identity["accessKey"] == "AKIALOCALFIRMUS00001"
    assert identity["accountId"] == "000000000000"


def test_unsigned_and_forged_requests_to_iam_routes_are_refused(gateway: LocalGateway) -> None:
    url = "http://127.0.0.1:3000/firm/clients"
    unsigned = call(gateway, "POST", "/firm/clients", b"{}")
    tampered = call(gateway, "POST", "/firm/clients", b'{"x": 2}', signed("POST", url, '{"x": 1}'))
    other_path = call(gateway, "POST", "/firm/bills", b"{}", signed("POST", url, "{}"))

    assert (unsigned[0], json.loads(unsigned[2])) == (403, {"message": "Missing Authentication Token"})
    for status, _, payload in (tampered, other_path):
        assert status == 403
        assert json.loads(payload)["message"].startswith("The request signature we calculated does not match")


def test_verify_rejects_unknown_keys_wrong_secrets_other_services_and_old_signatures() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = "http://127.0.0.1:3000/firm/clients"

    def sign_with(key: str, secret: str, service: str = "execute-api") -> dict[str, str]:
        request = AWSRequest(method="GET", url=url, data=b"")
        SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
        return {"Host": "127.0.0.1:3000", **dict(request.headers.items())}

    user = iam_user("firm-ca")
    assert verify_sigv4("GET", "/firm/clients", sign_with(user.access_key, user.secret_key), b"") == user
    cases = {
        "The security token included in the request is invalid.": sign_with("AKIAUNKNOWN000000000", "x"),
        "The request signature we calculated does not match": sign_with(user.access_key, "wrong-secret"),
        "Credential should be scoped to correct service": sign_with(user.access_key, user.secret_key, "s3"),
    }
    for message, headers in cases.items():
        with pytest.raises(SignatureRejected) as rejected:
            verify_sigv4("GET", "/firm/clients", headers, b"")
        assert rejected.value.message.startswith(message)
    with pytest.raises(SignatureRejected) as expired:
        verify_sigv4("GET", "/firm/clients", sign_with(user.access_key, user.secret_key), b"", now=time.time() + 900)
    assert expired.value.message.startswith("Signature expired")


def test_the_local_principals_are_the_demo_firms_and_an_operator() -> None:
    names = {user.name for user in LOCAL_IAM_USERS.values()}
    assert {"firm-us", "firm-ca", "operator"} <= names


def test_the_lambda_context_counts_down_to_the_timeout() -> None:
    context = LambdaContext("PayLinkFunction", memory_mb=1024, timeout_s=10)
    assert context.invoked_function_arn.endswith(":function:firmpay-local-PayLinkFunction")
    assert 9000 < context.get_remaining_time_in_millis() <= 10000
    assert context.memory_limit_in_mb == "1024"


POWERTOOLS_HANDLER = """
import time
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

app = APIGatewayRestResolver()


@app.get("/who/<name>")
def who(name: str) -> dict:
    asked = app.current_event.get_query_string_value("n")
    time.sleep(0.02)  # other requests run meanwhile
    return {"name": name, "asked": asked, "still": app.current_event.get_query_string_value("n")}


def lambda_handler(event, context):
    return app.resolve(event, context)
"""


def test_concurrent_requests_never_see_each_others_powertools_event(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "functions" / "who").mkdir(parents=True)
    (tmp_path / "functions" / "who" / "app.py").write_text(POWERTOOLS_HANDLER)
    raw = {
        "Resources": {
            "WhoFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/who/",
                    "Handler": "app.lambda_handler",
                    "Events": {"Who": {"Type": "Api", "Properties": {"Path": "/who/{name}", "Method": "get"}}},
                },
            }
        }
    }
    server = LocalGateway(port=0, template=parse_template(raw, tmp_path / "template.yaml"), log=None, max_containers=4)
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: json.loads(call(server, "GET", f"/who/p{i}?n={i}")[2]), range(40)))
    finally:
        server.server.server_close()

    assert [(a["name"], a["asked"], a["still"]) for a in answers] == [(f"p{i}", str(i), str(i)) for i in range(40)]


def test_the_local_gateway_s_own_errors_carry_the_template_s_gateway_response_headers() -> None:
    from cfnlint.decode import decode

    from local.gateway import GATEWAY_RESPONSE_HEADERS, gateway_error

    template, _ = decode(str(Path(__file__).resolve().parents[2] / "template.yaml"))
    responses = template["Resources"]["Api"]["Properties"]["GatewayResponses"]
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        declared = {k: v.strip("'") for k, v in responses[kind]["ResponseParameters"]["Headers"].items()}
        assert declared == GATEWAY_RESPONSE_HEADERS
    _, headers, _ = gateway_error(403, "Missing Authentication Token")
    assert set(GATEWAY_RESPONSE_HEADERS.items()) <= set(headers)
