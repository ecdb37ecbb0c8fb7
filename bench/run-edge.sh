#!/usr/bin/env bash
# Edge benchmark (see bench/edge/bench.mjs): builds the worker and the origin, then measures.
#   bench/run-edge.sh [seconds per run, default 10] [connections, default 8] [rounds, default 5]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh --for bench >/dev/null
cargo build --quiet -p latch-origin --bin latch-origin
scripts/build-edge.sh >/dev/null
node bench/edge/bench.mjs "${1:-10}" "${2:-8}" "${3:-5}"
