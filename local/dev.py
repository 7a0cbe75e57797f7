"""`make dev`: the local stack on 127.0.0.1 (gateway on :3000), demo data, pay links; Ctrl-C stops it."""

from __future__ import annotations

import signal
import sys
import threading

from local.stack import LocalStack


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("starting the FirmPay local stack on 127.0.0.1 ...", flush=True)
    with LocalStack(fixed_ports=True, name="dev") as stack:
        from local.seed import seed_demo

        for line in seed_demo(stack):
            print(line, flush=True)
        print(f"local outbox (every email sent): {stack.urls['gateway']}/_local/outbox", flush=True)
        print(f"API document: {stack.urls['gateway']}/api/openapi.json", flush=True)
        print("running; press Ctrl-C to stop", flush=True)
        stop.wait()
        print("stopping ...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
