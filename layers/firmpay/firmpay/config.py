"""Runtime configuration, parsed once per container from the environment.

Every endpoint of an outside service is configuration: the local stack points the same code at
moto (``AWS_ENDPOINT_URL``, read by boto3 itself), localstripe and the Plaid emulator.
"""

from __future__ import annotations

import os
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from environment variables named after the fields in upper case (LEDGER_TABLE, ...)."""
    values = {field: os.environ[env] for field, env in _ENV_NAMES.items() if env in os.environ}
    return Settings.model_validate(values)
