#!/usr/bin/env bash
# Installs what the test command needs beyond cargo: a Python venv with the Autobahn
# TestSuite runner (kosoku) and Python websockets; Node's ws and playwright-core with
# Debian's chromium for interop tests; cargo-fuzz for the fuzz smoke run.
# Idempotent; safe to run on a fresh Debian machine (as root, for apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
if ! command -v cargo-fuzz >/dev/null; then
  cargo install --quiet --locked cargo-fuzz@0.13.2
fi

if [ ! -x .venv/bin/kosoku ] || ! .venv/bin/python -c 'import websockets' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
fi

if [ ! -d scripts/node/node_modules/ws ] || [ ! -d scripts/node/node_modules/playwright-core ]; then
  (cd scripts/node && npm ci --no-audit --no-fund --silent)
fi
echo "setup: kosoku $(.venv/bin/pip show kosoku 2>/dev/null | awk '/^Version/{print $2}'), websockets $(.venv/bin/pip show websockets 2>/dev/null | awk '/^Version/{print $2}'), node $(node --version), ws $(node -p 'require("./scripts/node/node_modules/ws/package.json").version'), $(/usr/bin/chromium --version 2>/dev/null), $(cargo fuzz --version)"
