"""`make invoke FN=<function> EVENT=events/<file>.json`: run one handler against the local stack.

What `sam local invoke` does where a container runtime exists: load the event, run the function's
handler in-process with a Lambda context, print the answer as JSON. The handler talks to a running
`make dev` stack when there is one (found through ``.local/run/dev.json``), otherwise to a stack
started for this command on free ports (with the demo data seeded) and stopped afterwards.

``--all`` runs every ``events/*.json`` through its function (the file name starts with the
function's name) and exits non-zero unless each answers exactly what ``events/expected.json``
says (an HTTP status, or "ok" for a schedule or stream batch with no failed records); the webhook
event is signed at run time with the stack's webhook secret. The test script uses it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from local.template import ROOT, Template, load_template

Invoker = Callable[[str, Any], Any]


def function_for(event_file: Path, functions: list[str]) -> str:
    """The function an event file belongs to: the longest function name its file name starts with."""
    for name in sorted(functions, key=len, reverse=True):
        if event_file.stem == name or event_file.stem.startswith(name + "_"):
            return name
    raise SystemExit(f"{event_file.name}: no function matches its name (expected <function>_<case>.json)")


@contextlib.contextmanager
def local_stack(template: Template, seed: bool = True) -> Iterator[tuple[Invoker, str]]:
    """An invoker on the running `make dev` stack, or on a stack started for this command."""
    from local.stack import LocalStack, reset_firmpay_caches, running_dev_stack

    state = running_dev_stack()
    if state is not None:
        from local.gateway import FunctionRegistry
        from local.iam import install_caller_header

        install_caller_header()  # the dev stack's AWS proxy holds this handler to its role too
        saved = {key: os.environ.get(key) for key in state["env"]}
        os.environ.update(state["env"])
        reset_firmpay_caches()
        registry = FunctionRegistry(template)
        try:
            yield registry.invoke, f"the running `make dev` stack ({state['urls']['gateway']})"
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return
    with LocalStack(name="invoke", poller=False, template=template) as stack:
        if seed:
            with contextlib.suppress(ImportError):
                from local.seed import seed_demo

                seed_demo(stack)
        yield stack.invoke, f"a stack started for this command ({stack.startup_seconds:.1f} s)"


def _status(answer: Any) -> int | None:
    if isinstance(answer, dict) and "statusCode" in answer:
        with contextlib.suppress(TypeError, ValueError):
            return int(answer["statusCode"])
    return None


EXPECTED = ROOT / "events" / "expected.json"
# An answer without a statusCode (a schedule, a stream batch): no exception, no failed records.
NO_STATUS = "ok"


def expected_answers(manifest: Path = EXPECTED) -> dict[str, int | str]:
    """What each event file must answer (``events/expected.json``: file name -> status or "ok")."""
    listed: dict[str, int | str] = json.loads(manifest.read_text(encoding="utf-8"))
    return {name: answer for name, answer in listed.items() if not name.startswith("_")}


def event_files() -> list[Path]:
    """The sample events (every ``events/*.json`` but the manifest)."""
    return sorted(p for p in (ROOT / "events").glob("*.json") if p != EXPECTED)


def signed_webhook(event: dict[str, Any], secret: str, now: int | None = None) -> dict[str, Any]:
    """The webhook event with a ``Stripe-Signature`` made now with ``secret``, as Stripe signs it, so
    it reaches the handler's logic instead of its signature check (a sample file cannot hold a
    signature that is still within the 300 s tolerance)."""
    import stripe

    header = stripe.WebhookSignature.generate_signature_header(
        event.get("body") or "", secret, int(time.time()) if now is None else now
    )
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "stripe-signature"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "stripe-signature"}
    return {
        **event,
        "headers": {**headers, "Stripe-Signature": header},
        "multiValueHeaders": {**multi, "Stripe-Signature": [header]},
    }


def _outcome(answer: Any) -> int | str:
    status = _status(answer)
    if status is not None:
        return status
    return "failed records" if isinstance(answer, dict) and answer.get("batchItemFailures") else NO_STATUS


def run_all(
    invoke: Invoker,
    functions: list[str],
    events: list[Path],
    expected: dict[str, int | str] | None = None,
    webhook_secret: str | None = None,
) -> int:
    """Every event through its function; the number of failures: an exception, an event without an
    expected answer, or any answer other than the expected one. Webhook events are signed at run
    time with ``webhook_secret`` (the stack's)."""
    from local.stack import WEBHOOK_SECRET

    expected = expected_answers() if expected is None else expected
    secret = webhook_secret or WEBHOOK_SECRET
    failures = 0
    unlisted = sorted(set(expected) - {e.name for e in events})
    for name in unlisted:
        print(f"FAIL {name}: in events/expected.json but not in events/", flush=True)
    for event_file in events:
        function = function_for(event_file, functions)
        if event_file.name not in expected:
            print(f"FAIL {event_file.name} -> {function}: no expected answer in events/expected.json", flush=True)
            failures += 1
            continue
        event = json.loads(event_file.read_text(encoding="utf-8"))
        if function == "stripe_webhook":
            event = signed_webhook(event, secret)
        started = time.perf_counter()
        try:
            answer = invoke(function, event)
        except Exception as error:
            print(f"FAIL {event_file.name} -> {function}: {type(error).__name__}: {error}", flush=True)
            failures += 1
            continue
        ms = (time.perf_counter() - started) * 1000
        got, want = _outcome(answer), expected[event_file.name]
        ok = got == want
        failures += not ok
        shown = f"{got}" if ok else f"{got}, expected {want}: {str(answer)[:300]}"
        print(f"{'ok  ' if ok else 'FAIL'} {event_file.name} -> {function}: {shown} ({ms:.0f} ms)", flush=True)
    failures += len(unlisted)
    print(f"{len(events) - failures} passed, {failures} failed", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", nargs="?", help="function directory (pay_link) or logical id (PayLinkFunction)")
    parser.add_argument("event", nargs="?", help="event JSON file (events/<function>_<case>.json)")
    parser.add_argument("--all", action="store_true", help="run every events/*.json through its function")
    parser.add_argument("--no-seed", action="store_true", help="do not seed demo data into a stack started here")
    args = parser.parse_args(argv)
    template = load_template()
    functions = sorted(template.specs)
    if not args.all:
        if not args.function or not args.event:
            parser.error(f"usage: make invoke FN=<{'|'.join(functions)}> EVENT=events/<file>.json")
        try:
            name = template.function(args.function).name
        except KeyError as error:
            parser.error(str(error))
        event_path = Path(args.event)
        if not event_path.is_file():
            parser.error(f"no such event file: {event_path}")
        event = json.loads(event_path.read_text(encoding="utf-8"))
    with local_stack(template, seed=not args.no_seed) as (invoke, where):
        print(f"using {where}", file=sys.stderr, flush=True)
        if args.all:
            events = event_files()
            return 1 if run_all(invoke, functions, events) else 0
        answer = invoke(name, event)
        print(json.dumps(answer, indent=2, default=str))
        return 0


if __name__ == "__main__":
    sys.exit(main())
