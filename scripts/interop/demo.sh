#!/usr/bin/env bash
# The demo chat at `/` (issue 23) in headless Chromium against the `tether` binary.
#
#     bash scripts/interop/demo.sh TETHER_BIN
#
# Writes a temporary tether.toml (the default dev mode: the page gets its users' tokens from
# GET /dev/token; every room keeping 100 messages of history, those named small:* only 2)
# for a free loopback port and runs scripts/interop/demo.js, which
# starts TETHER_BIN with it, kills and restarts it in the middle, and drives two pages (alice
# and bob) through the chat: one line per check, non-zero exit on failure. Installs nothing.
# Needs /usr/bin/chromium and playwright-core in scripts/node (`bash scripts/setup.sh`).
# Bounded by `timeout` (INTEROP_STEP_TIMEOUT s, default 120).
set -uo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/interop/prereqs.sh
source scripts/interop/prereqs.sh
interop_args "demo" "tether binary" TETHER_BIN "$@"
need_browser
prereqs_ok

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
# A free port: bind port 0, read it, release it.
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
cat >"$DIR/tether.toml" <<TOML
listen = "127.0.0.1:$PORT"
dev = true

# Rooms that keep too little to recover from a long absence.
[[rooms]]
pattern = "small:*"
history_size = 2

[[rooms]]
pattern = "*"
join = "user"
publish = "user"
presence = "user"
history = "user"
history_size = 100
TOML

timeout "$STEP_TIMEOUT" node scripts/interop/demo.js "$BIN" "$DIR/tether.toml" "$PORT"
rc=$?
if [ "$rc" -eq 124 ]; then
  echo "demo chromium -> http://127.0.0.1:$PORT/: FAILED: timed out after $STEP_TIMEOUT s"
fi
exit "$rc"
