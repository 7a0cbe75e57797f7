"""The DynamoDB stream -> Lambda event source mapping, for the local stack.

Reads the ledger table's stream (DynamoDB Local) through boto3 ``dynamodbstreams``, shapes records as Lambda
delivers them, applies the template's ``FilterCriteria``, and invokes the function in batches of
up to ``BatchSize`` (gathered for up to the batching window), with Lambda's failure semantics:

- records of a shard are delivered in order; a failing batch blocks the shard until it succeeds
  or is discarded;
- ``ReportBatchItemFailures``: the batch is retried from the lowest reported sequence number
  (an empty or unknown ``itemIdentifier`` fails the whole batch);
- ``BisectBatchOnFunctionError``: a function error splits the batch in two (this does not use up
  retries);
- ``MaximumRetryAttempts`` / ``MaximumRecordAgeInSeconds``: then the records are discarded and
  an on-failure record goes to the destination, in Lambda's shape (``requestContext``,
  ``responseContext``, ``DDBStreamBatchInfo``), plus, locally, the ``records`` themselves so a
  replay tool has what it needs.

What Lambda adds to a stream record is added here: ``eventSourceARN``, ``awsRegion`` (DynamoDB
Local says ``ddblocal``; Lambda names the table's region) and ``ApproximateCreationDateTime`` in
epoch seconds (botocore parses it into a datetime).

Tests use ``drain()`` instead of sleeping, ``pause()``/``resume()`` to hold deliveries back,
``redeliver_last_batch()`` to check exactly-once effects, and ``use_handler()`` to put a test
function in place of the real one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.template import StreamMapping

Invoke = Callable[[dict[str, Any]], Any]
UNBOUNDED_RETRY_CAP = 100  # local stand-in for "until the record expires" when neither limit is set
FailureSink = Callable[[dict[str, Any]], None]


# -- event filtering (the EventBridge pattern subset Lambda supports) ------------------------------


def matches(pattern: Any, event: Any) -> bool:
    """Whether ``event`` matches a Lambda filter ``pattern`` (EventBridge syntax).

    Supported: exact values (strings, numbers, booleans, null, ``""``), ``prefix``, ``suffix``,
    ``equals-ignore-case``, ``anything-but`` (values, or ``{"prefix"|"suffix": ...}``),
    ``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=`` pairs), ``exists``, ``cidr``, nested objects,
    ``$or``, and arrays in the event (any element may match). Within a list the rules are ORed;
    the keys of an object are ANDed.
    """
    if not isinstance(pattern, dict):
        raise ValueError(f"a filter pattern is an object, not {type(pattern).__name__}")
    if not isinstance(event, dict):
        return False
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(option, event) for option in rule):
                return False
            continue
        present = key in event
        value = event.get(key)
        if isinstance(rule, dict):
            if not present or not matches(rule, value):
                return False
            continue
        if not isinstance(rule, list):
            raise ValueError(f"the rule for {key!r} must be a list or an object")
        if not _match_rules(rule, present, value):
            return False
    return True


def _match_rules(rules: list[Any], present: bool, value: Any) -> bool:
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if bool(rule["exists"]) == (present and not isinstance(value, dict)):
                return True
            continue
        if not present:
            continue
        values = value if isinstance(value, list) else [value]
        if any(_match_leaf(rule, v) for v in values):
            return True
    return False


def _match_leaf(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return _same(rule, value)
    if "prefix" in rule:
        inner = rule["prefix"]
        if isinstance(inner, dict) and "equals-ignore-case" in inner:
            return isinstance(value, str) and value.lower().startswith(str(inner["equals-ignore-case"]).lower())
        return isinstance(value, str) and value.startswith(str(inner))
    if "suffix" in rule:
        inner = rule["suffix"]
        if isinstance(inner, dict) and "equals-ignore-case" in inner:
            return isinstance(value, str) and value.lower().endswith(str(inner["equals-ignore-case"]).lower())
        return isinstance(value, str) and value.endswith(str(inner))
    if "equals-ignore-case" in rule:
        return isinstance(value, str) and value.lower() == str(rule["equals-ignore-case"]).lower()
    if "anything-but" in rule:
        excluded = rule["anything-but"]
        if isinstance(excluded, dict):
            return not _match_leaf(excluded, value)
        return not any(_same(e, value) for e in (excluded if isinstance(excluded, list) else [excluded]))
    if "numeric" in rule:
        return _numeric(rule["numeric"], value)
    if "cidr" in rule:
        try:
            return ipaddress.ip_address(str(value)) in ipaddress.ip_network(str(rule["cidr"]), strict=False)
        except ValueError:
            return False
    raise ValueError(f"unsupported filter rule {rule!r}")


def _same(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return expected is value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return bool(expected == value)


def _numeric(conditions: list[Any], value: Any) -> bool:
    # Only JSON numbers: DynamoDB's {"N": "12"} is a string to the filter, as in Lambda.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    number = float(value)
    tests = {
        "=": number.__eq__,
        ">": number.__gt__,
        ">=": number.__ge__,
        "<": number.__lt__,
        "<=": number.__le__,
    }
    return all(tests[op](float(arg)) for op, arg in zip(conditions[::2], conditions[1::2], strict=True))


def matches_any(patterns: list[dict[str, Any]], event: dict[str, Any]) -> bool:
    """Lambda's FilterCriteria: no filters pass everything; otherwise any one pattern must match."""
    return not patterns or any(matches(p, event) for p in patterns)


# -- record shape ---------------------------------------------------------------------------------


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """A stream record as Lambda delivers it (with eventSourceARN, the table's region, numeric times)."""
    ddb = dict(raw.get("dynamodb") or {})
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    elif isinstance(created, int | float):
        ddb["ApproximateCreationDateTime"] = int(created)
    return {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }


def _iso(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the poller -----------------------------------------------------------------------------------


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    last_sequence: str | None = None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    buffered_since: float | None = None
    closed: bool = False  # read to its end: a closed shard (its children carry on)


@dataclass
class _Outcome:
    ok: bool
    failed_from: int = 0  # index of the first record to retry
    function_error: bool = False  # the function raised (bisect applies)


@dataclass
class PollerStats:
    read: int = 0  # records read from the stream
    filtered_out: int = 0  # dropped by FilterCriteria
    invocations: int = 0  # handler calls
    delivered: int = 0  # records in successful invocations
    discarded: int = 0  # records sent to the on-failure destination
    errors: list[str] = field(default_factory=list)  # function errors and polling problems


class StreamPoller:
    """Polls one stream and invokes the mapped function; ``start()``, ``drain()``, ``stop()``."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        mapping: StreamMapping,
        invoke: Invoke,
        on_failure: FailureSink | None = None,
        *,
        function_arn: str = "",
        interval: float = 0.15,
        window: float | None = None,
        retry_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """``window`` overrides the template's batching window (``None``: the template's, at most 1 s)."""
        self._streams = streams
        self.stream_arn = stream_arn
        self.mapping = mapping
        self.function_arn = function_arn
        self._invoke = invoke
        self._on_failure = on_failure
        self._interval = interval
        self.window = min(mapping.window_seconds, 1.0) if window is None else window
        self._retry_delay = retry_delay
        self._clock = clock
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._shards: dict[str, _Shard] = {}
        self._shard_ended = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._resumed = threading.Event()
        self._resumed.set()
        self._thread: threading.Thread | None = None
        self.stats = PollerStats()
        self.last_batch: list[dict[str, Any]] = []
        self.discarded: list[dict[str, Any]] = []  # on-failure records sent, for tests

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> StreamPoller:
        with self._lock:
            self._refresh_shards()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._resumed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def pause(self) -> None:
        """Stop background deliveries (records pile up in the stream; ``drain()`` still delivers)."""
        self._resumed.clear()
        with self._lock:  # wait for a delivery in progress
            pass

    def resume(self) -> None:
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    @contextlib.contextmanager
    def use_handler(self, invoke: Invoke) -> Iterator[None]:
        """Deliver to ``invoke`` instead of the mapped function inside the ``with`` block."""
        with self._lock:
            previous, self._invoke = self._invoke, invoke
        try:
            yield
        finally:
            with self._lock:
                self._invoke = previous

    def _note_error(self, text: str) -> None:
        self.stats.errors.append(text)
        del self.stats.errors[:-100]

    # -- polling ---------------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        shards = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self._shards:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                self._shards[shard["ShardId"]] = _Shard(shard["ShardId"], iterator)

    def _run(self) -> None:
        failures = 0
        refreshed = time.monotonic()
        while not self._stop.is_set():
            self._resumed.wait()
            if self._stop.is_set():
                break
            try:
                with self._lock:
                    if self._resumed.is_set():
                        # Shards close and new ones open (DynamoDB rolls them over; so does
                        # DynamoDB Local): look for new ones now and then, and when one ended.
                        if time.monotonic() - refreshed > 2.0 or self._shard_ended:
                            self._refresh_shards()
                            refreshed, self._shard_ended = time.monotonic(), False
                        self._fetch()
                        self._deliver_ready(force=False)
                failures = 0
            except Exception as error:  # keep polling; say what happened once in a while
                failures += 1
                self._note_error(f"poll: {error!r}")
                if failures in (1, 10, 100):
                    self._log(f"stream poller: {error!r}")
            self._stop.wait(self._interval)

    def _fetch(self) -> int:
        """Read every shard until it has nothing new; filter into the shards' buffers."""
        read = 0
        for shard in self._shards.values():
            while not shard.closed:
                if shard.iterator is None:
                    shard.iterator = self._reopen(shard)
                try:
                    answer = self._streams.get_records(ShardIterator=shard.iterator, Limit=1000)
                except Exception as error:
                    if "ExpiredIterator" in type(error).__name__ or "TrimmedData" in type(error).__name__:
                        shard.iterator = None
                        continue
                    raise
                shard.iterator = answer.get("NextShardIterator")
                if shard.iterator is None:
                    shard.closed = self._shard_ended = True
                records = answer.get("Records") or []
                if not records:
                    break
                read += len(records)
                self.stats.read += len(records)
                for raw in records:
                    record = lambda_record(raw, self.stream_arn)
                    shard.last_sequence = record["dynamodb"].get("SequenceNumber", shard.last_sequence)
                    if matches_any(self.mapping.filters, record):
                        if not shard.buffer:
                            shard.buffered_since = time.monotonic()
                        shard.buffer.append(record)
                    else:
                        self.stats.filtered_out += 1
                if shard.iterator is None:
                    break
        return read

    def _reopen(self, shard: _Shard) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.last_sequence:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_sequence}
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return str(self._streams.get_shard_iterator(**kwargs)["ShardIterator"])

    def _deliver_ready(self, force: bool) -> None:
        for shard in self._shards.values():
            while shard.buffer:
                waited = time.monotonic() - (shard.buffered_since or 0.0)
                if not force and len(shard.buffer) < self.mapping.batch_size and waited < self.window:
                    break
                batch = shard.buffer[: self.mapping.batch_size]
                del shard.buffer[: self.mapping.batch_size]
                shard.buffered_since = time.monotonic()
                self._process(shard.shard_id, batch)

    def poll_once(self) -> int:
        """Read every shard once and deliver everything read (no batching window); records read."""
        with self._lock:
            read = self._fetch()
            self._deliver_ready(force=True)
            return read

    def drain(self, timeout: float = 10.0) -> None:
        """Deliver every record now in the stream, and those its handling writes (tests call this).

        Works while paused too (a paused poller only stops background deliveries). Raises
        ``TimeoutError`` if the stream keeps producing matching records (a handler that re-triggers
        itself).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._refresh_shards()
            while True:
                read = self._fetch()
                pending = any(s.buffer for s in self._shards.values())
                if not read and not pending:
                    return
                self._deliver_ready(force=True)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the stream did not drain in {timeout} s")

    def redeliver_last_batch(self) -> Any:
        """Deliver the last batch again, as a stream may (at-least-once delivery); returns the answer."""
        with self._lock:
            batch = list(self.last_batch)
            if not batch:
                return None
            self.stats.invocations += 1
            return self._invoke({"Records": batch})

    # -- delivery with Lambda's failure semantics --------------------------------------------------

    def _process(self, shard_id: str, batch: list[dict[str, Any]]) -> None:
        pending: list[tuple[list[dict[str, Any]], int]] = [(batch, 0)]  # (records, invocations so far)
        while pending:
            records, attempts = pending.pop(0)
            records = self._discard_expired(shard_id, records, attempts)
            if not records:
                continue
            outcome = self._invoke_batch(records)
            attempts += 1
            if outcome.ok:
                self.stats.delivered += len(records)
                continue
            if outcome.function_error and self.mapping.bisect and len(records) > 1:
                half = len(records) // 2
                pending[0:0] = [(records[:half], 0), (records[half:], 0)]
                continue
            failed = records[outcome.failed_from :]
            limit = self.mapping.max_retries
            if limit < 0 and self.mapping.max_record_age < 0:
                limit = UNBOUNDED_RETRY_CAP  # Lambda would retry for the stream's 24 h retention
            if 0 <= limit < attempts:
                self._discard(shard_id, failed, "RetryAttemptsExhausted", attempts, outcome.function_error)
                continue
            if self._retry_delay:
                time.sleep(self._retry_delay)
            pending.insert(0, (failed, attempts))

    def _discard_expired(self, shard_id: str, records: list[dict[str, Any]], attempts: int) -> list[dict[str, Any]]:
        if self.mapping.max_record_age < 0:
            return records
        now = self._clock()
        expired = [
            r
            for r in records
            if now - float(r["dynamodb"].get("ApproximateCreationDateTime", now)) > self.mapping.max_record_age
        ]
        if expired:
            self._discard(shard_id, expired, "RecordAgeExceeded", attempts, False)
            return [r for r in records if r not in expired]
        return records

    def _invoke_batch(self, batch: list[dict[str, Any]]) -> _Outcome:
        self.last_batch = batch
        self.stats.invocations += 1
        try:
            answer = self._invoke({"Records": batch})
        except Exception as error:
            self._note_error(f"{type(error).__name__}: {error}")
            self._log(f"stream -> {self.mapping.function}: function error {type(error).__name__}: {error}")
            return _Outcome(ok=False, failed_from=0, function_error=True)
        if not self.mapping.report_failures or answer is None:
            return _Outcome(ok=True)
        if not isinstance(answer, dict):
            return _Outcome(ok=True)
        failures = answer.get("batchItemFailures")
        if not failures:
            return _Outcome(ok=True)
        positions = {r["dynamodb"].get("SequenceNumber"): i for i, r in enumerate(batch)}
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or identifier not in positions:
                return _Outcome(ok=False, failed_from=0)  # Lambda: the whole batch failed
            indexes.append(positions[identifier])
        return _Outcome(ok=False, failed_from=min(indexes))

    def _discard(
        self, shard_id: str, records: list[dict[str, Any]], condition: str, attempts: int, function_error: bool
    ) -> None:
        self.stats.discarded += len(records)
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response["functionError"] = "Unhandled"
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first.get("SequenceNumber"),
                "endSequenceNumber": last.get("SequenceNumber"),
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
            # Local addition: Lambda sends only the batch info; a local replay tool needs the records.
            "records": records,
        }
        self.discarded.append(message)
        self._log(f"stream -> {self.mapping.function}: {len(records)} record(s) discarded ({condition})")
        if self._on_failure is not None:
            self._on_failure(message)
