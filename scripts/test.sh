#!/usr/bin/env bash
# Every check CI runs: lint, types, template, unit, integration, events, browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0 PYTHONDONTWRITEBYTECODE=1
PY=.venv/bin/python
started=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }

step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

step "mypy (strict on layers/, functions/)"
.venv/bin/mypy layers/firmpay/firmpay functions/*/app.py

step "template: cfn-lint, sam validate --lint, sam build"
scripts/check_template.sh

step "unit and integration tests"
$PY -m pytest tests/unit tests/integration -q -p no:cacheprovider

step "every event in events/ through its handler"
$PY -m local.invoke --all

step "browser tests (Debian chromium)"
$PY -m pytest tests/e2e -q -p no:cacheprovider

printf '\nall checks passed in %ss\n' "$(( $(date +%s) - started ))"
