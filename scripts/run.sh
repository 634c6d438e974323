#!/usr/bin/env bash
# Entry point for `npm start` / `npm test` on a fresh machine: bootstraps the pnpm version pinned in
# package.json (into a cache folder, not globally), installs dependencies from the lockfile, then
# runs the given root script with pnpm.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "Node.js >= 20.19 is required" >&2; exit 1; }
pnpm_version=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/intellisite; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/intellisite; fi
tools=${INTELLISITE_CACHE:-$default_cache}/tools/pnpm-$pnpm_version
if [ ! -x "$tools/node_modules/.bin/pnpm" ]; then
  echo "[run] installing pnpm $pnpm_version into $tools" >&2
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" "pnpm@$pnpm_version" >&2
fi
export PATH="$tools/node_modules/.bin:$PATH"
export COREPACK_ENABLE_STRICT=0

pnpm install --frozen-lockfile --reporter=silent >&2
# pnpm exits 130 and prints "ELIFECYCLE Command failed" on Ctrl-C even when the pipeline stops
# cleanly, so the long-running pipeline is exec'd directly (the same command as its root script).
if [ "${1:-}" = pipeline ]; then
  shift
  exec node --conditions=development --import tsx scripts/pipeline.ts "$@"
fi
exec pnpm run "$@"
