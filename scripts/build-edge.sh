#!/usr/bin/env bash
# Builds the edge worker (Rust → WASM) fully offline into edge/build/. Used by wrangler.toml's
# [build] command, by scripts/run.sh and by the tests. Skips the build when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
# worker-build would otherwise download these from the internet.
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild}"
cd "$ROOT/edge"
out=build/index_bg.wasm
if [ -f build/index.js ] && [ -f "$out" ] && \
   [ -z "$(find src ../shared/src Cargo.toml ../Cargo.lock -newer "$out" -print -quit)" ]; then
  echo "build-edge: edge/build is up to date"
  exit 0
fi
worker-build --release
# worker-build's own wasm-opt pass optimises for speed; a further -Oz pass keeps the bundle
# under Cloudflare's size budget without touching rustc's inlining.
"$WASM_OPT_BIN" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types build/index_bg.wasm -o build/index_bg.wasm
