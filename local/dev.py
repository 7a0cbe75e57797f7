"""`make dev`: the local stack on 127.0.0.1 (gateway on :3000), demo data, pay links; Ctrl-C stops it.

Runs in the foreground. A second `make dev` while this one runs says so and exits; after a crash
it cleans up what the crashed run left (see ``local.stack``).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any

from local.stack import LocalStack, StackError


def _seed(stack: LocalStack) -> list[str]:
    """Demo data from ``local.seed.seed_demo(stack)`` (another module; absent in early checkouts)."""
    try:
        from local.seed import seed_demo
    except ImportError as error:
        if getattr(error, "name", "") not in ("local.seed", None):
            raise
        return ["(no demo data: local/seed.py is not there yet; the stack runs empty)"]
    lines: Any = seed_demo(stack)
    return [str(line) for line in lines or []]


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("starting the FirmPay local stack on 127.0.0.1 ...", flush=True)
    stack = LocalStack(ports="fixed", name="dev", log_requests=True)
    try:
        stack.start()
    except StackError as error:
        print(f"make dev: {error}", file=sys.stderr, flush=True)
        return 1
    try:
        started = time.perf_counter()
        for line in _seed(stack):
            print(line, flush=True)
        gateway = stack.urls["gateway"]
        print(
            f"\nready in {stack.startup_seconds + time.perf_counter() - started:.1f} s\n"
            f"  API gateway      {gateway}   (routes from template.yaml)\n"
            f"  local outbox     {stack.urls['outbox']}   (every email sent)\n"
            f"  API document     {gateway}/api/openapi.json\n"
            f"  Stripe emulator  {stack.urls['stripe']}\n"
            f"  Plaid emulator   {stack.urls['plaid']}{'' if stack.want_plaid else '   (not started: local/plaid_emulator missing)'}\n"
            f"  AWS endpoint     {stack.urls['proxy']}   (AWS_ENDPOINT_URL; DynamoDB Local and moto behind it)\n"
            f"  logs             .local/logs/dev-*.log\n"
            "running; press Ctrl-C to stop",
            flush=True,
        )
        stop.wait()
        print("stopping ...", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
