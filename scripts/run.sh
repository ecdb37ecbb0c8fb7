#!/usr/bin/env bash
# Runs Latch locally on the embedded SQLite default: the README's run command.
# Builds what is needed, starts the origin (and, once built, the edge on workerd), prints the
# URL to open, and stops everything cleanly on Ctrl-C. State lives in ./.latch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
ORIGIN_PORT="${LATCH_ORIGIN_PORT:-3567}"

say() { printf '\033[1mlatch:\033[0m %s\n' "$*"; }

scripts/bootstrap.sh --for run
say "building the origin (the first build takes a few minutes)"
cargo build -p latch-origin --bin latch-origin

pids=()
stop() {
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

LATCH_LISTEN="127.0.0.1:$ORIGIN_PORT" LATCH_COOKIE_SECURE="${LATCH_COOKIE_SECURE:-false}" \
  target/debug/latch-origin &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$ORIGIN_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
say "origin API:   http://127.0.0.1:$ORIGIN_PORT  (API key in .latch/api-key; try /openapi.json)"
say "press Ctrl-C to stop"
wait
