# Sourced by run.sh, axum.sh and browser.sh: starts the echo server binary "$BIN" on a free
# loopback port, waits (at most 10 s) until it accepts TCP connections, and sets PORT, URL,
# SERVER_PID and LOG (its stderr). The server is stopped when the script exits. $WHAT names
# the caller in messages. Also defines `step NAME CMD...`: runs CMD bounded by
# $STEP_TIMEOUT seconds and sets fail=1 if it fails.

SERVER_PID=
LOG=$(mktemp)
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port: bind port 0, read it, release it.
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
"$BIN" "127.0.0.1:$PORT" 2>"$LOG" &
SERVER_PID=$!

ready=0
for _ in $(seq 100); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
if [ "$ready" -ne 1 ]; then
  echo "$WHAT: $BIN did not start listening on 127.0.0.1:$PORT; its stderr:" >&2
  cat "$LOG" >&2
  exit 1
fi
URL="ws://127.0.0.1:$PORT/"

fail=0
step() {
  local name=$1
  shift
  local rc
  timeout "$STEP_TIMEOUT" "$@"
  rc=$?
  if [ "$rc" -eq 124 ]; then
    echo "$WHAT $name -> 127.0.0.1:$PORT: FAILED: timed out after $STEP_TIMEOUT s"
  fi
  if [ "$rc" -ne 0 ]; then fail=1; fi
}
