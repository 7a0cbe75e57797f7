"""The Stripe emulator: localstripe on 127.0.0.1 with in-memory, per-run state."""

from __future__ import annotations

from typing import Any


def build_app() -> Any:
    """localstripe's aiohttp app with the on-disk pickle turned off (state lives in this process)."""
    from localstripe import resources
    from localstripe.server import app

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    return app
