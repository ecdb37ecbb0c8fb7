#!/usr/bin/env bash
# Runs every test of Latch: the README's test command.
#   - installs what is missing (scripts/bootstrap.sh)
#   - builds the shared protocol crate for wasm32-unknown-unknown (what the edge runs)
#   - runs the Rust test suites against embedded SQLite and a real Postgres: $DATABASE_URL if
#     set, otherwise a throwaway cluster started here and removed afterwards
#   - builds the edge worker offline and runs its end-to-end suite on workerd, and the Node,
#     Python and Go examples (examples/) behind it
#   - runs the demo app behind the edge in headless Chromium (screenshots: test-artifacts/),
#     today's SuperTokens SDKs (supertokens-website 20.1.6, supertokens-web-js 0.16.0) beside
#     4.2.0 on one deployment, and
#     the run command (scripts/run.sh --upstream) in front of a stand-in app, in Chromium too;
#     `latch check-edge` against a real origin and on wrangler.toml's production template
#   - builds the origin's container image (scripts/build-image.sh, podman) and checks it
#   - builds the fuzz targets
#   - lints: clippy with warnings as errors (native and the edge's wasm32), and
#     `wrangler deploy --dry-run` of the committed wrangler.toml (offline: what Cloudflare would
#     refuse to deploy)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

step "bootstrap"
scripts/bootstrap.sh --for test

step "shared builds for wasm32-unknown-unknown"
cargo build --quiet -p latch-shared --target wasm32-unknown-unknown

PG_DIR=""
cleanup() { [ -n "$PG_DIR" ] && scripts/postgres.sh stop "$PG_DIR"; }
trap cleanup EXIT
if [ -z "${DATABASE_URL:-}" ]; then
  step "throwaway Postgres"
  PG_DIR="$(mktemp -d /tmp/latch-pg.XXXXXX)"
  DATABASE_URL="$(scripts/postgres.sh start "$PG_DIR")"
  export LATCH_TEST_PG_DIR="$PG_DIR"
  echo "started $DATABASE_URL"
fi
# The origin's tests create one database per test from this admin URL.
export LATCH_TEST_POSTGRES_URL="$DATABASE_URL"
export LATCH_REQUIRE_POSTGRES=1
unset DATABASE_URL

step "Rust tests (shared, edge units, origin on SQLite and Postgres)"
cargo test --workspace

step "end to end: edge on workerd, origin on SQLite, stand-in app; the Node, Python and Go examples; demo app in Chromium; the run command in front of a stand-in app, and the deploy checks"
cargo build --quiet -p latch-origin -p latch-demo -p latch-cli
scripts/build-edge.sh
scripts/build-demo.sh
node --test tests/edge/ tests/examples/ tests/browser/ tests/run/

step "the origin's container image: static musl binary, FROM scratch, built with podman; inspected, and its binary run"
scripts/build-image.sh latch-origin:test
node --test tests/image/

step "fuzz targets build"
cargo build --quiet --manifest-path fuzz/Cargo.toml --bins

step "lints: clippy, and wrangler's offline deploy check"
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet -p latch-edge --target wasm32-unknown-unknown -- -D warnings
DRY_RUN_DIR="$(mktemp -d)"
WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true \
  node_modules/.bin/wrangler deploy --dry-run --outdir "$DRY_RUN_DIR" </dev/null >/dev/null
rm -rf "$DRY_RUN_DIR"

echo
echo "all tests passed"
