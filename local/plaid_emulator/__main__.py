"""``python -m local.plaid_emulator --port 8430 --stripe-url http://127.0.0.1:8420``: serve the Plaid
emulator on 127.0.0.1 (loopback only) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import ipaddress
import logging

from aiohttp import web

from local.plaid_emulator.app import DEFAULT_STRIPE_KEY, build_app


def loopback(host: str) -> str:
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address: the emulator serves 127.0.0.1 only")
    return host


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.plaid_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8430)
    parser.add_argument("--host", type=loopback, default="127.0.0.1")
    parser.add_argument("--stripe-url", default="http://127.0.0.1:8420", help="the Stripe (emulator) API base URL")
    parser.add_argument("--stripe-key", default=DEFAULT_STRIPE_KEY, help="secret key for Stripe's /v1/tokens")
    parser.add_argument("--client-id", help="require this client_id (default: any non-empty one)")
    parser.add_argument("--secret", help="require this secret (with --client-id)")
    args = parser.parse_args()
    if (args.client_id is None) != (args.secret is None):
        parser.error("give --client-id and --secret together")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = build_app(args.stripe_url, client_id=args.client_id, secret=args.secret, stripe_key=args.stripe_key)
    # run_app turns SIGTERM and SIGINT into a graceful shutdown (exit status 0).
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
