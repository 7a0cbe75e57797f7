"""`make invoke FN=<function> EVENT=events/<file>.json`: run one handler against the local stack.

What `sam local invoke` does where a container runtime exists: load the event, run the function's
handler in-process with a Lambda context, print the answer as JSON. The handler talks to a running
`make dev` stack when there is one (found through ``.local/run/dev.json``), otherwise to a stack
started for this command on free ports (with the demo data seeded) and stopped afterwards.

``--all`` runs every ``events/*.json`` through its function (the file name starts with the
function's name) and exits non-zero on an exception, a 5xx answer or a stream batch reporting
failed records; the test script uses it.
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


def run_all(invoke: Invoker, functions: list[str], events: list[Path]) -> int:
    """Every event through its function; the number of failures (exception or 5xx)."""
    failures = 0
    for event_file in events:
        function = function_for(event_file, functions)
        started = time.perf_counter()
        try:
            answer = invoke(function, json.loads(event_file.read_text(encoding="utf-8")))
        except Exception as error:
            print(f"FAIL {event_file.name} -> {function}: {type(error).__name__}: {error}", flush=True)
            failures += 1
            continue
        ms = (time.perf_counter() - started) * 1000
        status = _status(answer)
        if status == 501 and "not_implemented" in str(answer.get("body")):
            print(f"skip {event_file.name} -> {function}: not implemented yet", flush=True)
            continue
        ok = (status is None or status < 500) and not (isinstance(answer, dict) and answer.get("batchItemFailures"))
        failures += not ok
        shown = status if status is not None else "ok"
        print(f"{'ok  ' if ok else 'FAIL'} {event_file.name} -> {function}: {shown} ({ms:.0f} ms)", flush=True)
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
            events = sorted((ROOT / "events").glob("*.json"))
            return 1 if run_all(invoke, functions, events) else 0
        answer = invoke(name, event)
        print(json.dumps(answer, indent=2, default=str))
        return 0


if __name__ == "__main__":
    sys.exit(main())
