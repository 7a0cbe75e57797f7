"""The page's base path, read from API Gateway REST events as AWS shapes them."""

from __future__ import annotations

from typing import Any

import pytest

from firmpay.api import base_path


def event(path: str, context_path: str, stage: str = "prod") -> dict[str, Any]:
    return {"resource": "/pay/{token}", "path": path, "requestContext": {"path": context_path, "stage": stage}}


@pytest.mark.parametrize(
    ("path", "context_path", "expected"),
    [
        ("/pay/abc", "/prod/pay/abc", "/prod"),  # execute-api URL: path lacks the stage
        ("/pay/abc", "/pay/abc", ""),  # custom domain mapped at its root: both the same
        ("/pay/ab%2Bc", "/v2-beta/pay/ab%2Bc", "/v2-beta"),
        ("/pay/abc", "/other/thing", ""),  # not a suffix: no guess
        ("/pay/abc", '/"><script>/pay/abc', ""),  # only plain path segments reach the page
        ("", "/prod/", ""),
    ],
)
def test_the_base_path_is_what_the_browser_s_path_has_before_the_route(
    path: str, context_path: str, expected: str
) -> None:
    assert base_path(event(path, context_path)) == expected


def test_an_event_without_a_request_context_has_no_base_path() -> None:
    assert base_path({"path": "/pay/abc"}) == ""
