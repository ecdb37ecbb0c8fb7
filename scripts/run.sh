#!/usr/bin/env bash
# Runs Latch locally on the embedded SQLite default: the origin, and the edge on workerd in front
# of an app. Without --upstream the app is the bundled demo (the README's run command); with it,
# an app you already run. Builds what is stale, checks both configurations before saying ready,
# prints what the app needs, starts the origin again if it ends, and stops everything on Ctrl-C.
# State (database, secrets, KV) stays in the data directory, so a second run starts in seconds.
# `scripts/run.sh --help` for options.
set -euo pipefail
CALLER_DIR="$PWD"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true

usage() {
  cat <<'EOF'
Usage: scripts/run.sh [--upstream URL [route options]] [--port N] [--origin-port N] [--data-dir DIR]

Runs the origin (SQLite) and the edge (workerd) in front of an app, from any directory.
Without --upstream: the bundled demo app, at http://127.0.0.1:8787/.

  --upstream URL      your app, already running (e.g. http://127.0.0.1:3000)
  --public LIST       paths anyone may load, comma-separated: /exact or /prefix/*
                      (e.g. '/,/login,/static/*')
  --optional LIST     paths where a session is used if present
  --protected LIST    paths that need a session (what no list names follows --default)
  --default ROUTE     protected (the default), optional or public
  --login-url PATH    where a page load without a session is sent (must be public)
  --edge-var NAME=VALUE
                      any other edge variable (docs/configuration.md, "Edge"); repeatable
  --port N            the edge's port (default 8787; env LATCH_EDGE_PORT)
  --origin-port N     the origin's port (default 3567; env LATCH_ORIGIN_PORT)
  --data-dir DIR      database, secrets and KV (default .latch in the checkout; env
                      LATCH_DATA_DIR)
  -h, --help          this help

The origin reads any LATCH_* variable from the environment (docs/configuration.md, "Origin").
Cookies are set without Secure: the edge serves plain HTTP on 127.0.0.1.
If the origin ends (a crash, or killed to see what the edge does without it), it is started
again while the edge goes on serving; Ctrl-C stops everything.
EOF
}

say() { printf '\033[1mlatch:\033[0m %s\n' "$*"; }
fail() { printf 'latch: %s\n' "$*" >&2; exit 2; }

EDGE_PORT="${LATCH_EDGE_PORT:-8787}"
ORIGIN_PORT="${LATCH_ORIGIN_PORT:-3567}"
DEMO_PORT="${LATCH_DEMO_PORT:-8080}"
DATA_DIR="${LATCH_DATA_DIR:-$ROOT/.latch}"
UPSTREAM="" PUBLIC="" OPTIONAL="" PROTECTED="" DEFAULT="" LOGIN="" ROUTES_GIVEN=""
EDGE_VARS=()
while [ $# -gt 0 ]; do
  option="$1"
  case "$option" in
    -h|--help) usage; exit 0 ;;
    --upstream|--public|--optional|--protected|--default|--login-url|--edge-var|--port|--origin-port|--data-dir)
      [ $# -ge 2 ] || fail "$option needs a value (--help)"
      value="$2"; shift 2 ;;
    --*=*) set -- "${option%%=*}" "${option#*=}" "${@:2}"; continue ;;
    *) fail "unknown option $option (--help)" ;;
  esac
  case "$option" in
    --upstream) UPSTREAM="$value" ;;
    --public) PUBLIC="$value"; ROUTES_GIVEN=1 ;;
    --optional) OPTIONAL="$value"; ROUTES_GIVEN=1 ;;
    --protected) PROTECTED="$value"; ROUTES_GIVEN=1 ;;
    --default) DEFAULT="$value"; ROUTES_GIVEN=1 ;;
    --login-url) LOGIN="$value"; ROUTES_GIVEN=1 ;;
    --edge-var)
      [[ "$value" =~ ^[A-Z][A-Z0-9_]*= ]] || fail "--edge-var takes NAME=VALUE, not '$value'"
      EDGE_VARS+=("$value") ;;
    --port) EDGE_PORT="$value" ;;
    --origin-port) ORIGIN_PORT="$value" ;;
    --data-dir) DATA_DIR="$value" ;;
  esac
done
for port in "$EDGE_PORT" "$ORIGIN_PORT"; do
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || fail "'$port' is not a port"
done
[ "$EDGE_PORT" != "$ORIGIN_PORT" ] || fail "the edge and the origin cannot share port $EDGE_PORT"
[ -z "$ROUTES_GIVEN" ] || [ -n "$UPSTREAM" ] || fail "route options are for --upstream (the demo has its own)"
case "$UPSTREAM" in
  */127.0.0.1:"$EDGE_PORT"|*/127.0.0.1:"$EDGE_PORT"/*|*/localhost:"$EDGE_PORT"|*/localhost:"$EDGE_PORT"/*)
    fail "--upstream $UPSTREAM is the edge's own address: the edge would forward to itself" ;;
esac
# A relative --data-dir is the caller's, not the checkout's.
case "$DATA_DIR" in /*) ;; *) DATA_DIR="$CALLER_DIR/$DATA_DIR" ;; esac
cd "$ROOT"

port_taken() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; }
for port in "$EDGE_PORT" "$ORIGIN_PORT"; do
  ! port_taken "$port" || fail "something already answers on port $port (another run?); pick another with --port/--origin-port"
done

say "[1/4] checking tools"
scripts/bootstrap.sh --for run
packages=(-p latch-origin -p latch-cli)
[ -n "$UPSTREAM" ] || packages+=(-p latch-demo)
say "[2/4] building ${packages[*]//-p /}"
cargo build "${packages[@]}"
say "[3/4] building the edge worker"
scripts/build-edge.sh
[ -n "$UPSTREAM" ] || scripts/build-demo.sh

# Secrets, made once and kept in the data directory (a missing one is added, so an older
# run.env keeps working).
mkdir -p "$DATA_DIR"
(
  umask 077
  env_file="$DATA_DIR/run.env"
  touch "$env_file"
  secret() { head -c 32 /dev/urandom | base64 | tr -d '=+/' ; }
  seed() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' ; }
  add() { grep -q "^$1=" "$env_file" || echo "$1=$2" >> "$env_file"; }
  add LATCH_MASTER_KEY "$(head -c 32 /dev/urandom | base64)"
  add LATCH_API_KEY "$(secret)"
  add LATCH_EDGE_SECRET "$(secret)"
  # The edge's Ed25519 key for identity assertions (apps check them with its public half).
  add LATCH_ASSERTION_KEYS "$(seed)"
)
set -a; . "$DATA_DIR/run.env"; set +a

pids=()
stop() {
  trap - EXIT INT TERM
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 130' INT TERM

# Waits until $2 answers, or fails as soon as process $1 has exited (its error is above).
wait_for() {
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$2" && return 0
    kill -0 "$1" 2>/dev/null || { echo "latch: $3 did not start (see above)" >&2; exit 1; }
    sleep 0.1
  done
  echo "latch: $3 did not answer at $2" >&2; exit 1
}

EDGE_URL="http://127.0.0.1:$EDGE_PORT"
ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT"
say "[4/4] starting"
# The origin is pids[0]: the one process started again if it ends (below).
start_origin() {
  LATCH_LISTEN="127.0.0.1:$ORIGIN_PORT" LATCH_DATA_DIR="$DATA_DIR" LATCH_COOKIE_SECURE=false \
    LATCH_EDGE_URL="$EDGE_URL" LATCH_LOG="${LATCH_LOG:-warn,latch_origin=info}" \
    target/debug/latch-origin &
  pids[0]=$!
  origin_started=$SECONDS
  wait_for "${pids[0]}" "$ORIGIN_URL/healthz" "the origin"
}
start_origin

# The edge's variables: exported once, read by the check and by the worker alike.
export ORIGIN_URL EDGE_SECRET="$LATCH_EDGE_SECRET" ASSERTION_KEYS="$LATCH_ASSERTION_KEYS"
if [ -n "$UPSTREAM" ]; then
  export UPSTREAM_URL="$UPSTREAM" DEFAULT_ROUTE="${DEFAULT:-protected}" PUBLIC_PATHS="$PUBLIC" \
    OPTIONAL_PATHS="$OPTIONAL" PROTECTED_PATHS="$PROTECTED" LOGIN_URL="$LOGIN"
else
  DEMO_LISTEN="127.0.0.1:$DEMO_PORT" LATCH_ORIGIN_URL="$ORIGIN_URL" LATCH_EDGE_URL="$EDGE_URL" \
    target/debug/latch-demo &
  pids+=($!)
  wait_for "${pids[-1]}" "http://127.0.0.1:$DEMO_PORT/" "the demo app"
  export UPSTREAM_URL="http://127.0.0.1:$DEMO_PORT" DEFAULT_ROUTE=protected LOGIN_URL=/ \
    PUBLIC_PATHS="/, /index.html, /app.html, /app.js, /current.html, /style.css, /favicon.ico, /vendor/*, /login"
fi
for assignment in ${EDGE_VARS[@]+"${EDGE_VARS[@]}"}; do export "${assignment?}"; done

# The worker's own validation, on the variables it is about to get, and a look at the origin
# it will call: a mistake stops here, not on the first request.
target/debug/latch check-edge --probe-origin --probe-upstream || {
  echo "latch: the edge's configuration is refused (above); nothing was started" >&2; exit 2; }

EDGE_PORT="$EDGE_PORT" LATCH_DATA_DIR="$DATA_DIR" node scripts/serve-edge.mjs </dev/null &
pids+=($!)
wait_for "${pids[-1]}" "$EDGE_URL/.well-known/latch-assertion-jwks.json" "the edge"

echo
if [ -n "$UPSTREAM" ]; then
  audience="$(node -e 'const c = process.argv[1]; console.log(process.env.ASSERTION_AUDIENCE || c.replace(/\/+$/, ""))' "$UPSTREAM_URL")"
  say "ready: open $EDGE_URL/  (Latch in front of $UPSTREAM_URL; Ctrl-C stops)"
  say "your app verifies the x-latch-assertion header of each request (EdDSA JWT):"
  echo "        JWKS  $EDGE_URL/.well-known/latch-assertion-jwks.json"
  echo "        iss   ${ASSERTION_ISSUER:-latch-edge}"
  echo "        aud   $audience"
  echo "      it signs a user in with the x-latch-login response header and out with x-latch-logout."
  echo "      Recipes (Node, Python, Go): $ROOT/docs/app-integration.md, $ROOT/examples/"
else
  say "ready: open $EDGE_URL/   (Ctrl-C stops everything)"
fi
say "origin API on $ORIGIN_URL (API key in $DATA_DIR/run.env)"

# The origin may end (a crash, or killed to see what the edge does without it): the edge goes on
# serving what needs no database (public routes, sessions it has verified, until their access
# tokens expire), and the origin is started again, as a deployment's supervisor would. An
# origin that keeps ending as it starts, or anything else ending, stops everything.
quick_exits=0
while true; do
  wait -n "${pids[@]}" || true
  kill -0 "${pids[0]}" 2>/dev/null && break
  if (( SECONDS - origin_started < 5 )); then quick_exits=$((quick_exits + 1)); else quick_exits=0; fi
  if (( quick_exits >= 3 )); then
    echo "latch: the origin keeps ending as it starts (see above)" >&2
    exit 1
  fi
  say "the origin ended; the edge goes on serving what needs no database; starting the origin again"
  sleep 1
  start_origin
  say "the origin is back on $ORIGIN_URL"
done
exit 1
