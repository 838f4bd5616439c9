#!/usr/bin/env bash
# The gateway benchmark of issue 23, in one command, over loopback. Builds the `tether`
# gateway, tether-tokio's echo_server example and the load client
# (benches/src/bin/gateway_load.rs), then runs each case with the server pinned to CPU
# $SERVER_CPU (one worker thread: `--workers $WORKERS`) and the load client pinned to CPU
# $CLIENT_CPU.
#
# Cases (CASES, in this order by default):
#   handshake  upgrades per second on one core, HS_CONNS handshakes (CONCURRENCY at once,
#              each connection dropped after its 101; WARMUP untimed ones first) against
#              raw     tether-tokio's echo_server example: our listener's own handshake
#              dev     `tether` in dev mode, anonymous connections (no token)
#              hs256   `tether` with auth.hmac_secret, HS256 tokens in Authorization: Bearer
#              es256   `tether` with auth.public_key (a P-256 key pair generated here),
#                      ES256 tokens signed by the client
#              with the server's CPU per handshake (utime + stime from /proc/PID/stat)
#   idle       IDLE_CONNS HS256 connections, each joined to the room "bench" (ack
#              awaited): the growth of the server's VmRSS per connection (target ≤ 4 KiB)
#   broadcast  BCAST_CONNS HS256 connections in "bench", then ROUNDS broadcasts (a client's
#              {"type":"send","to":"",...}): per round the time from the send to the last
#              connection's arrival (target ≤ 100 ms at 19,000), p50/p99 across connections
#   api        API_CONNS connections, ROUNDS `POST /api/broadcast` (X-API-Key): the time
#              from the call to the last arrival; skipped with a note when the gateway
#              answers 404 for the path (no HTTP API in this build)
#
#   bash scripts/bench-gateway.sh                  # everything (about 6-8 minutes, estimated)
#   QUICK=1 bash scripts/bench-gateway.sh          # ≤ 2,000 connections, 5 rounds: ~1-2 min
#   CASES="handshake" SERVERS="raw hs256" HS_CONNS=5000 bash scripts/bench-gateway.sh
#   REPORT=target/bench/gateway.txt bash scripts/bench-gateway.sh   # the tables of a run again
#
# Environment: QUICK, CASES, SERVERS (of the handshake case), HS_CONNS (default 20000),
# WARMUP (1000), CONCURRENCY (64), IDLE_CONNS (10000), IDLE_ROOM (the room the idle
# connections join, "bench"; IDLE_ROOM= : none; IDLE_ROOM= IDLE_PING=1: each sends a ping
# and waits for its pong instead), BCAST_CONNS (19000), API_CONNS
# (10000), ROUNDS (20), INTERVAL (seconds between rounds, 0.25), WORKERS (the gateway's
# worker threads, 1), SERVER_CPU / CLIENT_CPU (0 / 1). The open-files limit is raised to
# the hard limit (`ulimit -Hn`): the client and the server each hold one socket per
# connection, each within its own limit. Every run is bounded by `timeout`. Raw lines (one
# per run, with the load average at its start) go to target/bench/gateway.txt; the table is
# printed on standard output.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  HS_CONNS=${HS_CONNS:-3000}
  WARMUP=${WARMUP:-300}
  IDLE_CONNS=${IDLE_CONNS:-2000}
  BCAST_CONNS=${BCAST_CONNS:-2000}
  API_CONNS=${API_CONNS:-2000}
  ROUNDS=${ROUNDS:-5}
fi
HS_CONNS=${HS_CONNS:-20000}
WARMUP=${WARMUP:-1000}
CONCURRENCY=${CONCURRENCY:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_ROOM=${IDLE_ROOM-bench}
BCAST_CONNS=${BCAST_CONNS:-19000}
API_CONNS=${API_CONNS:-10000}
ROUNDS=${ROUNDS:-20}
INTERVAL=${INTERVAL:-0.25}
WORKERS=${WORKERS:-1}
CASES=${CASES:-"handshake idle broadcast api"}
SERVERS=${SERVERS:-"raw dev hs256 es256"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=target/bench
mkdir -p "$OUT" "$TARGET/bench-gateway"
RESULTS="$OUT/gateway.txt"
if [ -n "${REPORT:-}" ]; then
  # Only the tables of an earlier run's raw lines.
  RESULTS=$REPORT
  CASES=
else
  : >"$RESULTS"
fi

if [ -n "$CASES" ]; then
echo "=== build (release)" >&2
cargo build --release --quiet -p tether-gateway --bin tether
cargo build --release --quiet -p tether-bench --bin gateway_load
# Both adapters have an example called echo_server: keep a copy of tether-tokio's.
cargo build --release --quiet -p tether-tokio --example echo_server
cp "$TARGET/release/examples/echo_server" "$TARGET/bench-gateway/echo_server_tokio"
LOAD=$TARGET/release/gateway_load

# Secrets and keys of this run only.
KEYS=$OUT/gateway-keys
"$LOAD" keygen "$KEYS"
SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
API_KEY=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

# The gateway: pinned, $WORKERS worker threads, no per-IP limit in the way (the client's
# source addresses are spread over 127.0.0.0/8 anyway), warnings only in its log.
export TETHER_LOG=${TETHER_LOG:-warn}
GW="$TARGET/release/tether --listen @ --workers $WORKERS --limits-max-connections-per-ip 100000"
declare -A CMD=(
  [raw]=$TARGET/bench-gateway/echo_server_tokio
  [dev]="$GW --dev true"
  [hs256]="$GW --dev false --auth-hmac-secret $SECRET"
  [es256]="$GW --dev false --auth-public-key $KEYS/es256_public.pem"
  [hs256-api]="$GW --dev false --auth-hmac-secret $SECRET --api-key $API_KEY"
)
declare -A TOKEN=(
  [raw]=""
  [dev]=""
  [hs256]="--hs256-secret $SECRET"
  [es256]="--es256-key $KEYS/es256_private.pem"
  [hs256-api]="--hs256-secret $SECRET"
)

fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
SERVER_LOG=$OUT/gateway-server.log

# Runs the load client against server $1 with the rest of the arguments; appends its line.
run() { # server bound-seconds client-args...
  local server=$1 bound=$2 line load
  shift 2
  : >"$SERVER_LOG"
  load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)
  # (The gateway logs on standard output: into the log too.)
  if ! start_server "$server" >>"$SERVER_LOG"; then
    echo "mode=$1 label=$server error=server_did_not_start load=$load" >>"$RESULTS"
    return
  fi
  # shellcheck disable=SC2086
  line=$(timeout "$bound" taskset -c "$CLIENT_CPU" "$LOAD" "$@" --addr "127.0.0.1:$PORT" \
    --pid "$PID" --label "$server" ${TOKEN[$server]}) ||
    line="mode=$1 label=$server error=client_failed_or_timed_out"
  stop_server
  echo "$line load=$load" >>"$RESULTS"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for case in $CASES; do
  case $case in
    handshake)
      for server in $SERVERS; do
        echo "=== handshake: $server, $HS_CONNS handshakes, $CONCURRENCY at once" >&2
        run "$server" 300 handshake --conns "$HS_CONNS" --warmup "$WARMUP" \
          --concurrency "$CONCURRENCY" --settle 0.5
      done
      ;;
    idle)
      echo "=== idle: $IDLE_CONNS connections${IDLE_ROOM:+ in room $IDLE_ROOM}" >&2
      run hs256 200 idle --conns "$IDLE_CONNS" --room "$IDLE_ROOM" --ping "${IDLE_PING:-0}" --settle 2
      ;;
    broadcast)
      echo "=== broadcast: $BCAST_CONNS connections, $ROUNDS rounds" >&2
      run hs256 $((200 + ROUNDS * 12)) broadcast --conns "$BCAST_CONNS" --room bench \
        --rounds "$ROUNDS" --interval "$INTERVAL" --timeout 10
      ;;
    api)
      echo "=== api: $API_CONNS connections, $ROUNDS POST /api/broadcast" >&2
      run hs256-api $((200 + ROUNDS * 12)) api --conns "$API_CONNS" --room bench \
        --rounds "$ROUNDS" --interval "$INTERVAL" --timeout 10 --api-key "$API_KEY"
      ;;
    *)
      echo "unknown case $case (known: handshake idle broadcast api)" >&2
      exit 2
      ;;
  esac
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
if [ -n "${REPORT:-}" ]; then
  echo "the tables of $REPORT (the load average of each run is in its row)"
else
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); server on CPU $SERVER_CPU ($WORKERS worker thread(s)), load client on CPU $CLIENT_CPU"
echo "load average (1, 5, 15 min) before: $load_before, after: $load_after$([ "$QUICK" = 1 ] && echo "; QUICK mode")"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
fi
echo
python3 - "$RESULTS" <<'PY'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        for line in open(sys.argv[1]) if line.startswith("mode=")]
names = {"raw": "tether-tokio listener (echo_server)", "dev": "tether, dev mode (anonymous)",
         "hs256": "tether, HS256 JWT", "es256": "tether, ES256 JWT"}

def err(r):
    return f"error: {r['error']}" if "error" in r else None

hs = [r for r in rows if r.get("mode") == "handshake"]
if hs:
    print("Handshakes on one core: upgrades per second with the server pinned to one CPU; "
          "its CPU per handshake (utime + stime from /proc/PID/stat, and schedstat run time); "
          "what one core would do at that cost (10^6 / run time: the rate when the client is "
          "the limit); the upgrade latency (connect to 101); the CPU use of each side (a "
          "client near 100 % is the limit, a server well below it had no core to itself).")
    print()
    print("| server | handshakes/s | server CPU µs/handshake (stat / schedstat) | one core at that cost | p50 / p99 ms | server CPU | client CPU | failed | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in hs:
        e = err(r)
        name = names.get(r.get("label"), r.get("label"))
        if e:
            print(f"| {name} | {e} |  |  |  |  |  |  | {r.get('load', '?')} |")
            continue
        sched = float(r["sched_us_per_hs"])
        cap = f"{1e6 / sched:,.0f}/s" if sched > 0 else "?"
        print(f"| {name} | {float(r['hs_per_s']):,.0f} | {float(r['cpu_us_per_hs']):.1f} / {sched:.1f} | {cap} | "
              f"{r['p50_ms']} / {r['p99_ms']} | {r['server_cpu_pct']} % | {r['client_cpu_pct']} % | "
              f"{r['errors']} of {r['conns']}{' (' + r['first_error'] + ')' if 'first_error' in r else ''} | {r['load']} |")
    print()

for r in rows:
    if r.get("mode") == "idle":
        e = err(r)
        if e:
            print(f"Idle connections: {e}")
        else:
            b = float(r["rss_per_conn_b"])
            where = f"in room {r['room']}" if r["room"] != "-" else "in no room"
            print(f"Idle memory: {r['ready']} HS256 connections {where} "
                  f"({r['errors']} failed): {b:,.0f} B ({b / 1024:.2f} KiB) of server VmRSS per "
                  f"connection ({'within' if b <= 4096 else 'over'} the 4 KiB target); load {r['load']}")
        print()

for r in rows:
    if r.get("mode") not in ("broadcast", "api"):
        continue
    what = ("client `send` to everyone" if r["mode"] == "broadcast" else "POST /api/broadcast")
    if "skipped" in r:
        print(f"HTTP API broadcast: skipped: the gateway answered 404 for POST /api/broadcast "
              f"(the HTTP API is not in this build)")
        print()
        continue
    e = err(r)
    if e:
        print(f"Broadcast ({what}): {e}")
        print()
        continue
    print(f"Broadcast ({what}) to {r['ready']} connections ({r['errors']} failed to open), "
          f"{r['rounds']} rounds; load {r['load']}:")
    print()
    print("| connections | time to the last delivery: min / p50 / p99 / max ms | rounds ≤ 100 ms | deliveries p50 / p99 ms | missing | server CPU µs/delivery (ms per round) | client CPU | idle B/conn |")
    print("|---|---|---|---|---|---|---|---|")
    per_round = float(r["sched_us_per_delivery"]) * int(r["ready"]) / 1e3
    print(f"| {r['ready']} | {r['last_ms_min']} / {r['last_ms_p50']} / {r['last_ms_p99']} / {r['last_ms_max']} | "
          f"{r['rounds_within_100ms']} of {r['rounds']} | {r['p50_ms']} / {r['p99_ms']} | {r['missing']} | "
          f"{r['sched_us_per_delivery']} ({per_round:.0f} ms) | {r['client_cpu_pct']} % | {r['rss_per_conn_b']} |")
    if r["mode"] == "api":
        calls = [float(c) for c in r.get("call_ms", "").split(",") if c]
        if calls:
            calls.sort()
            print()
            print(f"The calls themselves (connect to response): p50 {calls[len(calls) // 2]:.3f} ms, "
                  f"max {calls[-1]:.3f} ms; API errors: {r.get('api_errors', '?')}")
    print()
PY
echo "raw lines: $RESULTS"
