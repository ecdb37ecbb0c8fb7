#!/usr/bin/env bash
# Bundles the frontend SDK supertokens-website 4.2.0 (from npm) into the demo's static files,
# as the global `supertokens`, with the esbuild that ships with wrangler. Skips when up to date.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
out=demo/static/vendor/supertokens.js
src=node_modules/supertokens-website/lib/build/index.js
if [ -f "$out" ] && [ "$out" -nt package-lock.json ]; then exit 0; fi
mkdir -p "$(dirname "$out")"
node_modules/.bin/esbuild "$src" --bundle --format=iife --global-name=supertokens \
  --platform=browser --define:process=undefined --minify --log-level=warning --outfile="$out"
