#!/usr/bin/env bash
# Entry point for `npm start` / `npm test` on a fresh machine. Any Node.js with npm can start it; it
# then runs everything on the Node.js line pinned in .node-version (the line the images ship):
#   1. the machine's node if it is already that major, otherwise the pinned release from the npm
#      registry's node-<os>-<arch> package, installed into a cache folder (never globally);
#   2. the pnpm version pinned in package.json, the same way;
#   3. dependencies from the lockfile, then the given root script.
# Both tools go first on PATH, so pnpm, vitest, the pipeline and every process they start use them.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "[run] Node.js with npm is required (any version: the pinned one is installed from it)" >&2; exit 1; }
node_version=$(tr -d ' \r\n' < .node-version)
node_major=${node_version%%.*}
pnpm_version=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/intellisite; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/intellisite; fi
cache=${INTELLISITE_CACHE:-$default_cache}/tools

if [ "$(node -p 'process.versions.node.split(".")[0]')" != "$node_major" ]; then
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) os=unsupported ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) arch=unsupported ;; esac
  node_tools=$cache/node-$node_version
  if [ ! -x "$node_tools/node_modules/.bin/node" ]; then
    [ "$os" != unsupported ] && [ "$arch" != unsupported ] ||
      { echo "[run] no Node.js $node_major package for $(uname -sm); install Node.js $node_major yourself" >&2; exit 1; }
    echo "[run] node $(node -v) is not Node.js $node_major: installing $node_version into $node_tools" >&2
    mkdir -p "$node_tools"
    npm install --silent --no-audit --no-fund --prefix "$node_tools" "node-$os-$arch@$node_version" >&2
  fi
  export PATH="$node_tools/node_modules/.bin:$PATH"
fi

pnpm_tools=$cache/pnpm-$pnpm_version
if [ ! -x "$pnpm_tools/node_modules/.bin/pnpm" ]; then
  echo "[run] installing pnpm $pnpm_version into $pnpm_tools" >&2
  mkdir -p "$pnpm_tools"
  npm install --silent --no-audit --no-fund --prefix "$pnpm_tools" "pnpm@$pnpm_version" >&2
fi
export PATH="$pnpm_tools/node_modules/.bin:$PATH"
export COREPACK_ENABLE_STRICT=0
# kafkajs 2.2.4 computes some timer delays that can be negative; Node 24 then prints a
# TimeoutNegativeWarning (plain text, not a log line) for each, while still waiting 1 ms as before.
# Only that warning type is disabled; every other warning still prints. The images pass the same
# flag in their CMD.
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--disable-warning=TimeoutNegativeWarning"

pnpm install --frozen-lockfile --reporter=silent >&2
# pnpm exits 130 and prints "ELIFECYCLE Command failed" on Ctrl-C even when the pipeline stops
# cleanly, so the long-running pipeline is exec'd directly (the same command as its root script).
# With `exec` here and in package.json's scripts, the pipeline is the very process npm runs: npm
# forwards SIGINT and SIGTERM to it, while an intermediate shell would die of them and leave the
# pipeline running. If npm itself is killed, the pipeline notices (exit-with-parent) and stops too.
if [ "${1:-}" = pipeline ]; then
  shift
  exec node --conditions=development --import tsx --import ./scripts/exit-with-parent.ts scripts/pipeline.ts "$@"
fi
exec pnpm run "$@"
