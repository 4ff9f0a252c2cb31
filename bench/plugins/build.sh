#!/usr/bin/env bash
# Builds the benchmark plugins (release, wasm32-wasip1) and copies the modules into out/.
# Needs the wasm32-wasip1 target (scripts/setup-toolchains.sh installs it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${BENCH_PLUGINS_TARGET_DIR:-$here/target}"
cd "$here"
cargo build --release --locked "$@"
mkdir -p out
for p in headers body callout large tcp_count; do
    cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/bench_$p.wasm" "out/$p.wasm"
done
ls -l out/*.wasm | awk '{ printf "%10d  %s\n", $5, $9 }'
