"""KMS behind ``TokenVault``: stored Plaid access tokens are encrypted, bound to firm and client."""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import TYPE_CHECKING

from firmpay.config import get_settings

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient


@lru_cache(maxsize=1)
def kms_client() -> KMSClient:
    import botocore.config
    import botocore.session

    # botocore's defaults (60 s connect and read, 5 attempts) could outlast the function itself;
    # like DynamoDB: 3 attempts of 2 s connect + the read timeout (docs/operations.md, Timeouts).
    config = botocore.config.Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=2,
        read_timeout=get_settings().aws_read_timeout_seconds,
    )
    return botocore.session.get_session().create_client("kms", config=config)  # type: ignore[return-value]


class KmsVault:
    """``TokenVault`` with AWS KMS; the encryption context must match to decrypt."""

    def __init__(self, key_id: str | None = None, client: KMSClient | None = None) -> None:
        self._key_id = key_id or get_settings().bank_token_key_id
        self._client = client

    @property
    def client(self) -> KMSClient:
        return self._client or kms_client()

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        answer = self.client.encrypt(KeyId=self._key_id, Plaintext=plaintext.encode("utf-8"), EncryptionContext=context)
        return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        answer = self.client.decrypt(CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=context)
        return answer["Plaintext"].decode("utf-8")
