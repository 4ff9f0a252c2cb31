#!/usr/bin/env bash
# Builds every test plugin (release, wasm32-wasip1) and copies the modules into out/.
# Works from any directory; extra arguments go to `cargo build` (e.g. --locked).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="$here/target"

# cargo picks up .cargo/config.toml (build.target = wasm32-wasip1) from the cwd.
cd "$here"
cargo build --release "$@"

out="$here/out"
# out/ is shared with the other plugin builders (AssemblyScript, Go): only overwrite
# our own modules, never clear the directory.
mkdir -p "$out"

shopt -s nullglob
modules=("$CARGO_TARGET_DIR"/wasm32-wasip1/release/*.wasm)
if [ ${#modules[@]} -eq 0 ]; then
    echo "build.sh: no .wasm produced in $CARGO_TARGET_DIR/wasm32-wasip1/release" >&2
    exit 1
fi
cp "${modules[@]}" "$out/"

echo "Rust plugins copied to $out:"
for m in "${modules[@]}"; do
    f="$out/$(basename "$m")"
    printf '%10d  %s\n' "$(wc -c <"$f")" "$(basename "$f")"
done
