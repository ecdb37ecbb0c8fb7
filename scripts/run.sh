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

# Secrets shared by the three processes, made once and kept in .latch/.
mkdir -p .latch
if [ ! -f .latch/run.env ]; then
  secret() { head -c 32 /dev/urandom | base64 | tr -d '=+/' ; }
  umask 077
  {
    echo "LATCH_MASTER_KEY=$(head -c 32 /dev/urandom | base64)"
    echo "LATCH_API_KEY=$(secret)"
    echo "LATCH_EDGE_SECRET=$(secret)"
    echo "LATCH_APP_SECRET=$(secret)"
  } > .latch/run.env
fi
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
  target/debug/latch-demo &
pids+=($!)
wait_for "http://127.0.0.1:$DEMO_PORT/" "the demo app"

ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT" UPSTREAM_URL="http://127.0.0.1:$DEMO_PORT" \
  EDGE_SECRET="$LATCH_EDGE_SECRET" APP_SECRET="$LATCH_APP_SECRET" \
  DEFAULT_ROUTE=protected PUBLIC_PATHS="/, /index.html, /app.html, /app.js, /style.css, /favicon.ico, /vendor/*, /login" \
  EDGE_PORT="$EDGE_PORT" node scripts/serve-edge.mjs </dev/null &
pids+=($!)
wait_for "http://127.0.0.1:$EDGE_PORT/" "the edge"

echo
say "open http://127.0.0.1:$EDGE_PORT/   (Ctrl-C stops everything)"
say "origin API on http://127.0.0.1:$ORIGIN_PORT (API key in .latch/run.env)"
wait -n "${pids[@]}"
