#!/usr/bin/env bash
# Template checks, one line per step: cfn-lint, `sam validate --lint`, then `sam build` without a
# container (python3.13 from .python-version; sam fetches the arm64 wheels) into a temporary
# directory that is removed on exit, and a look at the build's native code (it must be aarch64).
#
# Reruns reuse the previous build's downloaded dependencies (sam's build graph and wheels, kept in
# .aws-sam/check-template/, apart from any other build's), so only a changed requirements.txt
# downloads again. CI=true, or CHECK_TEMPLATE_CLEAN=1, builds everything from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
sam="$root/.sam-venv/bin/sam"
export SAM_CLI_TELEMETRY=0

work="$(mktemp -d "${TMPDIR:-/tmp}/firmpay-template.XXXXXX")"
trap 'rm -rf "$work"' EXIT

now_ms() { date +%s%3N; }
started=$(now_ms)

# step NAME COMMAND...: run it quietly; one line with its time, or its output if it fails.
step() {
  local name=$1 began
  shift
  began=$(now_ms)
  if ! "$@" >"$work/step.log" 2>&1; then
    echo "$name: FAILED after $(seconds_since "$began")s"
    cat "$work/step.log"
    exit 1
  fi
  echo "$name: ok ($(seconds_since "$began")s)"
}

seconds_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

build() {
  # sam writes its build graph (build.toml) next to the build directory: build into $work/build.
  local args=(build --template-file "$root/template.yaml" --build-dir "$work/build" --parallel)
  if [[ "${CI:-}" == "true" || -n "${CHECK_TEMPLATE_CLEAN:-}" ]]; then
    "$sam" "${args[@]}" --no-cached
    return
  fi
  local state="$root/.aws-sam/check-template"
  mkdir -p "$state"
  if command -v flock >/dev/null; then # concurrent runs take turns with the shared state
    exec 9>"$state/lock"
    flock 9
  fi
  if [[ -f "$state/build.toml" ]]; then cp "$state/build.toml" "$work/build.toml"; fi
  # From inside the state directory, sam keeps the dependencies in its own .aws-sam/deps (and
  # pyenv still finds the repository's .python-version above it).
  (cd "$state" && "$sam" "${args[@]}" --cached --cache-dir "$state/cache")
  cp "$work/build.toml" "$state/build.toml"
}

# The layers carry compiled extensions (pydantic-core, markupsafe, ...) and Lambda runs them on
# arm64: every ELF file of the build must be for AArch64 (e_machine 0xb7 at offset 18).
native_code_is_arm64() {
  local found=0 file machine
  while IFS= read -r -d '' file; do
    found=$((found + 1))
    machine=$(od -An -tx1 -j18 -N2 "$file" | tr -d ' \n')
    if [[ "$machine" != "b700" ]]; then
      echo "not built for arm64 (e_machine $machine): ${file#"$work/build/"}"
      return 1
    fi
  done < <(find "$work/build" -type f -name '*.so*' -print0)
  echo "$found shared objects, all AArch64"
  ((found > 0))
}

step "cfn-lint" "$root/.venv/bin/cfn-lint" template.yaml
step "sam validate --lint" "$sam" validate --lint --template-file template.yaml
step "sam build (python3.13, arm64, no container)" build
step "built extensions are aarch64" native_code_is_arm64
# The pages' languages come from compiled gettext catalogues (firmpay/i18n.py): the layer carries them.
step "the layer ships the pages' catalogues" test -s "$work/build/FirmpayLayer/python/firmpay/locale/fr_CA/LC_MESSAGES/messages.mo"
echo "template checks: ok in $(seconds_since "$started")s"
