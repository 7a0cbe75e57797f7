"""The local event source mapping: Lambda's filter rules, record shape and delivery semantics.

Delivery is checked against an in-memory stream (no DynamoDB): batches, partial batch failures,
bisect on function errors, retries, record age, and the on-failure record Lambda sends.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from local.stream_poller import StreamPoller, lambda_record, matches, matches_any
from local.template import StreamMapping, load_template

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/ledger/stream/2026-01-01T00:00:00.000"


def record(entity: str, event: str = "MODIFY") -> dict[str, Any]:
    return {"eventName": event, "dynamodb": {"NewImage": {"entity": {"S": entity}}}}


# -- the filter ------------------------------------------------------------------------------------


def test_the_template_filter_wakes_only_for_payment_items() -> None:
    stream = load_template().stream
    assert stream is not None
    (pattern,) = stream.filters
    assert matches(pattern, record("payment"))
    assert matches(pattern, record("payment", "INSERT"))
    assert not matches(pattern, record("payable"))
    assert not matches(pattern, record("payment", "REMOVE"))
    assert not matches(pattern, {"eventName": "MODIFY", "dynamodb": {}})


def test_prefix_anything_but_exists_and_numeric_rules() -> None:
    assert matches({"a": [{"prefix": "pay"}]}, {"a": "payment"})
    assert not matches({"a": [{"anything-but": ["x"]}]}, {"a": "x"})
    assert matches({"a": [{"exists": False}]}, {"b": 1})
    assert matches({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5})
    assert not matches({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 6})


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ({"a": ["x", "y"]}, {"a": "y"}, True),
        ({"a": ["x"]}, {"a": "X"}, False),
        ({"a": [{"equals-ignore-case": "x"}]}, {"a": "X"}, True),
        ({"a": [{"suffix": ".pdf"}]}, {"a": "bill.pdf"}, True),
        ({"a": [{"prefix": {"equals-ignore-case": "PAY"}}]}, {"a": "payment"}, True),
        ({"a": [{"anything-but": "x"}]}, {"a": "z"}, True),
        ({"a": [{"anything-but": {"prefix": "pay"}}]}, {"a": "payment"}, False),
        ({"a": [{"anything-but": ["x"]}]}, {}, False),  # a missing field matches nothing but exists:false
        ({"a": [None]}, {"a": None}, True),
        ({"a": [""]}, {"a": ""}, True),
        ({"a": [True]}, {"a": 1}, False),
        ({"a": [1]}, {"a": 1.0}, True),
        ({"a": [{"exists": True}]}, {"a": "v"}, True),
        ({"a": [{"exists": True}]}, {"a": {"nested": 1}}, False),  # exists looks at leaves only
        ({"a": [{"exists": False}]}, {"a": "v"}, False),
        ({"a": ["x"]}, {"a": ["w", "x"]}, True),  # an array in the event: any element
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"}, False),
        ({"a": {"b": {"c": ["d"]}}}, {"a": {"b": {"c": "d", "e": 1}}}, True),
        ({"a": {"b": ["c"]}}, {"a": "flat"}, False),
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"b": "2"}, True),
        ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"c": "3"}, False),
    ],
)
def test_eventbridge_rules(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


def test_dynamodb_numbers_are_strings_to_numeric_rules_as_in_lambda() -> None:
    pattern = {"dynamodb": {"NewImage": {"amount_minor": {"N": [{"numeric": [">", 0]}]}}}}
    assert not matches(pattern, {"dynamodb": {"NewImage": {"amount_minor": {"N": "150050"}}}})


def test_several_patterns_are_ored_and_no_filter_passes_everything() -> None:
    patterns = [{"eventName": ["INSERT"]}, {"eventName": ["REMOVE"]}]
    assert matches_any(patterns, {"eventName": "REMOVE"})
    assert not matches_any(patterns, {"eventName": "MODIFY"})
    assert matches_any([], {"eventName": "MODIFY"})


def test_unsupported_rules_are_refused_rather_than_ignored() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        matches({"a": [{"wildcard-ish": "x"}]}, {"a": "x"})


def test_records_get_the_fields_lambda_adds() -> None:
    raw = {
        "eventID": "1",
        "eventName": "INSERT",
        "awsRegion": "ddblocal",  # what DynamoDB Local says
        "dynamodb": {"ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC)},
    }
    shaped = lambda_record(raw, STREAM_ARN)
    assert shaped["eventSourceARN"] == STREAM_ARN
    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == 1767225600
    assert shaped["eventSource"] == "aws:dynamodb"
    assert shaped["awsRegion"] == "us-east-1"


# -- delivery --------------------------------------------------------------------------------------


class FakeStreams:
    """One shard in memory; iterators are positions."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, entity: str = "payment", event: str = "INSERT", created: float | None = None) -> str:
        sequence = str(1000 + len(self.records))
        self.records.append(
            {
                "eventID": f"e{sequence}",
                "eventName": event,
                "eventVersion": "1.1",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": datetime.fromtimestamp(
                        created or datetime.now(UTC).timestamp(), UTC
                    ),
                    "Keys": {"pk": {"S": f"P#{sequence}"}},
                    "NewImage": {"pk": {"S": f"P#{sequence}"}, "entity": {"S": entity}},
                    "SequenceNumber": sequence,
                    "SizeBytes": 40,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        )
        return sequence

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shardId-1"}]}}

    def get_shard_iterator(
        self, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str | None = None
    ) -> dict[str, Any]:
        return {"ShardIterator": "0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        start = int(ShardIterator)
        found = self.records[start : start + Limit]
        return {"Records": found, "NextShardIterator": str(start + len(found))}


MAPPING = StreamMapping(
    function="confirmation_email",
    event_name="LedgerStream",
    source="LedgerTable",
    starting_position="LATEST",
    batch_size=10,
    window_seconds=0,
    max_retries=2,
    max_record_age=3600,
    bisect=True,
    report_failures=True,
    filters=[{"dynamodb": {"NewImage": {"entity": {"S": ["payment"]}}}}],
    on_failure="EmailDeadLetterQueue",
)


class Recorder:
    """A handler that records batches and fails the sequence numbers it is told to."""

    def __init__(self, fail: set[str] | None = None, raise_on: set[str] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail or set()
        self.raise_on = raise_on or set()

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.batches.append(sequences)
        if self.raise_on & set(sequences):
            raise RuntimeError("handler crashed")
        return {"batchItemFailures": [{"itemIdentifier": s} for s in sequences if s in self.fail]}


def poller(
    streams: FakeStreams, handler: Any, mapping: StreamMapping = MAPPING
) -> tuple[StreamPoller, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    return StreamPoller(
        streams, STREAM_ARN, mapping, handler, sent.append, function_arn="arn:fn", log=lambda _: None
    ), sent


def test_matching_records_arrive_in_order_in_batches_and_others_are_dropped() -> None:
    streams = FakeStreams()
    wanted = [streams.add() for _ in range(12)]
    streams.add("payable")
    handler = Recorder()
    mapper, sent = poller(streams, handler)

    mapper.drain()

    assert handler.batches == [wanted[:10], wanted[10:]]
    assert mapper.stats.filtered_out == 1
    assert sent == []


def test_a_partial_failure_is_retried_from_the_lowest_failed_record() -> None:
    streams = FakeStreams()
    seqs = [streams.add() for _ in range(4)]
    handler = Recorder(fail={seqs[2], seqs[1]})
    mapper, sent = poller(streams, handler)

    mapper.drain()

    assert handler.batches[0] == seqs
    assert handler.batches[1:] == [seqs[1:]] * 2  # two retries, then discarded
    (failure,) = sent
    info = failure["DDBStreamBatchInfo"]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert "functionError" not in failure["responseContext"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (seqs[1], seqs[3], 3)
    assert info["streamArn"] == STREAM_ARN
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert [r["dynamodb"]["SequenceNumber"] for r in failure["records"]] == seqs[1:]


def test_a_function_error_bisects_until_the_bad_record_is_alone() -> None:
    streams = FakeStreams()
    seqs = [streams.add() for _ in range(4)]
    handler = Recorder(raise_on={seqs[3]})
    mapper, sent = poller(streams, handler)

    mapper.drain()

    assert handler.batches[:4] == [seqs, seqs[:2], seqs[2:], [seqs[2]]]
    assert handler.batches[4:] == [[seqs[3]]] * 3  # bisecting used no retries; then 1 + 2 retries
    (failure,) = sent
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    streams = FakeStreams()
    seqs = [streams.add() for _ in range(2)]
    calls: list[int] = []

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": [{"itemIdentifier": ""}]}

    mapper, sent = poller(streams, handler, replace(MAPPING, bisect=False, max_retries=0))
    mapper.drain()

    assert calls == [2]
    assert sent[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == seqs[0]


def test_old_records_are_discarded_without_an_invocation() -> None:
    streams = FakeStreams()
    streams.add(created=datetime.now(UTC).timestamp() - 7200)
    fresh = streams.add()
    handler = Recorder()
    mapper, sent = poller(streams, handler)

    mapper.drain()

    assert handler.batches == [[fresh]]
    assert sent[0]["requestContext"]["condition"] == "RecordAgeExceeded"


def test_reported_failures_are_ignored_when_the_mapping_does_not_ask_for_them() -> None:
    streams = FakeStreams()
    seq = streams.add()
    handler = Recorder(fail={seq})
    mapper, sent = poller(streams, handler, replace(MAPPING, report_failures=False))

    mapper.drain()

    assert handler.batches == [[seq]]
    assert sent == []


def test_a_paused_poller_still_drains_and_the_last_batch_can_be_delivered_again() -> None:
    streams = FakeStreams()
    seq = streams.add()
    handler = Recorder()
    mapper, _ = poller(streams, handler)
    mapper.pause()

    mapper.drain()
    mapper.redeliver_last_batch()

    assert handler.batches == [[seq], [seq]]
    assert mapper.paused


def test_a_test_handler_can_stand_in_for_the_function() -> None:
    streams = FakeStreams()
    seq = streams.add()
    real, stand_in = Recorder(), Recorder()
    mapper, _ = poller(streams, real)

    with mapper.use_handler(stand_in):
        mapper.drain()

    assert (real.batches, stand_in.batches) == ([], [[seq]])
