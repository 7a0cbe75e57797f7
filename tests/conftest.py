"""Shared fixtures.

- ``ledger``: a Ledger on DynamoDB Local (``dynamodb_endpoint``: one per test session, on
  127.0.0.1 at a free port) whose table is built from template.yaml's own definition. For use-case
  tests that need no HTTP.
- ``stack``: the whole embedded local stack (``local.stack.LocalStack``), started once per session.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "false")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ledger_table_definition() -> dict:
    """The LedgerTable's CreateTable arguments, taken from template.yaml."""
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "template.yaml"))
    props = template["Resources"]["LedgerTable"]["Properties"]
    return {
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "GlobalSecondaryIndexes": [
            {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
            for gsi in props.get("GlobalSecondaryIndexes", [])
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """AWS's DynamoDB Local, one per test session (a JVM: about 3 s to start)."""
    from local.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal(free_port()) as engine:
        yield engine.endpoint


@pytest.fixture(scope="session")
def ledger(dynamodb_endpoint: str):  # type: ignore[no-untyped-def]
    import botocore.session

    from firmpay.ledger import Ledger

    client = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1"
    )
    client.create_table(TableName="ledger-under-test", **ledger_table_definition())
    return Ledger(client, "ledger-under-test")


@pytest.fixture(scope="session")
def stack():  # type: ignore[no-untyped-def]
    from local.stack import LocalStack

    with LocalStack() as running:
        yield running


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium through Playwright, one per test session (Playwright's sync API allows
    one running instance per thread, so every browser test shares this one)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
