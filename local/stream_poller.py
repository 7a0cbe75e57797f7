"""The DynamoDB stream -> Lambda event source mapping, for the local stack.

Reads the ledger table's stream (moto) through boto3, shapes records as Lambda does, applies the
template's FilterCriteria, and invokes ``confirmation_email`` in batches, honouring partial batch
failures, retries, record age, bisect-on-error and the SQS on-failure destination.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from local.template import StreamMapping

Invoke = Callable[[dict[str, Any]], Any]


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style pattern matching, the subset Lambda event filtering supports."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if isinstance(sub, list) and any(isinstance(r, dict) and "exists" in r for r in sub):
                wanted = next(r["exists"] for r in sub if isinstance(r, dict) and "exists" in r)
                if (key in value) != wanted:
                    return False
                continue
            if key not in value or not matches(sub, value[key]):
                return False
        return True
    if isinstance(pattern, list):
        return any(_match_rule(rule, value) for rule in pattern)
    return bool(pattern == value)


def _match_rule(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        if "anything-but" in rule:
            excluded = rule["anything-but"]
            return value not in (excluded if isinstance(excluded, list) else [excluded])
        if "numeric" in rule:
            return _numeric(rule["numeric"], value)
        return matches(rule, value)
    return bool(rule == value)


def _numeric(conditions: list[Any], value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    ops = {"=": number.__eq__, ">": number.__gt__, ">=": number.__ge__, "<": number.__lt__, "<=": number.__le__}
    return all(ops[op](float(arg)) for op, arg in zip(conditions[::2], conditions[1::2], strict=True))


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """A stream record as Lambda delivers it (moto lacks eventSourceARN and numeric times)."""
    ddb = dict(raw["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", region),
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }


class StreamPoller:
    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        mapping: StreamMapping,
        invoke: Invoke,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 0.15,
    ) -> None:
        self._streams = streams
        self.stream_arn = stream_arn
        self.mapping = mapping
        self._invoke = invoke
        self._on_failure = on_failure
        self._interval = interval
        self._iterators: dict[str, str | None] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self.last_batch: list[dict[str, Any]] = []
        self.delivered = 0
        self.errors: list[str] = []

    def start(self) -> StreamPoller:
        with self._lock:
            self._refresh_shards()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    # -- polling ---------------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        shards = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._paused.is_set():
                try:
                    self.poll_once()
                except Exception as error:  # keep polling; record what happened
                    self.errors.append(repr(error))
            self._stop.wait(self._interval)

    def poll_once(self) -> int:
        """Read every shard once and deliver what matched; return the number of records read."""
        read = 0
        with self._lock:
            self._refresh_shards()
            for shard_id, iterator in list(self._iterators.items()):
                if iterator is None:
                    continue
                answer = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                self._iterators[shard_id] = answer.get("NextShardIterator")
                records = [lambda_record(r, self.stream_arn) for r in answer.get("Records", [])]
                read += len(records)
                wanted = [r for r in records if self._wanted(r)]
                for start in range(0, len(wanted), self.mapping.batch_size):
                    self._deliver(wanted[start : start + self.mapping.batch_size])
        return read

    def drain(self, timeout: float = 10.0) -> None:
        """Deliver everything written so far (tests call this instead of sleeping)."""
        deadline = time.monotonic() + timeout
        while self.poll_once():
            if time.monotonic() > deadline:
                raise TimeoutError("the stream did not drain")

    def redeliver_last_batch(self) -> None:
        """Deliver the last batch again, as a stream may (at-least-once delivery)."""
        with self._lock:
            if self.last_batch:
                self._deliver(list(self.last_batch))

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self.mapping.filters or any(matches(p, record) for p in self.mapping.filters)

    # -- delivery with Lambda's failure semantics --------------------------------------------------

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        self.last_batch = batch
        attempts = 0
        pending = batch
        while pending:
            failed_from = self._invoke_batch(pending)
            if failed_from is None:
                self.delivered += len(pending)
                return
            attempts += 1
            oldest = pending[failed_from]["dynamodb"].get("ApproximateCreationDateTime", time.time())
            too_old = 0 <= self.mapping.max_record_age < time.time() - float(oldest)
            if failed_from == -1 and self.mapping.bisect and len(pending) > 1:
                half = len(pending) // 2
                self._deliver(pending[:half])
                self._deliver(pending[half:])
                return
            if (0 <= self.mapping.max_retries < attempts) or too_old:
                self._send_to_failure_destination(pending[max(failed_from, 0) :])
                return
            pending = pending[max(failed_from, 0) :]

    def _invoke_batch(self, batch: list[dict[str, Any]]) -> int | None:
        """None on success; the index of the first failed record; -1 when the function errored."""
        try:
            answer = self._invoke({"Records": batch})
        except Exception as error:
            self.errors.append(repr(error))
            return -1
        failures = (answer or {}).get("batchItemFailures") or [] if isinstance(answer, dict) else []
        if not failures:
            return None
        failed = {f.get("itemIdentifier") for f in failures}
        for index, record in enumerate(batch):
            if record["dynamodb"].get("SequenceNumber") in failed:
                return index
        return 0  # an unknown identifier fails the whole batch, as Lambda does

    def _send_to_failure_destination(self, records: list[dict[str, Any]]) -> None:
        if self._on_failure is None:
            return
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        self._on_failure(
            {
                "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
                "responseContext": {"statusCode": 200, "functionError": None},
                "version": "1.0",
                "timestamp": datetime.now().isoformat(),
                "DDBStreamBatchInfo": {
                    "shardId": "local",
                    "startSequenceNumber": first.get("SequenceNumber"),
                    "endSequenceNumber": last.get("SequenceNumber"),
                    "approximateArrivalOfFirstRecord": first.get("ApproximateCreationDateTime"),
                    "approximateArrivalOfLastRecord": last.get("ApproximateCreationDateTime"),
                    "batchSize": len(records),
                    "streamArn": self.stream_arn,
                },
                # Local addition: the records themselves, so `make replay-dlq` can resend them.
                "records": json.loads(json.dumps(records, default=str)),
            }
        )
