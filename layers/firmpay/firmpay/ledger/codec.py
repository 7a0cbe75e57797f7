"""Plain JSON-like values <-> DynamoDB attribute values.

The ledger stores only strings, integers, booleans, null, maps and lists (never floats), so a
small exact codec replaces boto3's TypeSerializer and its Decimal round trips.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AttributeValue = dict[str, Any]


def to_attr(value: Any) -> AttributeValue:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"the ledger does not store {type(value).__name__} values")


def from_attr(attr: Mapping[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "L":
        return [from_attr(v) for v in value]
    raise TypeError(f"unexpected DynamoDB type {kind}")


def to_item(values: dict[str, Any]) -> dict[str, AttributeValue]:
    return {k: to_attr(v) for k, v in values.items()}


def from_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {k: from_attr(v) for k, v in item.items()}
