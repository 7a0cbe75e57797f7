"""Runtime configuration, parsed once per container from the environment.

Every endpoint of an outside service is configuration: the local stack points the same code at
DynamoDB Local and moto (``AWS_ENDPOINT_URL``, read by boto3 itself), localstripe and the Plaid emulator.

The defaults below are a developer's (127.0.0.1, ``/firmpay/dev/...`` parameters): outside the
``local`` and ``dev`` stages every deploy-time setting must be given, and a missing one stops the
function at init (every handler builds its ledger at module scope, which reads the settings) with
one log line naming it, instead of a function that quietly serves links to 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """What a function needs to know about its deployment."""

    model_config = ConfigDict(frozen=True)

    stage: str = "dev"
    ledger_table: str = "firmpay-ledger"
    # Base of every link we hand out (pay links in emails, API answers), without trailing slash.
    public_base_url: str = "http://127.0.0.1:3000"
    pay_link_days: int = 90
    review_ttl_seconds: int = 900

    # Stripe: secret key and webhook secret live in SSM SecureString parameters.
    stripe_api_base: str = "https://api.stripe.com"
    stripe_js_url: str = "https://js.stripe.com/v3/"
    stripe_publishable_key: str = ""
    stripe_secret_key_param: str = "/firmpay/dev/stripe/secret-key"
    stripe_webhook_secret_param: str = "/firmpay/dev/stripe/webhook-secret"

    # Read timeout of each Stripe and Plaid request, in seconds: with Stripe's two retries (same
    # Idempotency-Key) a silent processor still answers 503 within the functions' 20 s timeout.
    outbound_timeout_seconds: float = 5.0
    # Read timeout of each DynamoDB request (botocore retries twice); SES gets three times it.
    aws_read_timeout_seconds: float = 5.0

    # Plaid: one SSM SecureString holding {"client_id": ..., "secret": ...}.
    plaid_base_url: str = "https://sandbox.plaid.com"
    plaid_link_js_url: str = "https://cdn.plaid.com/link/v2/stable/link-initialize.js"
    plaid_credentials_param: str = "/firmpay/dev/plaid/credentials"

    # reCAPTCHA (card-testing defence, and Plaid Link's own step).
    recaptcha_site_key: str = ""
    recaptcha_js_url: str = "https://www.google.com/recaptcha/api.js"
    recaptcha_verify_url: str = "https://www.google.com/recaptcha/api/siteverify"
    recaptcha_secret_param: str = "/firmpay/dev/recaptcha/secret"

    # Mail.
    mail_from: str = "payments@firmpay.example"
    ses_configuration_set: str = ""
    email_dlq_url: str = ""

    # KMS key that encrypts stored Plaid access tokens.
    bank_token_key_id: str = ""


_ENV_NAMES = {name: name.upper() for name in Settings.model_fields}

# Stages whose developer defaults are fine.
DEV_STAGES = frozenset({"local", "dev"})
# What template.yaml sets for every function; required outside the dev stages. The outside
# endpoints (STRIPE_API_BASE, ...) default to production's own addresses and stay optional.
REQUIRED_OUTSIDE_DEV = (
    "ledger_table",
    "public_base_url",
    "stripe_publishable_key",
    "stripe_secret_key_param",
    "stripe_webhook_secret_param",
    "plaid_credentials_param",
    "recaptcha_site_key",
    "recaptcha_secret_param",
    "mail_from",
    "ses_configuration_set",
    "email_dlq_url",
    "bank_token_key_id",
)


class MissingSettings(RuntimeError):
    """A deployed function lacks settings it must not guess."""

    def __init__(self, stage: str, names: list[str]) -> None:
        super().__init__(f"stage {stage!r} is missing required settings: {', '.join(names)}")
        self.names = names


def missing_settings(environ: Mapping[str, str]) -> list[str]:
    """The environment variables a non-dev stage lacks (empty counts as missing); none in a dev stage.

    In Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set) STAGE itself is required: without it a production
    function would believe it is a developer's.
    """
    stage = environ.get("STAGE", "")
    if not stage:
        return ["STAGE"] if environ.get("AWS_LAMBDA_FUNCTION_NAME") else []
    if stage in DEV_STAGES:
        return []
    return [_ENV_NAMES[field] for field in REQUIRED_OUTSIDE_DEV if not environ.get(_ENV_NAMES[field], "").strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from environment variables named after the fields in upper case (LEDGER_TABLE, ...).

    Raises ``MissingSettings`` (after logging one line naming them) outside the dev stages when a
    required setting is absent.
    """
    missing = missing_settings(os.environ)
    if missing:
        error = MissingSettings(os.environ.get("STAGE", ""), missing)
        from firmpay.observability import logger

        logger.critical(f"firmpay cannot start: {error}", extra={"missing_settings": missing})
        raise error
    values = {field: os.environ[env] for field, env in _ENV_NAMES.items() if env in os.environ}
    return Settings.model_validate(values)
