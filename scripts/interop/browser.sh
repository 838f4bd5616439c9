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

# shellcheck source=scripts/interop/prereqs.sh
source scripts/interop/prereqs.sh
interop_args "browser interop" "echo server binary" ECHO_SERVER_BIN "$@"
need_browser
prereqs_ok

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
