#!/usr/bin/env bash
# make test-live: the payment scenarios against Stripe test mode and Plaid sandbox (docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for key in STRIPE_TEST_SECRET_KEY STRIPE_TEST_PUBLISHABLE_KEY PLAID_SANDBOX_CLIENT_ID PLAID_SANDBOX_SECRET; do
  [ -n "${!key:-}" ] || missing+=("$key")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "make test-live: skipped; set ${missing[*]} (Stripe test-mode keys, Plaid sandbox keys) to run it"
  exit 0
fi
export SAM_CLI_TELEMETRY=0 PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest tests/live -q -p no:cacheprovider -m live "$@"
