"""The OpenAPI document: generated from the handlers' own models, committed, current, valid, and
saying what the API really does (firm routes signed with SigV4, errors as ``{"code", "message"}``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from firmpay.errors import ERROR_CLASSES
from local.openapi import TARGET, build_document, error_statuses, load_resolvers, operations, render
from local.template import load_template

FIRM_OPERATIONS = {
    # (method, path): (success status, request body schema or None)
    ("POST", "/firm/firms"): ("201", "CreateFirmRequest"),
    ("GET", "/firm/firms/{firm_id}"): ("200", None),
    ("POST", "/firm/firms/{firm_id}/clients"): ("201", "CreateClientRequest"),
    ("GET", "/firm/firms/{firm_id}/clients/{client_id}"): ("200", None),
    ("POST", "/firm/firms/{firm_id}/bills"): ("201", "CreateBillRequest"),
    ("POST", "/firm/firms/{firm_id}/trust-requests"): ("201", "CreateTrustRequestRequest"),
    ("GET", "/firm/firms/{firm_id}/payables/{payable_id}"): ("200", None),
    ("POST", "/firm/firms/{firm_id}/payables/{payable_id}/void"): ("200", None),
    ("POST", "/firm/firms/{firm_id}/payables/{payable_id}/links"): ("201", "IssueLinkRequest"),
    ("DELETE", "/firm/firms/{firm_id}/payables/{payable_id}/links/current"): ("204", None),
    ("POST", "/firm/firms/{firm_id}/payables/{payable_id}/links/revoke"): ("200", None),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(json.loads(TARGET.read_text()))


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref} does not resolve"
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


def request_schema(operation: dict[str, Any]) -> str | None:
    if "requestBody" not in operation:
        return None
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    options = schema.get("anyOf", [schema])  # an optional body is "the model or null"
    [ref] = [o["$ref"] for o in options if "$ref" in o]
    return str(ref.rsplit("/", 1)[1])


def test_the_committed_document_is_what_the_handlers_generate_now(document: dict[str, Any]) -> None:
    assert TARGET.read_text() == render(), (
        "layers/firmpay/firmpay/web/openapi.json is stale: run `make openapi` and commit it"
    )


def test_the_document_is_the_same_every_time_it_is_built() -> None:
    assert render(build_document()) == render(build_document())


def test_every_reference_resolves_and_the_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "FirmPay API"
    assert document["servers"][0]["url"] == "/"
    for ref in refs(document):
        resolve(document, ref)
    try:
        from openapi_spec_validator import validate
    except ImportError:  # an optional check: only where the validator happens to be installed
        return
    validate(document)


def test_the_firm_routes_are_documented_with_their_request_schemas_and_sigv4(document: dict[str, Any]) -> None:
    for (method, path), (success, schema) in FIRM_OPERATIONS.items():
        operation = document["paths"][path][method.lower()]
        assert operation["security"] == [{"sigv4": []}], f"{method} {path}"
        assert success in operation["responses"], f"{method} {path}"
        assert request_schema(operation) == schema, f"{method} {path}"
    assert (
        "content"
        not in document["paths"]["/firm/firms/{firm_id}/payables/{payable_id}/links/current"]["delete"]["responses"][
            "204"
        ]
    )
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_the_request_schemas_carry_the_validation_rules(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    bill = schemas["CreateBillRequest"]
    assert bill["additionalProperties"] is False
    assert (bill["properties"]["line_items"]["minItems"], bill["properties"]["line_items"]["maxItems"]) == (1, 100)
    assert bill["properties"]["number"]["maxLength"] == 64
    assert bill["properties"]["currency"]["enum"] == ["USD", "CAD"]
    item = schemas["LineItemIn"]["properties"]
    assert (item["amount_minor"]["type"], item["amount_minor"]["exclusiveMinimum"]) == ("integer", 0)
    assert item["description"]["maxLength"] == 500
    firm = schemas["CreateFirmRequest"]["properties"]
    assert firm["name"]["maxLength"] == 200
    assert firm["country"]["enum"] == ["US", "CA"]
    assert "pattern" in schemas["CreateClientRequest"]["properties"]["email"]


def test_every_operation_answers_errors_with_the_stable_codes(document: dict[str, Any]) -> None:
    codes = document["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    assert set(codes) == {e.code for e in ERROR_CLASSES} | {"internal_error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["code", "message"]
    for method, path in operations(document):
        responses = document["paths"][path][method.lower()]["responses"]
        for status, status_codes in error_statuses().items():
            answer = responses[str(status)]
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            assert all(f"`{code}`" in answer["description"] for code in status_codes), f"{method} {path} {status}"
    assert "HTTPValidationError" not in document["components"]["schemas"], "FirmPay never answers that shape"


def test_every_documented_operation_reaches_its_function_through_the_template() -> None:
    template = load_template()
    for function, app in sorted(load_resolvers().items()):
        part = json.loads(app.get_openapi_json_schema())
        for method, path in operations(part):
            found = template.find_route(method, path)
            assert found is not None, f"{method} {path} ({function}) has no route in template.yaml"
            assert found[0].function == function, f"{method} {path} is routed to {found[0].function}, not {function}"


def test_the_pay_link_function_serves_the_committed_document(stack: Any) -> None:
    answer = requests.get(f"{stack.urls['gateway']}/api/openapi.json", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads(TARGET.read_text())
