#!/usr/bin/env bash
# ensure.sh COMMAND PACKAGE: prints the path of COMMAND, installing Debian's PACKAGE with apt-get
# when it is missing (tools the tests use from outside: promtool, haproxy, kcat). Idempotent;
# installing needs root (CI runs as root), elsewhere it says what to run instead.
set -euo pipefail
command=$1 package=$2
if path=$(command -v "$command"); then
  echo "$path"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "$command is missing: run 'sudo apt-get install -y $package'" >&2
  exit 1
fi
echo "[debian] installing $package with apt-get…" >&2
export DEBIAN_FRONTEND=noninteractive
# Test workers installing at once wait on the dpkg lock instead of failing.
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$package" >&2
command -v "$command" || { echo "$package did not install $command" >&2; exit 1; }
