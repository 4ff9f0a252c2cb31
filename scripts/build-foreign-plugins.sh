#!/usr/bin/env bash
# Builds the non-Rust test plugins and copies them to tests/plugins/out/:
#   tests/plugins-as  (AssemblyScript, @gcoredev/proxy-wasm-sdk-as) -> as_hostcalls.wasm
#   tests/plugins-go  (Go, raw Proxy-Wasm ABI, wasip1 reactor)      -> go_hostcalls.wasm
# Needs scripts/setup-toolchains.sh to have run. Quiet unless something fails; one line per step.
#
#   scripts/build-foreign-plugins.sh [--smoke]
#     --smoke  also run both plugins in the Node mock host (tests/plugins-as/smoke-host.mjs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/tests/plugins/out"
SMOKE=0
case "${1:-}" in
  "") ;;
  --smoke) SMOKE=1 ;;
  *)
    echo "usage: $0 [--smoke]" >&2
    exit 2
    ;;
esac

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

step() {
  local what="$1" start=$SECONDS rc
  shift
  # A subshell outside any `if`, so that `set -e` does apply inside the step's function.
  set +e
  (
    set -e
    "$@"
  ) >"$LOG" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    echo "build: $what: ok ($((SECONDS - start))s)"
  else
    echo "build: $what: FAILED (exit $rc)" >&2
    sed 's/^/    /' "$LOG" >&2
    exit "$rc"
  fi
}

# Same lookup as the setup script (it is the single source of truth for where go is).
if ! GO="$("$ROOT/scripts/setup-toolchains.sh" --locate-go)"; then
  echo "build: no usable go (>= 1.24) found: run scripts/setup-toolchains.sh first" >&2
  exit 1
fi
if [ ! -x "$ROOT/tests/plugins-as/node_modules/.bin/asc" ]; then
  echo "build: tests/plugins-as/node_modules is missing: run scripts/setup-toolchains.sh first" >&2
  exit 1
fi

build_as() {
  cd "$ROOT/tests/plugins-as"
  npm run --silent build
}

build_go() {
  cd "$ROOT/tests/plugins-go"
  # No dependencies and no network: never fetch a toolchain or a module.
  GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off GOFLAGS= \
    "$GO" build -trimpath -buildmode=c-shared -o build/go_hostcalls.wasm .
}

install_out() {
  mkdir -p "$OUT"
  cp "$ROOT/tests/plugins-as/build/as_hostcalls.wasm" "$ROOT/tests/plugins-go/build/go_hostcalls.wasm" "$OUT/"
}

smoke() {
  cd "$ROOT/tests/plugins-as"
  node --no-warnings smoke-host.mjs "$OUT/as_hostcalls.wasm" as
  node --no-warnings smoke-host.mjs "$OUT/go_hostcalls.wasm" go
}

step "assemblyscript plugin" build_as
step "go plugin ($("$GO" env GOVERSION))" build_go
step "copy to tests/plugins/out" install_out
if [ "$SMOKE" = 1 ]; then
  step "smoke test in node mock host" smoke
fi
for f in as_hostcalls.wasm go_hostcalls.wasm; do
  echo "build: $OUT/$f ($(stat -c %s "$OUT/$f") bytes)"
done
