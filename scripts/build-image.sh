#!/usr/bin/env bash
# Builds the origin's container image: a static (musl) latch-origin in a FROM scratch image
# (origin/Containerfile), so no base image is ever pulled.
#   scripts/build-image.sh [TAG]        default tag: latch-origin:dev
# Uses podman; CONTAINER_ENGINE=docker uses docker instead. The Docker image format is used
# because OCI images drop HEALTHCHECK.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

TAG="${1:-latch-origin:dev}"
ENGINE="${CONTAINER_ENGINE:-podman}"
TARGET=x86_64-unknown-linux-musl

# The bundled SQLite and ring's assembly are C: musl-gcc (Debian's musl-tools) compiles them.
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --quiet --profile container \
  --target "$TARGET" -p latch-origin --bin latch-origin

CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT"' EXIT
cp "target/$TARGET/container/latch-origin" "$CONTEXT/latch-origin"
printf 'root:x:0:0:root:/:/sbin/nologin\nlatch:x:10001:10001:Latch origin:/var/lib/latch:/sbin/nologin\n' \
  >"$CONTEXT/passwd"
printf 'root:x:0:\nlatch:x:10001:\n' >"$CONTEXT/group"
mkdir "$CONTEXT/data"
cp origin/Containerfile "$CONTEXT/Containerfile"

if [ "$ENGINE" = podman ]; then
  podman build --quiet --format docker --tag "$TAG" "$CONTEXT" >/dev/null
else
  "$ENGINE" build --quiet --tag "$TAG" "$CONTEXT" >/dev/null
fi
echo "$TAG"
