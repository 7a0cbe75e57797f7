"""The local event source mapping's filter behaves like Lambda's for the template's pattern."""

from local.stream_poller import lambda_record, matches
from local.template import load_template


def record(entity: str, event: str = "MODIFY") -> dict:
    return {"eventName": event, "dynamodb": {"NewImage": {"entity": {"S": entity}}}}


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


def test_records_get_the_fields_moto_leaves_out() -> None:
    from datetime import UTC, datetime

    raw = {"eventID": "1", "eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC)}}
    shaped = lambda_record(raw, "arn:aws:dynamodb:us-east-1:0:table/t/stream/x")
    assert shaped["eventSourceARN"].endswith("/stream/x")
    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == 1767225600
    assert shaped["eventSource"] == "aws:dynamodb"
