#!/usr/bin/env bash
# Verify cost in V8: builds bench/verify-wasm like the edge (release, wasm-opt -Oz) and runs it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
scripts/bootstrap.sh --for run >/dev/null
cargo build --quiet --release --target wasm32-unknown-unknown -p latch-verify-wasm
wasm-bindgen --target nodejs --out-dir bench/verify-wasm/pkg \
  target/wasm32-unknown-unknown/release/latch_verify_wasm.wasm
node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals \
  bench/verify-wasm/pkg/latch_verify_wasm_bg.wasm -o bench/verify-wasm/pkg/latch_verify_wasm_bg.wasm
for _ in 1 2 3; do node bench/verify-wasm/bench.mjs 3000; done
