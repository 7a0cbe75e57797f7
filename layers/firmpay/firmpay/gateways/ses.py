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


class MailOutcomeUnknown(Exception):
    """The request reached SES but no answer came back (read timeout, dropped connection): SES may
    have accepted it. Sending again could deliver it twice, so callers must not retry blindly."""


ATTEMPTS = 3  # for answers that say the message was not accepted (throttling, 5xx)


@lru_cache(maxsize=1)
def ses_client() -> SESV2Client:
    import botocore.config
    import botocore.session

    # No SDK retries: botocore would also resend after a read timeout, when SES may have accepted
    # the message; send_raw retries only the answers that say it did not.
    read_timeout = 3 * get_settings().aws_read_timeout_seconds
    config = botocore.config.Config(
        # total_max_attempts, not max_attempts: botocore's max_attempts counts retries (1 = one resend)
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=2,
        read_timeout=read_timeout,
    )
    return botocore.session.get_session().create_client("sesv2", config=config)  # type: ignore[return-value]


def send_raw(message: EmailMessage, client: SESV2Client | None = None) -> str:
    """Send ``message`` as-is; return SES's MessageId.

    ``MailUnavailable``: not accepted, may pass (retried here ``ATTEMPTS`` times first);
    ``MailRejected``: refused for good; ``MailOutcomeUnknown``: no answer, maybe accepted.
    """
    import time

    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ReadTimeoutError,
    )

    settings = get_settings()
    kwargs: dict[str, object] = {"Content": {"Raw": {"Data": message.as_bytes()}}}
    if settings.ses_configuration_set:
        kwargs["ConfigurationSetName"] = settings.ses_configuration_set
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = (client or ses_client()).send_email(**kwargs)  # type: ignore[arg-type]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code not in _RETRYABLE and status < 500:
                raise MailRejected(code) from error
            if attempt == ATTEMPTS:
                raise MailUnavailable(code) from error
            time.sleep(0.05 * 2**attempt)
        except (ReadTimeoutError, ConnectionClosedError) as error:
            raise MailOutcomeUnknown(type(error).__name__) from error
        except BotoCoreError as error:  # could not connect: nothing was sent
            raise MailUnavailable(type(error).__name__) from error
        else:
            return str(answer["MessageId"])
    raise AssertionError("unreachable")
