#!/usr/bin/env bash
# Template checks: cfn-lint, `sam validate --lint`, and `sam build` (no container) into a
# temporary directory, removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT

started=$(date +%s)
.venv/bin/cfn-lint template.yaml
echo "cfn-lint: ok"
.sam-venv/bin/sam validate --lint --template-file template.yaml >/dev/null
echo "sam validate --lint: ok"
if ! .sam-venv/bin/sam build --template-file template.yaml --build-dir "$build_dir" --cache-dir .aws-sam/cache --cached >"$build_dir.log" 2>&1; then
  cat "$build_dir.log"; rm -f "$build_dir.log"; exit 1
fi
rm -f "$build_dir.log"
echo "sam build (python3.13, arm64, no container): ok"
echo "template checks took $(( $(date +%s) - started ))s"
