"""Secrets read at runtime from SSM Parameter Store (SecureString), cached per container for at
most ``SECRET_MAX_AGE_SECONDS``, so a rotated secret is picked up within that time."""

from __future__ import annotations

# Powertools' parameter provider keeps each value with its own expiry; a cache in front of it
# (an lru_cache, as there was) would keep the first value for the container's whole life.
SECRET_MAX_AGE_SECONDS = 300


def get_secret(name: str) -> str:
    """The decrypted value of the SSM parameter ``name``, at most ``SECRET_MAX_AGE_SECONDS`` old."""
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS))
