"""Plaid's request contract, read from plaid-python's own request models.

plaid-python's deserializer is lenient (it keeps unknown fields, skips missing required ones and
unknown enum values, as a client reading answers should), so the emulator walks each request body
against the model's metadata itself: ``attribute_map`` (the fields the endpoint knows), the
positional parameters of ``_from_openapi_data`` (the required ones), ``openapi_types``,
``allowed_values`` and ``validations``. It answers what Plaid's docs list for a bad request
(https://plaid.com/docs/errors/invalid-request/): ``UNKNOWN_FIELDS`` "the following fields are not
recognized by this endpoint: {fields}", ``MISSING_FIELDS`` "the following required fields are
missing: {fields}", ``INVALID_FIELD`` for a value of the wrong type or outside the allowed values.
"""

from __future__ import annotations

import inspect
import json
from functools import cache
from typing import Any

import plaid
from plaid.model_utils import ModelNormal, ModelSimple

from local.plaid_emulator import errors

_PRIMITIVES: dict[type, tuple[type, ...]] = {
    str: (str,),
    bool: (bool,),
    int: (int,),
    float: (int, float),
    dict: (dict,),
}


class _Raw:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = json.dumps(data)


@cache
def required_fields(model: type[ModelNormal]) -> tuple[str, ...]:
    """The JSON names of the model's required fields (its positional constructor parameters)."""
    params = inspect.signature(model._from_openapi_data).parameters.values()
    names = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name != "cls"]
    return tuple(model.attribute_map[name] for name in names)


def parse_request(model: type[ModelNormal], data: dict[str, Any]) -> ModelNormal:
    """``data`` as ``model``, or the PlaidError Plaid answers for it (unknown, missing, then invalid fields)."""
    unknown: list[str] = []
    missing: list[str] = []
    invalid: list[str] = []
    _walk_object(model, data, "", unknown, missing, invalid)
    if unknown:
        raise errors.unknown_fields(*unknown)
    if missing:
        raise errors.missing_fields(*missing)
    if invalid:
        raise errors.invalid_field("; ".join(invalid))
    parsed = plaid.ApiClient().deserialize(_Raw(data), (model,), True)
    assert isinstance(parsed, model)
    return parsed


def _walk_object(
    model: type[ModelNormal],
    data: dict[str, Any],
    prefix: str,
    unknown: list[str],
    missing: list[str],
    invalid: list[str],
) -> None:
    by_json_name = {json_name: name for name, json_name in model.attribute_map.items()}
    unknown.extend(prefix + key for key in data if key not in by_json_name)
    missing.extend(prefix + key for key in required_fields(model) if data.get(key) is None)
    for key, value in data.items():
        name = by_json_name.get(key)
        if name is None or (value is None and key not in required_fields(model)):
            continue  # an optional field sent as null is the same as absent
        _walk_value(model.openapi_types[name], value, prefix + key, unknown, missing, invalid)
        for rule, limit in model.validations.get((name,), {}).items():
            if not _within(rule, limit, value):
                invalid.append(f"{prefix + key} fails {rule} {limit}")


def _walk_value(
    types: tuple[Any, ...], value: Any, path: str, unknown: list[str], missing: list[str], invalid: list[str]
) -> None:
    for kind in types:
        if isinstance(kind, list) and isinstance(value, list):
            for index, element in enumerate(value):
                _walk_value(tuple(kind), element, f"{path}[{index}]", unknown, missing, invalid)
            return
        if isinstance(kind, type) and issubclass(kind, ModelNormal) and isinstance(value, dict):
            _walk_object(kind, value, path + ".", unknown, missing, invalid)
            return
        if isinstance(kind, type) and issubclass(kind, ModelSimple) and isinstance(value, str):
            allowed = sorted(kind.allowed_values.get(("value",), {}).values())
            if allowed and value not in allowed:
                invalid.append(f"{path} must be one of {', '.join(allowed)}")
            return
        if kind is type(None) and value is None:
            return
        if (
            isinstance(kind, type)
            and kind in _PRIMITIVES
            and isinstance(value, _PRIMITIVES[kind])
            and not _bool_as_number(kind, value)
        ):
            return
    invalid.append(f"{path} has the wrong type")


def _bool_as_number(kind: type, value: Any) -> bool:
    return kind in (int, float) and isinstance(value, bool)


def _within(rule: str, limit: Any, value: Any) -> bool:
    size = len(value) if isinstance(value, str | list) else None
    checks = {
        "min_length": lambda: size is None or size >= limit,
        "max_length": lambda: size is None or size <= limit,
        "min_items": lambda: size is None or size >= limit,
        "max_items": lambda: size is None or size <= limit,
        "inclusive_minimum": lambda: not isinstance(value, int | float) or value >= limit,
        "inclusive_maximum": lambda: not isinstance(value, int | float) or value <= limit,
    }
    check = checks.get(rule)
    return check is None or bool(check())
