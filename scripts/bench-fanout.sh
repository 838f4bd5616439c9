#!/usr/bin/env bash
# The fan-out benchmark of issue 22, in one command. Builds the load client
# (benches/src/bin/fanout.rs) and the peers, then for each case runs each peer in turn,
# pinned to CPU $SERVER_CPU, with the load client pinned to CPU $CLIENT_CPU, over loopback.
# Every peer has gorilla's chat semantics: each message any client sends goes to every
# connected client, the sender included; ws://ADDR/ws.
#
# Peers (PEERS, in this order by default):
#   floor        benches/src/bin/fanout_floor.rs: no library, one try_write per delivery,
#                no queue (a would-block is a counted drop): the floor while every delivery
#                is its own write
#   floor-2t     the floor writing a fan-out to 512 or more from 2 threads at once
#                (FLOOR_THREADS=2; not in the default PEERS: run it with SERVER_CPU=0,1
#                next to tether-hub-2w)
#   tether-hub   hub/examples/broadcast_server.rs (tether-hub), when the crate exists
#   tether-hub-flush  the same with a flush interval of $FLUSH_MS ms (default 2;
#                TETHER_FLUSH_MS): a connection's messages wait up to that long to go out
#                in one write (not in the default PEERS: add it, e.g. PEERS="tether-hub
#                tether-hub-flush gorilla")
#   tether-hub-2w  the same on a multi-threaded runtime with 2 worker threads
#                (TETHER_WORKERS=2; not in the default PEERS: run it with SERVER_CPU=0,1
#                and PUBS=2 for issue 22's point 14, next to tether-hub with PUBS=2)
#   tether       benches/src/bin/fanout_tether.rs: tether-tokio without the hub,
#                try_send_prepared to every connection
#   gorilla      benches/peers/gorilla-chat (Go; gorilla/websocket's chat hub shape)
#   node         benches/peers/node-ws/server.js (ws, wss.clients.forEach(c => c.send()))
#   axum         benches/src/bin/fanout_axum.rs: axum + tokio::sync::broadcast
#   tungstenite  benches/src/bin/fanout_tungstenite.rs: tokio-tungstenite + an mpsc hub
# A peer whose toolchain is missing is skipped with a note saying how to install it.
#
# Cases (CASES; subscribers, rate per publisher; one publisher, 20-byte text messages):
#   inflight   1,000 subscribers, 1 message in flight (the next once all got the previous)
#   rate10     10,000 subscribers × 10 msg/s
#   rate1000   1,000 subscribers × 1,000 msg/s (1 M deliveries/s offered)
#   rate100    10,000 subscribers × 100 msg/s (1 M deliveries/s offered)
#   stalled    rate1000 with 1 % of the subscribers stalled (connected with a 4 KiB receive
#              buffer, never reading): do the others lose anything, does their p99 move
#              (compared with rate1000 when it ran), does the server's memory grow
#   idle       10,000 idle connections: the server's resident memory per connection
# Every publishing case also reports the idle memory per connection before it publishes.
#
#   bash scripts/bench-fanout.sh                     # the full table: 20-25 minutes (estimate)
#   QUICK=1 bash scripts/bench-fanout.sh             # ≤ 2,000 connections, 5 s per run
#   PEERS="floor tether" CASES=inflight SUBS=500 DURATION=3 bash scripts/bench-fanout.sh
#
# Environment: QUICK (1: subscribers capped at 2,000, DURATION 5), SUBS (every case's
# subscriber count), DURATION (seconds of publishing per run, default 20), DRAIN (seconds
# to wait for the last deliveries, default 5), PUBS (publishers, default 1), SIZE (bytes,
# default 20), SERVER_CPU / CLIENT_CPU (0 / 1). Every run is bounded by `timeout`.
# Raw lines (one `mode=fanout …` per run, with the peer's own counters appended as
# `server_…`) go to target/bench/fanout.txt; the table is printed on standard output.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-5}
  SUBS_CAP=2000
else
  DURATION=${DURATION:-20}
  SUBS_CAP=
fi
DRAIN=${DRAIN:-5}
PUBS=${PUBS:-1}
SIZE=${SIZE:-20}
PEERS=${PEERS:-"floor tether-hub tether gorilla node axum tungstenite"}
CASES=${CASES:-"inflight rate10 rate1000 rate100 stalled idle"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
# Where cargo puts the binaries (CARGO_TARGET_DIR, as cargo reads it).
TARGET=${CARGO_TARGET_DIR:-target}
OUT=target/bench
mkdir -p "$OUT" "$TARGET/peers"
RESULTS="$OUT/fanout.txt"
: >"$RESULTS"

# Case name -> "subscribers rate duration stalled-percent" (rate 0: one in flight;
# duration 0: idle only).
declare -A CASE=(
  [inflight]="1000 0 $DURATION 0"
  [rate10]="10000 10 $DURATION 0"
  [rate1000]="1000 1000 $DURATION 0"
  [rate100]="10000 100 $DURATION 0"
  [stalled]="1000 1000 $DURATION 1"
  [idle]="10000 0 0 0"
)

declare -A CMD=(
  [floor]=$TARGET/release/fanout_floor
  [floor-2t]="env FLOOR_THREADS=2 $TARGET/release/fanout_floor"
  [tether-hub]=$TARGET/release/examples/broadcast_server
  [tether-hub-2w]="env TETHER_WORKERS=2 $TARGET/release/examples/broadcast_server"
  [tether-hub-flush]="env TETHER_FLUSH_MS=${FLUSH_MS:-2} $TARGET/release/examples/broadcast_server"
  [tether]=$TARGET/release/fanout_tether
  [gorilla]=$TARGET/peers/gorilla-chat
  [node]="node benches/peers/node-ws/server.js"
  [axum]=$TARGET/release/fanout_axum
  [tungstenite]=$TARGET/release/fanout_tungstenite
)

# What each peer needs, and how to get it; a peer that cannot be built is skipped.
have=()
for peer in $PEERS; do
  if [ -z "${CMD[$peer]:-}" ]; then
    echo "unknown peer $peer (known: ${!CMD[*]})" >&2
    exit 2
  fi
  case $peer in
    gorilla)
      if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/github.com/gorilla/websocket ]; then
        echo "note: skipping gorilla: needs Go and gorilla/websocket:" \
          "apt-get install -y golang-go golang-github-gorilla-websocket-dev" >&2
        continue
      fi
      ;;
    node)
      if ! command -v node >/dev/null || [ ! -d scripts/node/node_modules/ws ]; then
        echo "note: skipping node: needs Node.js and the ws package: bash scripts/setup.sh" >&2
        continue
      fi
      ;;
    tether-hub | tether-hub-flush | tether-hub-2w)
      if [ ! -f hub/Cargo.toml ] || [ ! -f hub/examples/broadcast_server.rs ]; then
        echo "note: skipping tether-hub: hub/examples/broadcast_server.rs does not exist (yet)" >&2
        continue
      fi
      ;;
  esac
  have+=("$peer")
done
if [ "${#have[@]}" -eq 0 ]; then
  echo "no peer to run" >&2
  exit 1
fi

echo "=== build (release)" >&2
cargo build --release --quiet -p tether-bench --bin fanout --bin fanout_floor --bin fanout_tether \
  --bin fanout_axum --bin fanout_tungstenite
for peer in "${have[@]}"; do
  case $peer in
    tether-hub | tether-hub-flush | tether-hub-2w) cargo build --release --quiet -p tether-hub --example broadcast_server ;;
    gorilla)
      GOCACHE=${GOCACHE:-$PWD/target/go-cache} GOPATH=/usr/share/gocode GO111MODULE=off \
        go build -o "$TARGET/peers/gorilla-chat" ./benches/peers/gorilla-chat
      ;;
  esac
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
SERVER_LOG=$OUT/fanout-server.log

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for case in $CASES; do
  if [ -z "${CASE[$case]:-}" ]; then
    echo "unknown case $case (known: ${!CASE[*]})" >&2
    exit 2
  fi
  read -r subs rate duration stalled_pct <<<"${CASE[$case]}"
  subs=${SUBS:-$subs}
  if [ -n "$SUBS_CAP" ] && [ "$subs" -gt "$SUBS_CAP" ]; then subs=$SUBS_CAP; fi
  stalled=$((subs * stalled_pct / 100))
  for peer in "${have[@]}"; do
    echo "=== $case: $peer, $subs subscribers ($stalled stalled), rate $rate, ${duration}s" >&2
    : >"$SERVER_LOG"
    if ! start_server "$peer"; then
      echo "mode=fanout peer=$peer case=$case error=server_did_not_start" >>"$RESULTS"
      continue
    fi
    line=$(timeout $((duration + DRAIN + 120)) taskset -c "$CLIENT_CPU" "$TARGET/release/fanout" \
      --addr "127.0.0.1:$PORT" --pid "$PID" --peer "$peer" --case "$case" --subs "$subs" \
      --pubs "$PUBS" --size "$SIZE" --rate "$rate" --duration "$duration" --drain "$DRAIN" \
      --stalled "$stalled" --server-core "${SERVER_CPU%%[,-]*}") ||
      line="mode=fanout peer=$peer case=$case error=client_failed_or_timed_out"
    # The peer reports its counters once a second.
    sleep 1.2
    stop_server
    # (A peer that prints no counters, like the hub's example, leaves them out.)
    stats=$({ grep ': stats ' "$SERVER_LOG" || true; } | tail -1 | sed 's/.*: stats //; s/\([a-z]*\)=/server_\1=/g')
    echo "$line $stats" >>"$RESULTS"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); server on CPU $SERVER_CPU, load client on CPU $CLIENT_CPU"
echo "load average (1, 5, 15 min) before: $load_before, after: $load_after"
echo "$PUBS publisher(s), $SIZE-byte text messages, ${DURATION}s of publishing per run, drain ${DRAIN}s$([ "$QUICK" = 1 ] && echo ", QUICK mode (subscribers capped at $SUBS_CAP)")"
echo
python3 - "$RESULTS" "${have[@]}" <<'PY'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        for line in open(sys.argv[1]) if line.startswith("mode=fanout ")]
peers = sys.argv[2:]
cases = []
for r in rows:
    if r.get("case") not in cases:
        cases.append(r.get("case"))
by = {(r.get("case"), r.get("peer")): r for r in rows}

def f(r, k):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return None

def ratio(v, base):
    return f" ({v / base:.2f}×)" if v is not None and base else ""

def delivered_pct(r):
    e, d = f(r, "expected"), f(r, "delivered")
    return 100.0 * d / e if e else None

def cell(case, peer):
    r = by.get((case, peer))
    if r is None:
        return "–"
    if "error" in r:
        return "error: " + r["error"]
    floor = by.get((case, "floor"), {})
    if case == "idle" or f(r, "expected") is None:
        b = f(r, "rss_per_conn_b")
        return f"{b / 1024:.1f} KiB{ratio(b, f(floor, 'rss_per_conn_b'))}"
    cpu = f(r, "cpu_us_per_delivery")
    p99 = f(r, "p99_ms")
    pct = delivered_pct(r)
    out = f"{cpu:.2f} µs{ratio(cpu, f(floor, 'cpu_us_per_delivery'))}, p99 {p99:.1f} ms"
    rate = f(r, "deliveries_per_s") / f(r, "offered_per_s") if f(r, "offered_per_s") else 1.0
    if int(f(r, "lost") or 0) == 0:
        out += ", all delivered"
    else:
        out += f", **{pct:.1f} % delivered**"
    if r.get("kept_up") != "yes" and rate < 0.9:
        out += f", **at {100 * rate:.0f} % of the offered rate**"
    if int(f(r, "server_cut") or 0):
        out += f", {int(f(r, 'server_cut'))} cut"
    if int(f(r, "stalled") or 0):
        grew = (f(r, "rss_end_kib") - f(r, "rss1_kib")) / 1024
        out += f", memory {grew:+.0f} MiB"
        base = by.get(("rate1000", peer), {})
        if f(base, "p99_ms") and r.get("rate") == base.get("rate") and r.get("subs") == base.get("subs"):
            out += f", p99 {100 * (p99 / f(base, 'p99_ms') - 1):+.0f} % vs rate1000"
    return out

names = {
    "inflight": "{subs} subs × {size} B, 1 in flight",
    "rate10": "{subs} subs × 10 msg/s",
    "rate1000": "{subs} subs × 1,000 msg/s",
    "rate100": "{subs} subs × 100 msg/s",
    "stalled": "{subs} subs × 1,000 msg/s, {stalled} of them stalled",
    "idle": "idle memory per connection ({subs} conns)",
}
print("Cells: the server's CPU (utime + stime) per delivery, from the first send to the last "
      "delivery, with the ratio to the floor; the p99 latency from the send timestamps; whether "
      "every message reached every connection, and, when the deliveries fell below 90 % of the "
      "offered rate (a backlog that grew while publishing), the rate achieved; with stalled "
      "subscribers (not counted as receivers), the growth of the server's memory while "
      "publishing. Idle: resident memory growth per open connection. A message not delivered "
      "was dropped by the server (its own count is in the details) or still queued when the "
      "drain ended.")
print()
print("| case | " + " | ".join(peers) + " |")
print("|---|" + "---|" * len(peers))
for case in cases:
    any_row = next((by[(case, p)] for p in peers if (case, p) in by), {})
    label = names.get(case, case).format(subs=any_row.get("subs", "?"), size=any_row.get("size", "?"),
                                         stalled=any_row.get("stalled", "?"))
    print(f"| {label} | " + " | ".join(cell(case, p) for p in peers) + " |")
print()
print("Details: delivered / expected, offered and achieved deliveries per second, p50 / p99 / "
      "max latency, the server's CPU use; its CPU per delivery as the kernel charges it to the "
      "process (utime + stime) and as the busy time of the core it is pinned to (/proc/stat: "
      "adds the softirq work of its loopback writes, and anything else that ran there); the "
      "client's CPU (a client near 100 % is the limit, not the server); the peer's own counts "
      "of dropped deliveries and cut connections.")
print()
print("| case | peer | delivered / expected | offered/s | delivered/s | p50 / p99 / max ms | server CPU | µs/delivery: server / its core | client CPU | dropped (server) | cut | idle B/conn |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for case in cases:
    for p in peers:
        r = by.get((case, p))
        if r is None or "error" in r or f(r, "expected") is None:
            continue
        print(f"| {case} | {p} | {r['delivered']} / {r['expected']} | {float(r['offered_per_s']):.0f} | "
              f"{float(r['deliveries_per_s']):.0f} | {r['p50_ms']} / {r['p99_ms']} / {r['max_ms']} | "
              f"{r['server_cpu_pct']} % | {r['cpu_us_per_delivery']} / {r['core_us_per_delivery']} | "
              f"{r['client_cpu_pct']} % | {r.get('server_dropped', '?')} | "
              f"{r.get('server_cut', '?')} | {r['rss_per_conn_b']} |")
PY
echo
echo "raw lines: $RESULTS"
