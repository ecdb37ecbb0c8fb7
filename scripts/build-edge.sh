#!/usr/bin/env bash
# Builds the edge worker fully offline into edge/build/: the Rust crate to WASM, wasm-bindgen's
# module glue (with its reset-state function, which the entry uses to rebuild a crashed
# instance), wasm-opt for size, and esbuild to bundle the JS entry (edge/js/entry.mjs) with the
# glue. Used by wrangler.toml's [build] command, scripts/run.sh, the tests and the benchmarks.
# Skips the build when nothing changed. For profiling and A/B runs (bench/edge/): EDGE_OUT=dir
# builds into dir instead (replacing it whole), EDGE_KEEP_NAMES=1 keeps the WASM functions' names.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
# The CLI must equal the wasm-bindgen in Cargo.lock (scripts/bootstrap.sh installs it).
WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
# npm's binaryen and esbuild: the packages install the binary for this platform.
WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}"
ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/.bin/esbuild}"
cd "$ROOT"
out="${EDGE_OUT:-edge/build}"
# Which kind of build the directory holds: one that kept the names is bigger, and is never
# taken for the real one (or the other way round).
mode=release
names=()
if [ -n "${EDGE_KEEP_NAMES:-}" ]; then
  mode=names
  names=(-g)
  export CARGO_PROFILE_RELEASE_STRIP=none
fi
if [ -f "$out/index.js" ] && [ -f "$out/glue_bg.wasm" ] && [ "$(cat "$out/.build-mode" 2>/dev/null)" = "$mode" ] && \
   [ -z "$(find edge/src edge/js shared/src edge/Cargo.toml shared/Cargo.toml Cargo.toml Cargo.lock scripts/build-edge.sh -newer "$out/index.js" -print -quit)" ]; then
  echo "build-edge: $out is up to date"
  exit 0
fi
# The directory is replaced whole: never one that holds anything but an earlier build.
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/index.js" ]; then
  echo "build-edge: $out holds something other than an edge build: not replacing it" >&2
  exit 1
fi
cargo build --quiet --release --target wasm32-unknown-unknown -p latch-edge
rm -rf "$out"
"$WASM_BINDGEN_BIN" target/wasm32-unknown-unknown/release/latch_edge.wasm --out-dir "$out" \
  --out-name glue --target module --no-typescript --experimental-reset-state-function
# -O3: as small as -Oz here (about 240 KB gzipped), and tuned for speed: the verify path.
"$WASM_OPT_BIN" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "${names[@]}" "$out/glue_bg.wasm" -o "$out/glue_bg.wasm"
# workerd imports a .wasm module as a compiled WebAssembly.Module: the plain import form.
sed -i 's/^import source \([A-Za-z_$]*\) from/import \1 from/' "$out/glue.js"
"$ESBUILD_BIN" edge/js/entry.mjs --bundle --format=esm --log-level=warning \
  --alias:latch-edge-glue="$(cd "$out" && pwd)/glue.js" \
  --external:./glue_bg.wasm --external:'cloudflare:*' --outfile="$out/index.js"
rm -rf "$out/glue.js" "$out/snippets"
echo "$mode" > "$out/.build-mode"
touch "$out/index.js"
