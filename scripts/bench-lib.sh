# Shared by scripts/bench.sh and scripts/async-io-styles.sh (sourced, not run): starting and
# stopping one echo server at a time, and counting system calls while a load client runs.
#
# The sourcing script sets SERVER_CPU and CMD, an associative array from a server's name to
# its command line: the address (127.0.0.1:PORT) replaces an "@" in it, or is appended.

PORT=$((20000 + RANDOM % 20000))
PID=

# Starts server $1 on the next port, pinned to CPU $SERVER_CPU, and waits until it accepts.
# With PRELOAD set, the server runs with that library preloaded (another malloc); with
# SERVER_LOG set, its standard error goes to that file (otherwise nowhere).
start_server() { # name
  PORT=$((PORT + 1))
  local cmd=${CMD[$1]}
  if [[ $cmd == *" @"* ]]; then
    cmd=${cmd/ @/ 127.0.0.1:$PORT}
  else
    cmd="$cmd 127.0.0.1:$PORT"
  fi
  # shellcheck disable=SC2086
  env ${PRELOAD:+LD_PRELOAD=$PRELOAD} taskset -c "$SERVER_CPU" $cmd 2>"${SERVER_LOG:-/dev/null}" &
  PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server $1 did not start" >&2
  return 1
}

stop_server() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=
}
trap 'stop_server' EXIT

# Runs a counter attached to the server (its command up to "--", then "-p PID -o FILE"),
# then, half a second later, the client command after "--", whose output it prints; then
# stops the counter, so that FILE holds its counts.
#   line=$(counted out.txt strace -c -f -- client echo --duration 2)
counted() { # file counter... -- client...
  local file=$1 counter=() cpid
  shift
  while [ "$1" != -- ]; do
    counter+=("$1")
    shift
  done
  shift
  "${counter[@]}" -p "$PID" -o "$file" >/dev/null 2>&1 &
  cpid=$!
  sleep 0.5
  "$@"
  kill -INT "$cpid" 2>/dev/null || true
  wait "$cpid" 2>/dev/null || true
}

# The total_msgs=N of a load client's output line.
total_msgs() { sed -n 's/.*total_msgs=\([0-9]*\).*/\1/p' <<<"$1"; }
