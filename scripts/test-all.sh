#!/usr/bin/env bash
# Every test: the light files two at a time, then the heavy ones one at a time (see vitest.config.ts).
# Arguments are vitest's (a package or file to narrow the run to).
set -euo pipefail
cd "$(dirname "$0")/.."
vitest run --project light --maxWorkers 2 --passWithNoTests "$@"
vitest run --project heavy --passWithNoTests "$@"
