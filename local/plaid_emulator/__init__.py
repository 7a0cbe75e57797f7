"""A Plaid emulator on 127.0.0.1: Plaid's API as FirmPay uses it (answers parse with plaid-python's
models) and a stand-in Link page, with in-memory, per-run state.

``python -m local.plaid_emulator --port 8430 --stripe-url http://127.0.0.1:8420``, or
``build_app(stripe_url)`` for an aiohttp application. Institutions and test credentials are in
``institutions.py``; Link's screens in ``static/link.js``.
"""

from __future__ import annotations

from local.plaid_emulator.app import build_app

__all__ = ["build_app"]
