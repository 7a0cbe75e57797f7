"""Secrets read at runtime from SSM Parameter Store (SecureString), cached per container."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=16)
def _fetch(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(name, decrypt=True, max_age=300)
    return str(value)


def get_secret(name: str) -> str:
    """The decrypted value of the SSM parameter ``name`` (cached for the container's life)."""
    return _fetch(name)
