#!/usr/bin/env bash
# Runs the whole Latch stack locally on the embedded SQLite default: the README's run command.
#   origin (axum, SQLite in .latch/)  ←  edge (Rust/WASM on workerd)  →  demo app (axum)
# Builds what is needed (progress shown), prints the one URL to open, and stops everything
# cleanly on Ctrl-C. A second run reuses the builds, the database and the secrets in .latch/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
EDGE_PORT="${LATCH_EDGE_PORT:-8787}"
ORIGIN_PORT="${LATCH_ORIGIN_PORT:-3567}"
DEMO_PORT="${LATCH_DEMO_PORT:-8080}"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true

say() { printf '\033[1mlatch:\033[0m %s\n' "$*"; }

say "[1/4] checking tools"
scripts/bootstrap.sh --for run
say "[2/4] building the origin and the demo app"
cargo build -p latch-origin -p latch-demo
say "[3/4] building the edge worker"
scripts/build-edge.sh
scripts/build-demo.sh

# Secrets of the three processes, made once and kept in .latch/ (a missing one is added, so an
# older .latch/run.env keeps working).
mkdir -p .latch
(
  umask 077
  touch .latch/run.env
  secret() { head -c 32 /dev/urandom | base64 | tr -d '=+/' ; }
  seed() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' ; }
  add() { grep -q "^$1=" .latch/run.env || echo "$1=$2" >> .latch/run.env; }
  add LATCH_MASTER_KEY "$(head -c 32 /dev/urandom | base64)"
  add LATCH_API_KEY "$(secret)"
  add LATCH_EDGE_SECRET "$(secret)"
  # The edge's Ed25519 key for identity assertions (the demo checks them with its public half).
  add LATCH_ASSERTION_KEYS "$(seed)"
)
set -a; . .latch/run.env; set +a

pids=()
stop() {
  trap - EXIT INT TERM
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

wait_for() {
  for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "latch: $2 did not start" >&2; exit 1
}

say "[4/4] starting"
LATCH_LISTEN="127.0.0.1:$ORIGIN_PORT" LATCH_DATA_DIR=.latch LATCH_COOKIE_SECURE=false \
  LATCH_EDGE_URL="http://127.0.0.1:$EDGE_PORT" LATCH_LOG="${LATCH_LOG:-warn,latch_origin=info}" \
  target/debug/latch-origin &
pids+=($!)
wait_for "http://127.0.0.1:$ORIGIN_PORT/healthz" "the origin"

DEMO_LISTEN="127.0.0.1:$DEMO_PORT" LATCH_ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT" \
  LATCH_EDGE_URL="http://127.0.0.1:$EDGE_PORT" target/debug/latch-demo &
pids+=($!)
wait_for "http://127.0.0.1:$DEMO_PORT/" "the demo app"

ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT" UPSTREAM_URL="http://127.0.0.1:$DEMO_PORT" \
  EDGE_SECRET="$LATCH_EDGE_SECRET" ASSERTION_KEYS="$LATCH_ASSERTION_KEYS" \
  DEFAULT_ROUTE=protected PUBLIC_PATHS="/, /index.html, /app.html, /app.js, /style.css, /favicon.ico, /vendor/*, /login" \
  LOGIN_URL=/ \
  EDGE_PORT="$EDGE_PORT" node scripts/serve-edge.mjs </dev/null &
pids+=($!)
wait_for "http://127.0.0.1:$EDGE_PORT/" "the edge"

echo
say "open http://127.0.0.1:$EDGE_PORT/   (Ctrl-C stops everything)"
say "origin API on http://127.0.0.1:$ORIGIN_PORT (API key in .latch/run.env)"
wait -n "${pids[@]}"
