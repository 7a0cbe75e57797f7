#!/usr/bin/env bash
# Every check CI runs: lint, types, template, unit, integration, events, browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 PYTHONDONTWRITEBYTECODE=1
PY=.venv/bin/python
started=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }

step "ruff, mypy (strict on layers/, functions/); the template checks alongside"
template_log="$(mktemp)"
scripts/check_template.sh >"$template_log" 2>&1 &
template_pid=$!
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy layers/firmpay/firmpay functions/*/app.py
step "template: cfn-lint, sam validate --lint, sam build"
if ! wait "$template_pid"; then cat "$template_log"; rm -f "$template_log"; exit 1; fi
cat "$template_log"; rm -f "$template_log"

step "the local stack's own tests (alone: they count processes and stream records)"
$PY -m pytest tests/integration/test_local_stack.py -q -p no:cacheprovider

step "unit and integration tests, three workers (each with its own local stack; much of their time is spent waiting on moto and the emulators)"
$PY -m pytest tests/unit tests/integration -q -p no:cacheprovider -n 3 --dist loadfile \
  --ignore tests/integration/test_local_stack.py --ignore tests/integration/test_fuzz_api.py --durations=15

step "fuzzing the HTTP API (schemathesis; one process: its last tests add up what every operation answered)"
$PY -m pytest tests/integration/test_fuzz_api.py -q -p no:cacheprovider

step "every event in events/ through its handler"
$PY -m local.invoke --all

step "browser tests (Debian chromium)"
$PY -m pytest tests/e2e -q -p no:cacheprovider

printf '\nall checks passed in %ss\n' "$(( $(date +%s) - started ))"
