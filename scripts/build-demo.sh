#!/usr/bin/env bash
# Bundles the frontend SDKs supertokens-website 4.2.0 and 20.1.6 (from npm) into the demo's
# static files, each as the global `supertokens`, with the esbuild that ships with wrangler.
# Skips when up to date.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for pair in supertokens-website:supertokens.js supertokens-website-20:supertokens-20.js; do
  src="node_modules/${pair%%:*}/lib/build/index.js"
  out="demo/static/vendor/${pair##*:}"
  if [ -f "$out" ] && [ "$out" -nt package-lock.json ]; then continue; fi
  mkdir -p "$(dirname "$out")"
  node_modules/.bin/esbuild "$src" --bundle --format=iife --global-name=supertokens \
    --platform=browser --define:process=undefined --minify --log-level=warning --outfile="$out"
done
