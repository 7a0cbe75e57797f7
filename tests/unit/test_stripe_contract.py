"""The Stripe client speaks the pinned SDK's API version, and the emulator's contract comes from it."""

from __future__ import annotations

import json
from pathlib import Path

import stripe
from stripe._api_version import _ApiVersion

from firmpay.gateways.stripe_gateway import STRIPE_API_VERSION
from local.stripe_emulator.contract import OBJECT_CLASSES, ROUTE_PARAMS, sdk_fields

ROOT = Path(__file__).resolve().parents[2]
# shared/ lies beside the clone (../shared), or beside the worktrees' folder.
FIXTURES = (
    next(
        (
            path
            for path in (ROOT.parent / "shared", ROOT.parent.parent / "shared")
            if (path / "contracts" / "stripe-fixtures3.json").exists()
        ),
        ROOT.parent / "shared",
    )
    / "contracts"
    / "stripe-fixtures3.json"
)


def test_the_pinned_api_version_is_the_sdk_s_own() -> None:
    # Our typed params and the emulator's contract describe the SDK's version: they must be one.
    assert STRIPE_API_VERSION == _ApiVersion.CURRENT == stripe.api_version


def test_every_route_the_emulator_checks_has_the_sdk_s_params_class() -> None:
    for route, name in ROUTE_PARAMS.items():
        assert hasattr(stripe.params, name), route


def test_the_sdk_s_fields_are_those_of_stripe_s_published_example_objects() -> None:
    # Stripe's fixtures (API spec of 2026-08) and the SDK (2026-10-28.endive) name the same fields,
    # give or take the fields of the versions between them: a check that sdk_fields reads them right.
    if not FIXTURES.exists():
        return
    resources = json.loads(FIXTURES.read_text())["resources"]
    for name, cls in OBJECT_CLASSES.items():
        example = resources.get(name)
        if example is None:
            continue
        shared = set(example) & set(sdk_fields(cls))
        assert len(shared) >= 0.8 * len(example), (name, sorted(set(example) - set(sdk_fields(cls))))
