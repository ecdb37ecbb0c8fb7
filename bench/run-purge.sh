#!/usr/bin/env bash
# Create latency while expired sessions are purged, on the embedded SQLite (bench/purge).
#   bench/run-purge.sh [expired sessions, default 200000]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo run --quiet -p latch-purge-bench -- --expired "${1:-200000}"
