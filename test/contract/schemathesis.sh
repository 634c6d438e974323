#!/usr/bin/env bash
# Installs schemathesis (the OpenAPI property-based tester, from PyPI) into a virtualenv in the same
# cache as the local services, and prints the path of its `st` command. Idempotent: the virtualenv
# is made once per pinned version; test files that ask at the same time wait for the first.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/intellisite; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/intellisite; fi
TOOLS=${INTELLISITE_CACHE:-$default_cache}/tools
mkdir -p "$TOOLS"
exec 9>"$TOOLS/.schemathesis.lock"
flock 9

venv=$TOOLS/schemathesis-$SCHEMATHESIS_VERSION
# The marker is written last, so an interrupted install is redone rather than trusted.
if [ ! -f "$venv/.installed" ]; then
  command -v python3 >/dev/null || { echo "[schemathesis] python3 (with venv) is required" >&2; exit 1; }
  echo "[schemathesis] installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
  touch "$venv/.installed"
fi
echo "$venv/bin/st"
