#!/usr/bin/env bash
# Installs what Latch needs to build, run and test, and skips whatever is already present.
# Safe to run any number of times. Usage: scripts/bootstrap.sh [--for run|test|bench]
#   run   : Rust wasm32 target, wasm-bindgen-cli, npm dev tools (esbuild, wasm-opt, workerd)
#   test  : all of the above, plus Postgres 15 server binaries, Debian's chromium and Go (for
#           the Go example), and the Python example's packages in examples/python/.venv
#   bench : all of the above, plus wrk
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PURPOSE=test
while [ $# -gt 0 ]; do
  case "$1" in
    --for) PURPOSE="${2:?--for needs run or test}"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$PURPOSE" in run|test|bench) ;; *) echo "bootstrap: --for takes run, test or bench, not '$PURPOSE'" >&2; exit 2 ;; esac

# Versions are pinned: wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock exactly.
WASM_BINDGEN_VERSION=0.2.130
PG_MAJOR=15

step() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }
have_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -qF "$2"; }

export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding Rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [ "$PURPOSE" = test ] && ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  step "adding Rust target x86_64-unknown-linux-musl (the origin's container image)"
  rustup target add x86_64-unknown-linux-musl
fi

if ! have_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # Not --locked: its own lockfile pins crates that no longer build on current Rust.
  cargo install "wasm-bindgen-cli@$WASM_BINDGEN_VERSION"
fi

# npm ci only when the lockfile changed since the last install.
if [ ! -f "$ROOT/node_modules/.package-lock.json" ] || \
   [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
  step "installing npm dev tools from package-lock.json"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "$PURPOSE" != run ]; then
  apt_missing=()
  if [ ! -x "/usr/lib/postgresql/$PG_MAJOR/bin/initdb" ]; then apt_missing+=("postgresql-$PG_MAJOR"); fi
  if ! command -v chromium >/dev/null 2>&1; then apt_missing+=(chromium); fi
  if ! command -v go >/dev/null 2>&1; then apt_missing+=(golang); fi
  # The origin's container image: a static musl binary, built into a FROM scratch image.
  if ! command -v podman >/dev/null 2>&1; then apt_missing+=(podman); fi
  if ! command -v musl-gcc >/dev/null 2>&1; then apt_missing+=(musl-tools); fi
  if [ "$PURPOSE" = bench ] && ! command -v wrk >/dev/null 2>&1; then apt_missing+=(wrk); fi
  if [ ${#apt_missing[@]} -gt 0 ]; then
    step "installing Debian packages: ${apt_missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
  fi
fi
if [ "$PURPOSE" != run ]; then
  # The Python example's packages, from PyPI into its own venv, again when its requirements change.
  venv="$ROOT/examples/python/.venv"
  requirements="$ROOT/examples/python/requirements.txt"
  if [ ! -f "$venv/.installed" ] || [ "$requirements" -nt "$venv/.installed" ]; then
    step "installing the Python example's packages into examples/python/.venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    touch "$venv/.installed"
  fi
fi
step "ready ($PURPOSE)"
