"""`make invoke FN=<function> EVENT=events/<file>.json`: run one handler against the local stack.

What `sam local invoke` does where a container runtime exists. With `--all`, every event in
`events/` runs through its function (the file name starts with the function's name), and the
command fails on an exception or a 5xx answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from local.stack import LocalStack
from local.template import ROOT, load_template


def function_for(event_file: Path, functions: list[str]) -> str:
    for name in sorted(functions, key=len, reverse=True):
        if event_file.stem.startswith(name):
            return name
    raise SystemExit(f"{event_file.name}: no function matches its name (expected <function>_<case>.json)")


def run(stack: LocalStack, function: str, event_file: Path) -> Any:
    event = json.loads(event_file.read_text(encoding="utf-8"))
    return stack.invoke(function, event)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", nargs="?")
    parser.add_argument("event", nargs="?")
    parser.add_argument("--all", action="store_true", help="run every events/*.json through its function")
    args = parser.parse_args()
    functions = list(load_template().functions.values())
    with LocalStack(name="invoke") as stack:
        from local.seed import seed_demo

        seed_demo(stack)
        if not args.all:
            if args.function not in functions or not args.event:
                raise SystemExit(f"usage: make invoke FN=<{'|'.join(sorted(functions))}> EVENT=events/<file>.json")
            print(json.dumps(run(stack, args.function, Path(args.event)), indent=2, default=str))
            return 0
        failures = 0
        for event_file in sorted((ROOT / "events").glob("*.json")):
            function = function_for(event_file, functions)
            try:
                answer = run(stack, function, event_file)
            except Exception as error:
                print(f"FAIL {event_file.name} -> {function}: {type(error).__name__}: {error}")
                failures += 1
                continue
            status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
            if status == 501 and "not_implemented" in str(answer.get("body")):
                print(f"skip {event_file.name} -> {function}: not implemented yet")
                continue
            ok = int(status) < 500
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {event_file.name} -> {function}: {status}")
        print(f"{len(list((ROOT / 'events').glob('*.json'))) - failures} passed, {failures} failed")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
