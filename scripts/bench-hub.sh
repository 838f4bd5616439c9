#!/usr/bin/env bash
# The hub's own targets of issue 22, in one command:
#   1. registry operations (connect, join, leave, disconnect) on one core, and one room
#      joined then left by 100,000 members: benches/src/bin/hub_registry.rs, pinned to CPU
#      $SERVER_CPU (no sockets; see its header);
#   2. the server's resident memory per idle connection, not in a room and in one room:
#      hub/examples/broadcast_server.rs (TETHER_ROOM=0/1) pinned to CPU $SERVER_CPU, with
#      $IDLE_CONNS (default 10,000) idle connections of the fan-out client
#      (benches/src/bin/fanout.rs, --duration 0) pinned to CPU $CLIENT_CPU.
#
#   bash scripts/bench-hub.sh
#   N=20000 IDLE_CONNS=2000 bash scripts/bench-hub.sh
#
# Environment: N (connections of the registry benchmark, default 100,000), ROOMS (rooms
# they join, default 1,000), ROOM_N (members of the one room, default 100,000), IDLE_CONNS,
# SERVER_CPU / CLIENT_CPU (0 / 1). Raw lines of the memory runs go to target/bench/hub.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

N=${N:-100000}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=target/bench
mkdir -p "$OUT"
RESULTS=$OUT/hub.txt
: >"$RESULTS"

echo "=== build (release)" >&2
cargo build --release --quiet -p tether-bench --bin hub_registry --bin fanout
cargo build --release --quiet -p tether-hub --example broadcast_server

echo "=== registry: $N connections, pinned to CPU $SERVER_CPU" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c "$SERVER_CPU" "$TARGET/release/hub_registry" "$N"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
declare -A CMD=([tether-hub]=$TARGET/release/examples/broadcast_server)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
echo
for room in 0 1; do
  echo "=== idle memory: $IDLE_CONNS connections, TETHER_ROOM=$room" >&2
  export TETHER_ROOM=$room
  start_server tether-hub
  line=$(timeout 180 taskset -c "$CLIENT_CPU" "$TARGET/release/fanout" --addr "127.0.0.1:$PORT" \
    --pid "$PID" --peer tether-hub --case idle --subs "$IDLE_CONNS" --duration 0 2>/dev/null) ||
    line="mode=fanout error=client_failed_or_timed_out"
  stop_server
  echo "$line room=$room" >>"$RESULTS"
  per=$(sed -n 's/.*rss_per_conn_b=\([0-9]*\).*/\1/p' <<<"$line")
  ready=$(sed -n 's/.*ready=\([0-9]*\).*/\1/p' <<<"$line")
  echo "idle memory, $( [ "$room" = 1 ] && echo "in one room" || echo "in no room"): ${per:-?} B per connection ($ready open)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw lines: $RESULTS"
