"""`make bench`: cold starts, deployment sizes, DynamoDB requests and warm latency per function.

Cold start is measured on what `sam build` produces, never on the dev virtual environment: a fresh
`python3.13 -I` process whose sys.path is the function's built directory plus its layers imports
the handler module (running its module-level initialisation). The baseline is the same kind of
process importing boto3 and creating a DynamoDB client. Medians of RUNS runs.

`sam build` fetches arm64 wheels for Lambda; this machine may be x86_64, so the timing build is
made from a copy of the template targeting this machine's architecture (same code, same pins),
and the sizes come from the real arm64 build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAM = ROOT / ".sam-venv" / "bin" / "sam"
PYTHON = shutil.which("python3.13") or sys.executable
RUNS = 15

CHILD = """
import sys, time
started = time.perf_counter()
sys.path[:0] = {paths!r}
{code}
print(time.perf_counter() - started)
"""


def sam_build(build_dir: Path, architecture: str) -> Path:
    """Build the template (for ``architecture``) into ``build_dir``; reuse a build newer than the sources."""
    stamp = build_dir / ".firmpay-bench-stamp"
    sources = [
        ROOT / "template.yaml",
        *ROOT.glob("layers/**/*.py"),
        *ROOT.glob("layers/*/requirements.txt"),
        *ROOT.glob("functions/*/app.py"),
    ]
    if stamp.exists() and stamp.stat().st_mtime > max(p.stat().st_mtime for p in sources):
        return build_dir
    template = (ROOT / "template.yaml").read_text()
    if architecture != "arm64":
        template = template.replace("arm64", architecture)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=ROOT, delete=False) as handle:
        handle.write(template)
        template_path = Path(handle.name)
    try:
        subprocess.run(
            [str(SAM), "build", "--template-file", str(template_path), "--build-dir", str(build_dir)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
    finally:
        template_path.unlink()
    stamp.touch()
    return build_dir


def functions_and_layers() -> dict[str, tuple[str, list[str]]]:
    """logical id -> (function directory name, layer logical ids), from template.yaml."""
    from cfnlint.decode import decode

    template, _ = decode(str(ROOT / "template.yaml"))
    global_layers = [layer["Ref"] for layer in template["Globals"]["Function"].get("Layers", [])]
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            props = resource["Properties"]
            layers = global_layers + [layer["Ref"] for layer in props.get("Layers", [])]
            found[logical_id] = (Path(props["CodeUri"]).name, layers)
    return found


def child_env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "LEDGER_TABLE": "ledger",
        "POWERTOOLS_SERVICE_NAME": "firmpay",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def time_process(paths: list[str], code: str, runs: int) -> tuple[float, float]:
    """Median whole-process wall time and median in-process import time, in milliseconds."""
    walls, inner = [], []
    script = CHILD.format(paths=paths, code=code)
    for _ in range(runs):
        began = time.perf_counter()
        out = subprocess.run([PYTHON, "-I", "-c", script], capture_output=True, text=True, env=child_env(), check=False)
        walls.append((time.perf_counter() - began) * 1000)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "child failed")
        inner.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(walls), statistics.median(inner)


def loads_plaid_at_init(paths: list[str]) -> bool:
    """Whether importing the handler (its cold init) loads plaid-python: it must only load on use."""
    script = f"import sys\nsys.path[:0] = {paths!r}\nimport app\nprint('plaid' in sys.modules)"
    out = subprocess.run([PYTHON, "-I", "-c", script], capture_output=True, text=True, env=child_env(), check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def size_mb(paths: list[Path]) -> float:
    total = 0
    for path in paths:
        total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total / 1_000_000


def cold_starts(runs: int) -> tuple[list[dict[str, Any]], float]:
    """Interleaved rounds (baseline, then every function, ``runs`` times) so that any load on the
    machine weighs on the baseline and the functions alike; medians per process kind."""
    arch = "x86_64" if platform.machine() in ("x86_64", "AMD64") else "arm64"
    timing_build = sam_build(ROOT / ".aws-sam" / f"bench-{arch}", arch)
    size_build = sam_build(ROOT / ".aws-sam" / "bench-arm64", "arm64") if arch != "arm64" else timing_build
    layout = sorted(functions_and_layers().items(), key=lambda kv: kv[1][0])
    kinds: dict[str, tuple[list[str], str]] = {
        "baseline": ([str(timing_build / "FirmpayLayer" / "python")], "import boto3\nboto3.client('dynamodb')")
    }
    for logical_id, (name, layers) in layout:
        paths = [str(timing_build / logical_id)] + [str(timing_build / layer / "python") for layer in layers]
        kinds[name] = (paths, "import app")
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    inner: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(runs):
        for kind, (paths, code) in kinds.items():
            wall, import_ms = time_process(paths, code, 1)
            walls[kind].append(wall)
            inner[kind].append(import_ms)
    baseline = statistics.median(walls["baseline"])
    rows = []
    for logical_id, (name, layers) in layout:
        deployed = [size_build / logical_id] + [size_build / layer for layer in layers]
        wall = statistics.median(walls[name])
        paths = [str(timing_build / logical_id)] + [str(timing_build / layer / "python") for layer in layers]
        rows.append(
            {
                "function": name,
                "cold_ms": wall,
                "import_ms": statistics.median(inner[name]),
                "ratio": wall / baseline,
                "size_mb": size_mb(deployed),
                "plaid": "PlaidLayer" in layers,
                "plaid_at_init": loads_plaid_at_init(paths),
            }
        )
    return rows, baseline


def routes() -> list[dict[str, Any]]:
    """DynamoDB requests and warm latency per route, through the local stack's gateway."""
    import requests

    from local.stack import LocalStack

    results = []
    with LocalStack() as stack:
        from datetime import UTC, datetime

        from firmpay.payments.links import issue_pay_link
        from tests.support.factories import create_billed

        billed = create_billed(stack.ledger)
        url, _ = issue_pay_link(stack.ledger, billed.payable, stack.urls["gateway"], datetime.now(UTC))
        token = url.rsplit("/", 1)[1]
        gateway = stack.urls["gateway"]
        session = requests.Session()
        scenarios = [
            ("GET /api/pay/{token}", lambda: session.get(f"{gateway}/api/pay/{token}", timeout=10)),
            ("GET /pay/{token}", lambda: session.get(f"{gateway}/pay/{token}", timeout=10)),
        ]
        for name, call in scenarios:
            assert call().status_code == 200  # warm
            stack.proxy.reset_counts()
            call()
            ddb = stack.proxy.total("dynamodb")
            samples = []
            for _ in range(100):
                began = time.perf_counter()
                call()
                samples.append((time.perf_counter() - began) * 1000)
            samples.sort()
            results.append({"route": name, "dynamodb_requests": ddb, "p50_ms": samples[49], "p95_ms": samples[94]})
        results.append(card_submit_route(stack))
        results.extend(echeck_routes(stack))
        results.append(stream_batch(stack))
    return results


def stream_batch(stack: Any, payments: int = 50) -> dict[str, Any]:
    """confirmation_email on one batch of 100 stream records: 50 card payments, each reserved (an
    INSERT that sends nothing) then settled (a MODIFY that sends a client and a firm email).

    The poller reads the stream from DynamoDB Local directly, so the counts are the function's own requests.
    """
    from tests.support.factories import card_payment, create_billed

    billed = create_billed(stack.ledger, amounts=(payments * 1_000,))
    stack.poller.drain()
    stack.poller.pause()
    try:
        for _ in range(payments):
            payment = card_payment(billed, 1_000)
            assert stack.ledger.reserve(payment)
            assert stack.ledger.settle(payment)
        sent_before = len(stack.outbox.list_messages())
        stack.proxy.reset_counts()
        began = time.perf_counter()
        stack.poller.drain(timeout=300)
        elapsed = (time.perf_counter() - began) * 1000
        emails = len(stack.outbox.list_messages()) - sent_before
    finally:
        stack.poller.resume()
    assert emails == 2 * payments, f"{emails} emails for {payments} payments"
    return {
        "route": "stream: 100 records",
        "dynamodb_requests": stack.proxy.total("dynamodb"),
        "ses_requests": stack.proxy.total("ses"),
        "emails": emails,
        "p50_ms": elapsed,
        "p95_ms": elapsed,
    }


def card_submit_route(stack: Any, payments: int = 40) -> dict[str, Any]:
    """POST .../card/submit: each sample is a fresh review submitted once (a submit is not repeatable).

    The emulator's webhooks are pointed nowhere meanwhile, so the counts are the submit's own.
    """
    from tests.support.card_stack import open_link, set_webhook_delivery

    link = open_link(stack, amounts=(payments * 1_000 + 1_000,))
    set_webhook_delivery(stack, enabled=False)
    stack.poller.pause()  # the confirmation emails' own requests are counted apart
    try:
        counts, samples = [], []
        for _ in range(payments + 1):
            review_id = link.review(amount=1_000).json()["review_id"]
            stack.proxy.reset_counts()
            began = time.perf_counter()
            answer = link.submit(review_id)
            samples.append((time.perf_counter() - began) * 1000)
            assert answer.json()["status"] == "succeeded", answer.text
            counts.append(stack.proxy.total("dynamodb"))
    finally:
        stack.poller.resume()
        set_webhook_delivery(stack, enabled=True)
    samples = sorted(samples[1:])  # the first one warms the function
    return {
        "route": "POST .../card/submit",
        "dynamodb_requests": max(counts),
        "p50_ms": samples[len(samples) // 2],
        "p95_ms": samples[int(len(samples) * 0.95) - 1],
    }


def echeck_routes(stack: Any, payments: int = 20) -> list[dict[str, Any]]:
    """The eCheck steps (link token, exchange, review, submit), each sample a fresh client path.

    Plaid Link itself (the bank sign-in) is driven between the samples and not timed.
    """
    from tests.support.card_stack import set_webhook_delivery
    from tests.support.echeck_stack import drive_link, open_echeck_link

    link = open_echeck_link(stack, amounts=(payments * 1_000 + 1_000,), firm_settings={"echeck_daily_limit": 100})
    names = (
        "POST .../echeck/link-token",
        "POST .../echeck/exchange",
        "POST .../echeck/review",
        "POST .../echeck/submit",
    )
    counts: dict[str, list[int]] = {n: [] for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}

    def timed(name: str, call: Any, *args: Any) -> Any:
        stack.proxy.reset_counts()
        began = time.perf_counter()
        answer = call(*args)
        samples[name].append((time.perf_counter() - began) * 1000)
        counts[name].append(stack.proxy.total("dynamodb"))
        assert answer.status_code == 200, answer.text
        return answer.json()

    set_webhook_delivery(stack, enabled=False)
    stack.poller.pause()  # the confirmation emails' own requests are counted apart
    try:
        for _ in range(payments + 1):
            token = timed(names[0], link.post_echeck, "link-token", {"holder_name": "Bench Client"})
            bank = drive_link(stack.urls["plaid"], token["link_token"], "ins_109508", "0000")
            connection = timed(names[1], link.exchange, bank)
            review = timed(names[2], link.review_echeck, connection["connection_id"], 1_000)
            timed(names[3], link.submit_echeck, review["review_id"])
    finally:
        stack.poller.resume()
        set_webhook_delivery(stack, enabled=True)
    rows = []
    for name in names:
        ordered = sorted(samples[name][1:])  # the first one warms the function
        rows.append(
            {
                "route": name,
                "dynamodb_requests": max(counts[name][1:]),
                "p50_ms": ordered[len(ordered) // 2],
                "p95_ms": ordered[int(len(ordered) * 0.95) - 1],
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    route_rows = routes()
    rows, baseline = cold_starts(args.runs)
    print(
        f"\nper route (local stack, warm, 100 requests)\n{'route':<32}{'DynamoDB req':>14}{'p50 ms':>10}{'p95 ms':>10}"
    )
    for r in route_rows:
        print(f"{r['route']:<32}{r['dynamodb_requests']:>14}{r['p50_ms']:>10.1f}{r['p95_ms']:>10.1f}")
    for r in route_rows:
        if "emails" in r:
            print(
                f"confirmation_email, one batch of 100 stream records ({r['emails']} emails, {r['p50_ms']:.0f} ms): "
                f"{r['dynamodb_requests'] / r['emails']:.2f} DynamoDB and {r['ses_requests'] / r['emails']:.2f} SES "
                "requests per email"
            )
    print(f"\ncold init (median of {args.runs} fresh processes; baseline boto3 + DynamoDB client = {baseline:.0f} ms)")
    print(f"{'function':<22}{'cold ms':>9}{'import ms':>11}{'ratio':>8}{'size MB':>9}  plaid (bundled / at init)")
    for r in rows:
        print(
            f"{r['function']:<22}{r['cold_ms']:>9.0f}{r['import_ms']:>11.0f}{r['ratio']:>8.2f}{r['size_mb']:>9.1f}  "
            f"{'yes' if r['plaid'] else 'no'} / {'yes' if r['plaid_at_init'] else 'no'}"
        )
    if args.json:
        print(json.dumps({"baseline_ms": baseline, "functions": rows, "routes": route_rows}, indent=2))
    worst = max(rows, key=lambda r: r["ratio"])
    print(f"\ncold-init ratio (worst function / baseline): {worst['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
