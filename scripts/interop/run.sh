#!/usr/bin/env bash
# Interop with real peers (issue #3): runs the Python `websockets` client and the Node.js
# `ws` client, each without and with permessage-deflate, against an echo server binary.
#
#     bash scripts/interop/run.sh ECHO_SERVER_BIN
#
# ECHO_SERVER_BIN takes its listen address as its only argument (e.g.
# target/release/examples/echo_server of tether-tokio, started as `BIN 127.0.0.1:PORT` on a
# free port). Prints one summary line per client run; exits non-zero if any run fails or
# the server dies. Every step is bounded by `timeout` (INTEROP_STEP_TIMEOUT seconds,
# default 120). Needs `bash scripts/setup.sh` first.
set -uo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/interop/prereqs.sh
source scripts/interop/prereqs.sh
interop_args "interop" "echo server binary" ECHO_SERVER_BIN "$@"
need_python_websockets
need_node_ws
prereqs_ok

WHAT="interop"
# shellcheck source=scripts/interop/server.sh
source scripts/interop/server.sh
STARTED=$SECONDS

step py-client "$PY" scripts/interop/py_client.py "$URL"
step py-client "$PY" scripts/interop/py_client.py "$URL" --deflate
step node-client node scripts/interop/node_client.js "$URL"
step node-client node scripts/interop/node_client.js "$URL" --deflate

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "interop: $BIN exited during the runs; its stderr:"
  cat "$LOG"
  fail=1
fi
if [ "$fail" -ne 0 ]; then
  echo "interop: FAILED against $BIN"
  exit 1
fi
echo "interop: all 4 client runs passed against $BIN ($((SECONDS - STARTED)) s)"
