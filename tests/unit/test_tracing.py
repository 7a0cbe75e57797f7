"""X-Ray and metrics at cold start: neither is loaded; and once the Stripe or Plaid client exists, their
calls reach the X-Ray daemon as subsegments carrying host, method, path and status, never a body,
a query string or a token.

Each scenario runs in a fresh interpreter set up as Lambda sets up a traced function (task root,
trace header, daemon address): patching is process-wide and must not leak into other tests. The
"daemon" is a UDP socket, as Lambda's is; the "Stripe" and "Plaid" are a local HTTP server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BODY_MARKER = "BODY-MUST-NOT-BE-TRACED"
ACCESS_TOKEN = "access-sandbox-0f1e2d3c-aaaa-bbbb-cccc-123456789abc"


def lambda_environment(daemon_port: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_XRAY"))}
    env |= {
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "firmpay-test",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "POWERTOOLS_SERVICE_NAME": "firmpay",
        "STAGE": "dev",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "firmpay")]),
    }
    if daemon_port is not None:
        env["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{daemon_port}"
    return env


def run(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_importing_every_handler_loads_neither_the_xray_sdk_nor_the_metrics_even_with_tracing_on() -> None:
    # Given a traced Lambda environment, when every function's handler module is imported (its cold start)
    loaded = run(
        """
        import importlib.util, pathlib, sys
        for path in sorted(pathlib.Path("functions").glob("*/app.py")):
            spec = importlib.util.spec_from_file_location(f"app_{path.parent.name}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        print(sorted(name for name in sys.modules if name.startswith(("aws_xray_sdk", "wrapt", "firmpay.metrics"))))
        """,
        lambda_environment() | {"LEDGER_TABLE": "ledger"},
    )
    # Then neither the X-Ray SDK, nor its patching library, nor firmpay.metrics is loaded (they load on use)
    assert loaded.strip().splitlines()[-1] == "[]"


def test_stripe_and_plaid_calls_reach_the_daemon_with_host_method_path_and_status_only() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(5)
        port = daemon.getsockname()[1]

        # Given the Stripe and Plaid clients of a traced function, each making one call to a local
        # server (Stripe answers an intent, Plaid refuses with an error body)
        run(
            f"""
            import json, threading
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

            class Provider(BaseHTTPRequestHandler):
                def _answer(self, status, body):
                    raw = json.dumps(body).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                def do_GET(self):
                    self._answer(200, {{"id": "pi_123", "object": "payment_intent", "note": "{BODY_MARKER}"}})
                def do_POST(self):
                    self.rfile.read(int(self.headers["Content-Length"]))
                    self._answer(400, {{"error_type": "ITEM_ERROR", "error_code": "ITEM_NOT_FOUND",
                                       "error_message": "{BODY_MARKER}", "request_id": "r1"}})
                def log_message(self, *args):
                    pass

            server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            base = f"http://127.0.0.1:{{server.server_port}}"
            import os
            os.environ["STRIPE_API_BASE"] = base
            os.environ["PLAID_BASE_URL"] = base

            from firmpay.gateways.stripe_gateway import _stripe_client_for
            from firmpay.gateways.plaid_gateway import _plaid_api_for
            from plaid.model.item_remove_request import ItemRemoveRequest
            import plaid

            intent = _stripe_client_for("sk_test_tracing").v1.payment_intents.retrieve(
                "pi_123", params={{"expand": ["latest_charge"]}}
            )
            assert intent.id == "pi_123"
            try:
                _plaid_api_for('{{"client_id": "c", "secret": "s"}}').item_remove(
                    ItemRemoveRequest(access_token="{ACCESS_TOKEN}")
                )
            except plaid.ApiException as error:
                assert error.status == 400
            else:
                raise AssertionError("Plaid's 400 did not raise")
            """,
            lambda_environment(port),
        )

        # Then the daemon received one subsegment per call
        datagrams = []
        while True:
            try:
                datagrams.append(daemon.recv(65536).decode())
            except TimeoutError:
                break
    documents = [json.loads(d.split("\n", 1)[1]) for d in datagrams]
    calls = [d for d in documents if d.get("namespace") == "remote"]
    by_method = {d["http"]["request"]["method"].upper(): d for d in calls}  # stripe-python says "get"
    assert sorted(by_method) == ["GET", "POST"], documents

    # Stripe's: host, path without the query string, status
    stripe_call = by_method["GET"]
    assert stripe_call["name"] == "127.0.0.1"
    assert stripe_call["http"]["request"]["url"].endswith("/v1/payment_intents/pi_123")
    assert stripe_call["http"]["response"]["status"] == 200
    # Plaid's: the path and the refusal's status, an error, and no exception text
    plaid_call = by_method["POST"]
    assert plaid_call["http"]["request"]["url"].endswith("/item/remove")
    assert plaid_call["http"]["response"]["status"] == 400
    assert plaid_call.get("error") is True
    assert "cause" not in plaid_call
    # Nothing of a request or response body, a query string or a token reached X-Ray
    everything = "\n".join(datagrams)
    for secret in (BODY_MARKER, ACCESS_TOKEN, "expand", "sk_test_tracing"):
        assert secret not in everything
