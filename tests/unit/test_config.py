"""Production settings are required: outside the dev stages a missing one stops the function at
init with one log line naming it; the developer defaults stay for local and dev."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmpay.config import REQUIRED_OUTSIDE_DEV, MissingSettings, get_settings, missing_settings

ROOT = Path(__file__).resolve().parents[2]

PROD = {
    "STAGE": "prod",
    "LEDGER_TABLE": "firmpay-prod-ledger",
    "PUBLIC_BASE_URL": "https://pay.firm.example",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_abc",
    "STRIPE_SECRET_KEY_PARAM": "/firmpay/prod/stripe/secret-key",
    "STRIPE_WEBHOOK_SECRET_PARAM": "/firmpay/prod/stripe/webhook-secret",
    "PLAID_CREDENTIALS_PARAM": "/firmpay/prod/plaid/credentials",
    "RECAPTCHA_SITE_KEY": "site-key",
    "RECAPTCHA_SECRET_PARAM": "/firmpay/prod/recaptcha/secret",
    "MAIL_FROM": "payments@firm.example",
    "SES_CONFIGURATION_SET": "firmpay-prod",
    "EMAIL_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/firmpay-prod-email-dlq",
    "BANK_TOKEN_KEY_ID": "arn:aws:kms:us-east-1:123456789012:key/abc",
}


def test_a_complete_production_environment_is_accepted() -> None:
    assert len(PROD) - 1 == len(REQUIRED_OUTSIDE_DEV)
    assert missing_settings(PROD) == []


@pytest.mark.parametrize("name", ["PUBLIC_BASE_URL", "STRIPE_SECRET_KEY_PARAM", "LEDGER_TABLE"])
def test_a_missing_or_empty_setting_is_named_outside_the_dev_stages(name: str) -> None:
    without = {k: v for k, v in PROD.items() if k != name}
    empty = PROD | {name: " "}

    assert missing_settings(without) == [name]
    assert missing_settings(empty) == [name]


@pytest.mark.parametrize("stage", ["local", "dev"])
def test_the_dev_stages_keep_the_developer_defaults(stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROD:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STAGE", stage)
    get_settings.cache_clear()
    try:
        assert get_settings().public_base_url == "http://127.0.0.1:3000"
    finally:
        get_settings.cache_clear()


def test_a_lambda_without_a_stage_is_not_taken_for_a_developer() -> None:
    assert missing_settings({"AWS_LAMBDA_FUNCTION_NAME": "firmpay-PayLink"}) == ["STAGE"]
    assert missing_settings({}) == []


def test_get_settings_refuses_a_production_stage_without_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROD:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STAGE", "prod")
    get_settings.cache_clear()
    try:
        with pytest.raises(MissingSettings) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert refused.value.names == [name for name in PROD if name != "STAGE"]


def test_a_production_function_stops_at_init_with_one_line_naming_the_setting() -> None:
    """Importing the handler (Lambda's init) fails; the one firmpay log line names what is missing,
    and nothing reached for a local address or a dev secret path."""
    # Whatever the running process has (a local stack started by an earlier test sets them all) stays out.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PROD and not k.startswith(("AWS_", "STRIPE_", "PLAID_", "RECAPTCHA_"))
    }
    env |= {k: v for k, v in PROD.items() if k != "PUBLIC_BASE_URL"}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "firmpay-prod-PayLink"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "functions" / "pay_link"), str(ROOT / "layers" / "firmpay")])
    init = subprocess.run(
        [sys.executable, "-c", "import app"],
        env=env,
        cwd=ROOT / "functions" / "pay_link",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert init.returncode != 0
    assert "MissingSettings" in init.stderr
    logged = [json.loads(line) for line in init.stdout.splitlines() if line.startswith("{")]
    assert [entry["message"] for entry in logged] == [
        "firmpay cannot start: stage 'prod' is missing required settings: PUBLIC_BASE_URL"
    ]
    assert logged[0]["level"] == "CRITICAL"
    assert "127.0.0.1" not in init.stdout + init.stderr


def test_every_required_setting_is_a_setting() -> None:
    """A name dropped from Settings (the idempotency table was) must leave the required list too,
    or a production init fails with a KeyError instead of naming what is missing."""
    from firmpay.config import REQUIRED_OUTSIDE_DEV, Settings

    assert set(REQUIRED_OUTSIDE_DEV) <= set(Settings.model_fields)
