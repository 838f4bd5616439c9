#!/usr/bin/env bash
# Interop of a WebSocket served from an HTTP application (issue 21, point 8): Node's `ws`
# client and Node's http client against one port of an axum server.
#
#     bash scripts/interop/axum.sh AXUM_SERVER_BIN
#
# AXUM_SERVER_BIN is adapters/tokio/examples/axum_server (built with `--features hyper`):
# it takes its listen address as its only argument, echoes on /ws and / and answers
# /health. Runs on a free loopback port:
# - node_client.js on /ws with permessage-deflate offered (ws's default), which must be
#   negotiated: text and binary echoes of 0 to 8 MiB, then a clean close with 1000;
# - node_client.js on / without deflate;
# - node_http_check.js: GET /health (200, JSON {"status":"ok"}), a version-8 upgrade
#   (426 with Sec-WebSocket-Version: 13) and a plain GET /ws (400) on the same port.
# One summary line per run; exits non-zero if any fails or the server dies. Every step is
# bounded by `timeout` (INTEROP_STEP_TIMEOUT seconds, default 120). Needs `bash
# scripts/setup.sh` first.
set -uo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/interop/prereqs.sh
source scripts/interop/prereqs.sh
interop_args "axum interop" "server binary" AXUM_SERVER_BIN "$@"
need_node_ws
prereqs_ok

WHAT="axum interop"
# shellcheck source=scripts/interop/server.sh
source scripts/interop/server.sh
STARTED=$SECONDS

step node-client node scripts/interop/node_client.js "ws://127.0.0.1:$PORT/ws" --deflate
step node-client node scripts/interop/node_client.js "ws://127.0.0.1:$PORT/"
step node-http node scripts/interop/node_http_check.js "127.0.0.1:$PORT"

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "axum interop: $BIN exited during the runs; its stderr:"
  cat "$LOG"
  fail=1
fi
if [ "$fail" -ne 0 ]; then
  echo "axum interop: FAILED against $BIN"
  exit 1
fi
echo "axum interop: all 3 runs passed against $BIN ($((SECONDS - STARTED)) s)"
