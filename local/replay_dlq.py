"""`make replay-dlq`: send again the confirmation emails whose stream records ended in the DLQ.

Each message of the email dead-letter queue is an on-failure record of the stream's event source
mapping. Its stream records are, in order of preference:

1. in the message itself (``records``: the local stream poller adds them);
2. read back from the stream by sequence number (``DDBStreamBatchInfo``: GetShardIterator
   ``AT_SEQUENCE_NUMBER`` + GetRecords up to ``endSequenceNumber``), which is all Lambda's
   on-failure record carries in AWS; a stream keeps its records for 24 hours;
3. past that, re-derived from the ledger: the payments updated during the batch's time window,
   each as the change that led to its current status (an eCheck that settled or was returned came
   from ``processing``; anything else from ``pending``).

The records go through the same handler as the stream's (``confirmation_email``); the sent-once
markers make a replay safe, however often it runs. A message is deleted once every record of it
succeeds; the others stay in the queue (visible again at once) and are counted.

Locally: ``make replay-dlq`` (uses the running ``make dev`` stack). Against AWS::

    QUEUE=$(aws cloudformation describe-stacks --stack-name firmpay-prod \\
        --query "Stacks[0].Outputs[?OutputKey=='EmailDeadLetterQueueUrl'].OutputValue" --output text)
    LEDGER_TABLE=... MAIL_FROM=... PUBLIC_BASE_URL=... SES_CONFIGURATION_SET=... \\
        .venv/bin/python -m local.replay_dlq --aws --queue-url "$QUEUE"

(the environment variables are the function's own, from its configuration; your credentials
need the function role's permissions plus sqs:ReceiveMessage/DeleteMessage and DynamoDB Streams
reads).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]
FUNCTION = "confirmation_email"
_WINDOW_SLACK = timedelta(minutes=5)
_MAX_READS = 1000  # GetRecords calls per message, at most


@dataclass
class ReplayReport:
    messages: int = 0  # DLQ messages read
    replayed: int = 0  # handled in full, deleted
    kept: int = 0  # a record failed again (or none could be found): left in the queue
    records: int = 0  # stream records run through the handler
    rederived: int = 0  # of which re-derived from the ledger (the stream no longer had them)

    def line(self) -> str:
        return (
            f"{self.messages} message(s): {self.replayed} replayed and deleted, {self.kept} kept; "
            f"{self.records} record(s) re-run ({self.rederived} re-derived from the ledger)"
        )


def replay(
    sqs: Any,
    queue_url: str,
    invoke: Invoke,
    streams: Any = None,
    dynamodb: Any = None,
    table: str | None = None,
    log: Callable[[str], None] = print,
) -> ReplayReport:
    """Replay every message now visible in ``queue_url``; see the module docstring."""
    report = ReplayReport()
    kept: list[str] = []
    seen: set[str] = set()
    for message in _receive_all(sqs, queue_url):
        if message["MessageId"] in seen:
            continue
        seen.add(message["MessageId"])
        report.messages += 1
        try:
            body = json.loads(message["Body"])
            records, rederived = records_of(body, streams, dynamodb, table)
        except (ValueError, KeyError) as error:
            log(f"kept {message['MessageId']}: not an on-failure record ({type(error).__name__}: {error})")
            kept.append(message["ReceiptHandle"])
            continue
        report.rederived += rederived
        if not records:
            log(f"kept {message['MessageId']}: its records are neither in it, in the stream, nor in the ledger")
            kept.append(message["ReceiptHandle"])
            continue
        report.records += len(records)
        try:
            answer = invoke({"Records": records})
            failures = (answer or {}).get("batchItemFailures") if isinstance(answer, dict) else None
        except Exception as error:
            failures = [{"error": f"{type(error).__name__}: {error}"}]
        if failures:
            log(f"kept {message['MessageId']}: {len(failures)} record(s) failed again")
            kept.append(message["ReceiptHandle"])
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        report.replayed += 1
    for handle in kept:  # visible again now, for the next replay once the cause is fixed
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    report.kept = len(kept)
    return report


def _receive_all(sqs: Any, queue_url: str) -> Iterator[dict[str, Any]]:
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=120
        )
        messages = answer.get("Messages") or []
        if not messages:
            return
        yield from messages


def records_of(
    body: dict[str, Any], streams: Any = None, dynamodb: Any = None, table: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The stream records of one on-failure message, and how many of them were re-derived."""
    if body.get("records"):
        return list(body["records"]), 0
    info = body["DDBStreamBatchInfo"]
    if streams is not None:
        found = read_back(streams, info)
        if found:
            return found, 0
    if dynamodb is not None and table:
        derived = rederive(dynamodb, table, info)
        return derived, len(derived)
    return [], 0


def read_back(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records ``startSequenceNumber``..``endSequenceNumber`` of the shard, if the stream has them."""
    from botocore.exceptions import ClientError

    from local.stream_poller import lambda_record

    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=info["streamArn"],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
    except ClientError:
        # Trimmed records, an expired or unknown shard (moto answers 500 to that one): the caller
        # re-derives from the ledger, which the sent-once markers make safe whatever the cause.
        return []
    found: list[dict[str, Any]] = []
    for _ in range(_MAX_READS):
        if not iterator:
            break
        answer = streams.get_records(ShardIterator=iterator, Limit=1000)
        records = answer.get("Records") or []
        for raw in records:
            sequence = int(raw["dynamodb"]["SequenceNumber"])
            if sequence > end:
                return found
            if sequence >= start:
                found.append(lambda_record(raw, info["streamArn"]))
        if not records:
            break
        iterator = answer.get("NextShardIterator")
    return found


def rederive(dynamodb: Any, table: str, info: dict[str, Any]) -> list[dict[str, Any]]:
    """Records for the payments updated during the batch's time window, from their current items."""
    first = _parse(info.get("approximateArrivalOfFirstRecord"))
    last = _parse(info.get("approximateArrivalOfLastRecord")) or first
    if first is None or last is None:
        return []
    low = (first - _WINDOW_SLACK).strftime("%Y-%m-%dT%H:%M:%S")
    high = (last + _WINDOW_SLACK).strftime("%Y-%m-%dT%H:%M:%S")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "entity = :payment AND updated_at BETWEEN :low AND :high",
        "ExpressionAttributeValues": {":payment": {"S": "payment"}, ":low": {"S": low}, ":high": {"S": high}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend(page.get("Items") or [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [implied_record(item, n) for n, item in enumerate(items)]


def implied_record(item: dict[str, Any], n: int = 0) -> dict[str, Any]:
    """A MODIFY record leading to ``item``'s current status from the one that normally precedes it."""
    from firmpay.payments.methods import UnknownMethod, method

    status = item.get("status", {}).get("S", "pending")
    try:
        debit = method(item.get("method", {}).get("M", {}).get("type", {}).get("S", "")).settles_later
    except UnknownMethod:
        debit = False
    came_from_processing = debit and (status == "succeeded" or (status == "failed" and "return_code" in item))
    before = "processing" if came_from_processing else "pending"
    return {
        "eventID": f"rederived-{n}",
        "eventName": "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": item["pk"], "sk": item["sk"]},
            "NewImage": item,
            "OldImage": item | {"status": {"S": before}},
            "SequenceNumber": f"rederived-{n}",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queue-url", help="the EmailDeadLetterQueueUrl output (default: the local stack's)")
    parser.add_argument("--aws", action="store_true", help="use AWS (credentials and environment) instead of local")
    args = parser.parse_args(argv)
    from local.template import load_template

    template = load_template()
    if args.aws:
        if not args.queue_url:
            parser.error("--aws needs --queue-url")
        from local.gateway import FunctionRegistry

        registry = FunctionRegistry(template)
        return _run(args.queue_url, lambda event: registry.invoke(FUNCTION, event))
    from local.invoke import local_stack

    with local_stack(template, seed=False) as (invoke, where):
        print(f"using {where}", file=sys.stderr, flush=True)
        return _run(args.queue_url or os.environ.get("EMAIL_DLQ_URL", ""), lambda event: invoke(FUNCTION, event))


def _run(queue_url: str, invoke: Invoke) -> int:
    import boto3

    if not queue_url:
        print("no queue URL: pass --queue-url", file=sys.stderr)
        return 2
    session = boto3.session.Session()
    report = replay(
        session.client("sqs"),
        queue_url,
        invoke,
        streams=session.client("dynamodbstreams"),
        dynamodb=session.client("dynamodb"),
        table=os.environ.get("LEDGER_TABLE"),
    )
    print(report.line(), flush=True)
    return 1 if report.kept else 0


if __name__ == "__main__":
    sys.exit(main())
