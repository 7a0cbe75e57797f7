"""The API under its stage path, as on API Gateway's own URL (``/{stage}/...``), and API Gateway's
403 for what no route has (any path, any method: TRACE included, which used to get a 501)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from local.gateway import STAGE

pytestmark = pytest.mark.integration

STAGE_PATH = f"/{STAGE}"


@pytest.fixture(scope="module")
def pay_path(stack: Any) -> str:
    """The path of a fresh US bill's pay link (``/pay/<token>``)."""
    from local.seed import seed_demo

    return urlsplit(seed_demo(stack)[0].split()[2]).path


def missing_token(answer: requests.Response) -> bool:
    return (
        answer.status_code == 403
        and answer.json() == {"message": "Missing Authentication Token"}
        and answer.headers.get("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    )


def test_a_method_no_route_has_gets_api_gateway_s_403_on_every_route(stack: Any) -> None:
    """API Gateway REST APIs answer a method or resource that does not exist with 403 "Missing
    Authentication Token" (AWS re:Post knowledge center, api-gateway-authentication-token-errors)."""
    gateway = stack.urls["gateway"]
    concrete = sorted({re.sub(r"\{[^}]+\}", "x", route.path) for route in stack.template.routes})
    answers = {
        (method, prefix + path): requests.request(method, gateway + prefix + path, timeout=30)
        for path in concrete
        for method in ("TRACE", "PROPFIND", "CONNECTX")
        for prefix in ("", STAGE_PATH)
    }
    wrong = {key: a.status_code for key, a in answers.items() if not missing_token(a)}

    assert len(concrete) > 10
    assert wrong == {}


def test_unknown_paths_get_the_same_403(stack: Any) -> None:
    gateway = stack.urls["gateway"]
    for path in ("/nope", "/pay", f"{STAGE_PATH}/nope", f"{STAGE_PATH}", "/prod/pay/x", "/api/pay/x/card/nope"):
        assert missing_token(requests.get(gateway + path, timeout=30)), path


def test_under_the_stage_path_the_page_loads_its_assets_and_data_from_there(stack: Any, pay_path: str) -> None:
    gateway = stack.urls["gateway"]
    page = requests.get(gateway + STAGE_PATH + pay_path, timeout=30)

    assert page.status_code == 200
    assert '<meta name="firmpay-base-path" content="/local">' in page.text
    assets = re.findall(r'(?:href|src)="(/[^"]+)"', page.text)
    assert assets
    assert all(path.startswith(STAGE_PATH + "/assets/") for path in assets), assets
    for path in assets:
        assert requests.get(gateway + path, timeout=30).status_code == 200, path
    token = pay_path.rsplit("/", 1)[1]
    data = requests.get(f"{gateway}{STAGE_PATH}/api/pay/{token}", timeout=30)
    assert data.json()["payable"]["number"]


def test_on_the_root_the_page_keeps_root_paths(stack: Any, pay_path: str) -> None:
    page = requests.get(stack.urls["gateway"] + pay_path, timeout=30)

    assert '<meta name="firmpay-base-path" content="">' in page.text
    assert all(path.startswith("/assets/") for path in re.findall(r'(?:href|src)="(/[^"]+)"', page.text))
