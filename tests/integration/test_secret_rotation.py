"""Cached secrets expire: a secret rotated in SSM reaches the functions within the cache's max age
(a warm container used to keep the first value for its whole life)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from firmpay import secrets
from firmpay.config import get_settings
from firmpay.gateways.stripe_gateway import stripe_client
from local.stack import reset_firmpay_caches

pytestmark = pytest.mark.integration


def test_a_rotated_stripe_key_is_used_once_the_cached_one_expires(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a warm container that read the Stripe key, with a short max age for the test.
    monkeypatch.setattr(secrets, "SECRET_MAX_AGE_SECONDS", 1)
    reset_firmpay_caches()
    name = get_settings().stripe_secret_key_param
    ssm = stack.client("ssm")
    original = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    first_client = stripe_client()
    assert secrets.get_secret(name) == original
    try:
        # When the key is rotated in SSM,
        rotated = original + "_rotated"
        ssm.put_parameter(Name=name, Value=rotated, Type="SecureString", Overwrite=True)

        # then the cached key serves until its max age, and the new one after it.
        assert secrets.get_secret(name) == original
        assert stripe_client() is first_client
        deadline = time.monotonic() + 5
        while secrets.get_secret(name) != rotated:
            assert time.monotonic() < deadline, "the rotated key was not read within 5 s of a 1 s max age"
            time.sleep(0.2)
        assert stripe_client() is not first_client
        assert stripe_client()._requestor.api_key == rotated
    finally:
        ssm.put_parameter(Name=name, Value=original, Type="SecureString", Overwrite=True)
        reset_firmpay_caches()
