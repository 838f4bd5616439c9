#!/usr/bin/env bash
# Interop with a browser (issue #4): headless Chromium's WebSocket against an echo server.
#
#     bash scripts/interop/browser.sh ECHO_SERVER_BIN
#
# Starts ECHO_SERVER_BIN (which takes its listen address as its only argument and must
# accept permessage-deflate, e.g. target/release/examples/echo_server of tether-tokio) on a
# free port and runs scripts/interop/browser.js against it: one summary line, non-zero exit
# on failure. Installs nothing. Needs /usr/bin/chromium (Debian: `apt-get install -y
# --no-install-recommends chromium`) and playwright-core in scripts/node (`npm ci` there,
# or `bash scripts/setup.sh`). Bounded by `timeout` (INTEROP_STEP_TIMEOUT s, default 120).
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ $# -ne 1 ]; then
  echo "usage: $0 ECHO_SERVER_BIN" >&2
  exit 2
fi
BIN=$1
STEP_TIMEOUT=${INTEROP_STEP_TIMEOUT:-120}

missing=0
if [ ! -x "$BIN" ]; then
  echo "browser interop: echo server binary '$BIN' not found or not executable" >&2
  missing=1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "browser interop: /usr/bin/chromium is missing: apt-get install -y --no-install-recommends chromium" >&2
  missing=1
fi
if ! command -v node >/dev/null; then
  echo "browser interop: node is missing: run \`bash scripts/setup.sh\`" >&2
  missing=1
fi
if [ ! -f scripts/node/node_modules/playwright-core/package.json ]; then
  echo "browser interop: playwright-core is missing: (cd scripts/node && npm ci --no-audit --no-fund)" >&2
  missing=1
fi
[ "$missing" -eq 0 ] || exit 1

WHAT="browser interop"
# shellcheck source=scripts/interop/server.sh
source scripts/interop/server.sh
timeout "$STEP_TIMEOUT" node scripts/interop/browser.js "$URL"
rc=$?
if [ "$rc" -eq 124 ]; then
  echo "interop chromium -> $URL: FAILED: timed out after $STEP_TIMEOUT s"
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "browser interop: $BIN exited during the run; its stderr:"
  cat "$LOG"
  rc=1
fi
exit "$rc"
