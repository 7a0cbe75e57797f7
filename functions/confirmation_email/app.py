"""confirmation_email (the ledger's DynamoDB stream): payment emails, each sent exactly once.

A failing record is reported in ``batchItemFailures`` (the stream retries from it; sent-once
markers make later records no-ops) and ends in the dead-letter queue if it keeps failing. Batch,
Jinja2, SES and metrics load with the first batch, not at cold start.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from firmpay.config import get_settings
from firmpay.observability import logger
from firmpay.routes.shared import ledger, now

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord


@lru_cache(maxsize=1)
def _processor() -> BatchProcessor:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    from firmpay.emails.confirmations import MailSettings, send_payment_emails
    from firmpay.emails.notifications import payment_change
    from firmpay.gateways.ses import send_raw
    from firmpay.metrics import count_payment_change

    if (change := payment_change(record.raw_event)) is None:
        return
    settings = get_settings()
    mail = MailSettings(settings.mail_from, settings.public_base_url, settings.pay_link_days)
    sent = send_payment_emails(ledger(), change, send_raw, mail, now())
    count_payment_change(change.old_status, change.payment, (email.result for email in sent))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    return process_partial_response(event=event, record_handler=record_handler, processor=_processor(), context=context)
