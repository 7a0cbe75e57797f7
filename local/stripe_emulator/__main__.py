"""``python -m local.stripe_emulator --port 8420``: serve the Stripe emulator on 127.0.0.1."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from local.stripe_emulator import build_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
