"""The served API document is generated from the handlers' own models and is up to date."""

import json

from local.openapi import TARGET, render


def test_the_committed_openapi_document_is_current() -> None:
    assert TARGET.read_text() == render(), "run `make openapi` and commit layers/firmpay/firmpay/web/openapi.json"


def test_every_route_of_the_template_is_documented_with_errors() -> None:
    document = json.loads(TARGET.read_text())
    for path in ("/pay/{token}", "/api/pay/{token}", "/firm/firms", "/firm/firms/{firm_id}/bills", "/webhooks/stripe"):
        assert path in document["paths"]
    bills = document["paths"]["/firm/firms/{firm_id}/bills"]["post"]
    assert bills["security"] == [{"sigv4": []}]
    assert "requestBody" in bills
    assert bills["responses"]["422"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
    codes = document["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    assert {"link_not_found", "link_expired", "malformed_json", "invalid_request", "amount_over_balance"} <= set(codes)
