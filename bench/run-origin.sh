#!/usr/bin/env bash
# Origin benchmark: Latch's origin against the seed library (supertokens-node-postgres-ref-jwt
# 4.0.0 + express + pg) on the same throwaway Postgres, in the same run, interleaved, so the
# ratios hold on a noisy machine. Results: bench/results/origin-<timestamp>.json and a table.
#   bench/run-origin.sh [seconds per run, default 10] [concurrency, default 16] [rounds, default 2]
# With BASELINE_REV=<git revision>, that revision's origin runs too, interleaved, and each
# operation's throughput is also given against it (a change's own cost). Latch's creates carry
# a device report and a client address, as the edge sends them; the baseline's do not.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_RUN="${1:-10}"
CONCURRENCY="${2:-16}"
ROUNDS="${3:-2}"
API_KEY="bench-api-key-0123456789"
mkdir -p bench/results
OUT="bench/results/origin-$(date -u +%Y%m%dT%H%M%SZ).json"

scripts/bootstrap.sh --for bench >/dev/null
(cd bench/seed && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
cargo build --quiet --release -p latch-origin -p latch-loadgen
BASELINE_BIN=""
if [ -n "${BASELINE_REV:-}" ]; then
  BASELINE_BIN="$ROOT/target/baseline/release/latch-origin"
  commit="$(git rev-parse "$BASELINE_REV^{commit}")"
  # Built once per revision: a worktree's new path would make cargo build it all again.
  if [ "$(cat "$ROOT/target/baseline/REV" 2>/dev/null)" != "$commit" ] || [ ! -x "$BASELINE_BIN" ]; then
    BASELINE_TREE="$(mktemp -d /tmp/latch-bench-baseline.XXXXXX)"
    git worktree add --quiet --detach "$BASELINE_TREE" "$commit"
    (cd "$BASELINE_TREE" && cargo build --quiet --release -p latch-origin --target-dir "$ROOT/target/baseline")
    git worktree remove --force "$BASELINE_TREE"
    echo "$commit" > "$ROOT/target/baseline/REV"
  fi
fi

PG_DIR="$(mktemp -d /tmp/latch-bench-pg.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/postgres.sh stop "$PG_DIR"
}
trap cleanup EXIT
ADMIN_URL="$(scripts/postgres.sh start "$PG_DIR")"
BASE_URL="${ADMIN_URL%/*}"
psql -q "$ADMIN_URL" -c "CREATE DATABASE latch" -c "CREATE DATABASE seed" -c "CREATE DATABASE baseline"

LATCH_PORT=3590 SEED_PORT=4590 BASELINE_PORT=3591
# Each worker refreshes its own session back to back, far beyond any browser: rate limits high
# enough never to refuse, so their bookkeeping is measured while the seed's throughput is met.
start_origin() { # binary, database, port
  DATABASE_URL="$BASE_URL/$2" LATCH_LISTEN="127.0.0.1:$3" LATCH_API_KEY="$API_KEY" \
    LATCH_EDGE_SECRET="bench-edge-secret-0123456789" LATCH_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" \
    LATCH_MAX_CONNECTIONS="$CONCURRENCY" LATCH_LOG=warn LATCH_NO_EDGE=true \
    LATCH_RATE_LIMIT_SESSION_PER_MINUTE=100000 LATCH_RATE_LIMIT_SESSION_BURST=100000 \
    LATCH_RATE_LIMIT_ADDRESS_PER_MINUTE=0 LATCH_RATE_LIMIT_ADDRESS_BURST=100000 \
    "$1" &
  pids+=($!)
}
start_origin target/release/latch-origin latch "$LATCH_PORT"
TARGETS="seed latch"
if [ -n "$BASELINE_BIN" ]; then
  start_origin "$BASELINE_BIN" baseline "$BASELINE_PORT"
  TARGETS="seed latch baseline"
fi
DATABASE_URL="$BASE_URL/seed" PORT=$SEED_PORT node bench/seed/server.js >/dev/null &
pids+=($!)
for url in "http://127.0.0.1:$LATCH_PORT/healthz" "http://127.0.0.1:$SEED_PORT/" \
  ${BASELINE_BIN:+"http://127.0.0.1:$BASELINE_PORT/healthz"}; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
done

: > "$OUT.lines"
for round in $(seq 1 "$ROUNDS"); do
  # Odd rounds run the baseline after Latch, even rounds before it: whichever follows the
  # seed's run meets the work it left in Postgres.
  order="$TARGETS"
  if [ -n "$BASELINE_BIN" ] && [ $((round % 2)) -eq 0 ]; then order="seed baseline latch"; fi
  for operation in create refresh verify; do
    for target in $order; do
      case "$target" in
        latch) args=(--target latch --device --base-url "http://127.0.0.1:$LATCH_PORT") ;;
        baseline) args=(--target latch --label baseline --base-url "http://127.0.0.1:$BASELINE_PORT") ;;
        seed) args=(--target seed --base-url "http://127.0.0.1:$SEED_PORT") ;;
      esac
      echo "round $round: $target $operation" >&2
      target/release/latch-loadgen "${args[@]}" --operation "$operation" \
        --api-key "$API_KEY" --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" >> "$OUT.lines"
    done
  done
done
python3 - "$OUT.lines" "$OUT" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
summary = {}
for op in ["create", "refresh", "verify"]:
    row = {}
    for target in ["seed", "latch", "baseline"]:
        mine = [r for r in runs if r["operation"] == op and r["target"] == target]
        if not mine:
            continue
        row[target] = {
            "rps": statistics.median(r["rps"] for r in mine),
            "p50_ms": statistics.median(r["p50_ms"] for r in mine),
            "p99_ms": statistics.median(r["p99_ms"] for r in mine),
            "errors": sum(r["errors"] for r in mine),
        }
    row["throughput_ratio"] = row["latch"]["rps"] / row["seed"]["rps"]
    row["p99_ratio"] = row["latch"]["p99_ms"] / row["seed"]["p99_ms"]
    if "baseline" in row:
        row["vs_baseline"] = row["latch"]["rps"] / row["baseline"]["rps"]
    summary[op] = row
json.dump({"runs": runs, "summary": summary}, open(sys.argv[2], "w"), indent=2)
print(f"{'operation':<9} {'seed rps':>9} {'latch rps':>10} {'ratio':>6}   {'seed p50/p99 ms':>16} {'latch p50/p99 ms':>17}")
for op, row in summary.items():
    s, l = row["seed"], row["latch"]
    print(f"{op:<9} {s['rps']:>9.0f} {l['rps']:>10.0f} {row['throughput_ratio']:>5.1f}x   "
          f"{s['p50_ms']:>7.2f}/{s['p99_ms']:<8.2f} {l['p50_ms']:>7.2f}/{l['p99_ms']:<8.2f}"
          f"{'  errors: seed %d, latch %d' % (s['errors'], l['errors']) if s['errors'] or l['errors'] else ''}"
          f"{'   vs baseline %.3fx (%.0f rps)' % (row['vs_baseline'], row['baseline']['rps']) if 'baseline' in row else ''}")
PY
rm "$OUT.lines"
echo "results: $OUT"
