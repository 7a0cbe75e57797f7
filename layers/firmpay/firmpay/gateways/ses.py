"""SES v2 behind a tiny interface: send one raw MIME message."""

from __future__ import annotations

from email.message import EmailMessage
from functools import lru_cache
from typing import TYPE_CHECKING

from firmpay.config import get_settings

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client

_RETRYABLE = {
    "TooManyRequestsException",
    "LimitExceededException",
    "InternalFailure",
    "ServiceUnavailable",
    "ThrottlingException",
}


class MailUnavailable(Exception):
    """SES did not accept the message for a reason that may pass (throttling, 5xx): retry later."""


class MailRejected(Exception):
    """SES refused the message for good (bad address, rejected content)."""


@lru_cache(maxsize=1)
def ses_client() -> SESV2Client:
    import botocore.config
    import botocore.session

    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5)
    return botocore.session.get_session().create_client("sesv2", config=config)  # type: ignore[return-value]


def send_raw(message: EmailMessage, client: SESV2Client | None = None) -> str:
    """Send ``message`` as-is; return SES's MessageId."""
    from botocore.exceptions import BotoCoreError, ClientError

    settings = get_settings()
    kwargs: dict[str, object] = {"Content": {"Raw": {"Data": message.as_bytes()}}}
    if settings.ses_configuration_set:
        kwargs["ConfigurationSetName"] = settings.ses_configuration_set
    try:
        answer = (client or ses_client()).send_email(**kwargs)  # type: ignore[arg-type]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _RETRYABLE or status >= 500:
            raise MailUnavailable(code) from error
        raise MailRejected(code) from error
    except BotoCoreError as error:
        raise MailUnavailable(type(error).__name__) from error
    return str(answer["MessageId"])
