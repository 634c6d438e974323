#!/usr/bin/env bash
# Makes sure Debian's chromium is installed for the browser test (playwright-core drives it; no
# browser is ever downloaded by npm). Idempotent: returns at once when /usr/bin/chromium exists.
# Installing needs root (CI runs as root); elsewhere it says what to run instead.
set -euo pipefail
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$chromium" ]; then
  echo "$chromium"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is missing: run 'sudo apt-get install -y chromium' (or set CHROMIUM_PATH)" >&2
  exit 1
fi
echo "[chromium] installing Debian's chromium with apt-get…" >&2
export DEBIAN_FRONTEND=noninteractive
# A second test worker waiting on the dpkg lock is fine: apt-get waits for it.
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >&2
[ -x "$chromium" ] || { echo "chromium did not install at $chromium" >&2; exit 1; }
echo "$chromium"
