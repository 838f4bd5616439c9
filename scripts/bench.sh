#!/usr/bin/env bash
# The echo benchmark of issue 7, in one command: builds everything in release, then runs each
# echo server (tether-tokio, tether-async-std, fastwebsockets, tokio-tungstenite) as its own
# single-threaded process pinned to CPU $SERVER_CPU, against the lean load client
# (benches/src/bin/load.rs) pinned to CPU $CLIENT_CPU, and prints a markdown table with every
# figure's ratio to fastwebsockets and to tokio-tungstenite. Loopback only; every run is
# bounded in time. Then the counting-allocator check (allocations per echoed message).
#
#   bash scripts/bench.sh                  # about 12 minutes on 2 cores (18 with both floors)
#   ROUNDS=1 DURATION=2 IDLE_CONNS=2000 STRACE=0 PERF=0 bash scripts/bench.sh   # a quick look
#   SERVERS="tether-async-std fastwebsockets floor-tokio floor-async-io" bash scripts/bench.sh
#
# floor-tokio and floor-async-io (benches/src/servers.rs) are runtime floors, not competitors:
# a minimal echo (handshake, unmask, write back) on each runtime, which shows what the
# runtime and the kernel cost per message. They run only when SERVERS names them.
#
# Raw results and strace summaries are kept in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

DURATION=${DURATION:-3}      # seconds measured per echo case and round
ROUNDS=${ROUNDS:-5}          # rounds per echo case (the table shows medians)
WARMUP=${WARMUP:-1}          # seconds of load before measuring
HS_DURATION=${HS_DURATION:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
STRACE=${STRACE:-1}          # 1: count system calls per message with strace -c (if installed)
PERF=${PERF:-1}              # 1: count them with perf stat (raw_syscalls:sys_enter), which disturbs less
ALLOC=${ALLOC:-1}            # 1: run the counting-allocator check
# Idle memory is measured again with each of these mallocs preloaded, where installed
# (Debian: libjemalloc2, libmimalloc2.0): glibc's malloc leaves free fragments around
# 128-byte-aligned blocks, and tokio allocates two per connection.
IDLE_MALLOCS=${IDLE_MALLOCS:-"jemalloc mimalloc"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CASES=${CASES:-"100:20:1 10:1024:1 10:16384:1 200:16384:1 100:20:16"}
OUT=target/bench
mkdir -p "$OUT"
RESULTS="$OUT/results.txt"
: >"$RESULTS"

echo "=== build (release)" >&2
cargo build --release --quiet -p tether-bench --bins
# Both adapters have an example called echo_server: build one crate at a time, keep copies.
for crate in tokio async-std; do
  cargo build --release --quiet -p "tether-$crate" --example echo_server
  mkdir -p "target/bin/$crate"
  cp target/release/examples/echo_server "target/bin/$crate/echo_server"
done

# 10,000 connections need as many descriptors in the client and in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

LOAD=target/release/load
declare -A CMD=(
  [tether-tokio]=target/bin/tokio/echo_server
  [tether-async-std]=target/bin/async-std/echo_server
  [fastwebsockets]=target/release/echo_fastwebsockets
  [tokio-tungstenite]=target/release/echo_tungstenite
  [floor-tokio]=target/release/echo_floor_tokio
  [floor-async-io]=target/release/echo_floor_async_io
)
SERVERS=${SERVERS:-"tether-tokio tether-async-std fastwebsockets tokio-tungstenite"}
for s in $SERVERS; do
  if [ -z "${CMD[$s]:-}" ]; then
    echo "unknown server $s (known: ${!CMD[*]})" >&2
    exit 1
  fi
done

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

client() { taskset -c "$CLIENT_CPU" "$LOAD" "$@" --addr "127.0.0.1:$PORT" --pid "$PID"; }

# System calls of server $1 per echo over a separate 2 s run of case $3 (N:SIZE:K), counted
# by $2: strace (-c -f) or perf (raw_syscalls:sys_enter, which disturbs the server less).
count_syscalls() { # server tool case
  local s=$1 tool=$2 n size k f line calls
  IFS=: read -r n size k <<<"$3"
  echo "=== $s $tool: system calls ${n}x${size}B inflight $k" >&2
  start_server "$s"
  f="$OUT/$tool-$s-${n}x${size}x${k}.txt"
  local counter=(strace -c -f)
  if [ "$tool" = perf ]; then counter=(perf stat -x, -e raw_syscalls:sys_enter); fi
  line=$(counted "$f" "${counter[@]}" -- client echo --conns "$n" --size "$size" --inflight "$k" --warmup 0 --duration 2)
  if [ "$tool" = strace ]; then
    calls=$(awk '$NF=="total"{print $4}' "$f")
  else
    calls=$(awk -F, '$3 == "raw_syscalls:sys_enter" {print $1}' "$f")
  fi
  echo "server=$s mode=$tool case=${n}x${size}x${k} msgs=$(total_msgs "$line") syscalls=$calls" | tee -a "$RESULTS" >&2
  stop_server
}

# Echo cases: the servers take turns, round after round, and the table shows each figure's
# median over the rounds, so that a slow spell of this shared machine hits every server
# alike instead of one.
for c in $CASES; do
  IFS=: read -r n size k <<<"$c"
  for round in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
      echo "=== $s echo ${n}x${size}B inflight $k, round $round/$ROUNDS" >&2
      start_server "$s"
      line=$(client echo --conns "$n" --size "$size" --inflight "$k" --warmup "$WARMUP" --duration "$DURATION")
      echo "server=$s case=${n}x${size}x${k} round=$round $line" | tee -a "$RESULTS" >&2
      stop_server
    done
  done
done

for s in $SERVERS; do
  echo "=== $s handshakes" >&2
  start_server "$s"
  line=$(client handshake --concurrency 32 --warmup 0.5 --duration "$HS_DURATION")
  echo "server=$s $line" | tee -a "$RESULTS" >&2
  stop_server

  echo "=== $s idle memory at $IDLE_CONNS connections" >&2
  start_server "$s"
  line=$(client idle --conns "$IDLE_CONNS" --concurrency 200)
  echo "server=$s $line" | tee -a "$RESULTS" >&2
  stop_server
  for m in $IDLE_MALLOCS; do
    # (awk reads to the end: exiting early would kill ldconfig with SIGPIPE, failing the
    # pipeline under pipefail once its output outgrows the pipe's buffer.)
    lib=$(ldconfig -p | awk -v m="lib$m.so.2" '$1 == m && lib == "" {lib = $NF} END {print lib}')
    [ -n "$lib" ] || continue
    echo "=== $s idle memory at $IDLE_CONNS connections, $m" >&2
    PRELOAD=$lib start_server "$s"
    line=$(client idle --conns "$IDLE_CONNS" --concurrency 200)
    echo "server=$s malloc=$m $line" | tee -a "$RESULTS" >&2
    stop_server
  done

  if [ "$STRACE" = 1 ] && command -v strace >/dev/null; then
    for c in 100:20:1 100:20:16; do count_syscalls "$s" strace "$c"; done
  fi
  if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
    for c in 100:20:1 10:1024:1 100:20:16; do count_syscalls "$s" perf "$c"; done
  fi
done

echo
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
echo "echo cases: median of $ROUNDS rounds (servers take turns), each $DURATION s measured after $WARMUP s warm-up; binary messages; handshakes: $HS_DURATION s, 32 concurrent"
echo
python3 - "$RESULTS" <<'PY'
import sys, collections
rows = [dict(kv.split("=", 1) for kv in line.split()) for line in open(sys.argv[1]) if line.strip()]
servers = []
for r in rows:
    if r["server"] not in servers:
        servers.append(r["server"])
R = collections.defaultdict(dict)  # (figure, case) -> server -> value
order = []
def put(fig, case, server, value):
    key = (fig, case)
    if key not in order:
        order.append(key)
    R[key][server] = value
def case_name(c):
    n, s, k = c.split("x")
    s = int(s)
    size = f"{s // 1024} KiB" if s >= 1024 else f"{s} B"
    return f"{n}×{size}" + (f", {k} in flight" if k != "1" else "")
echo = collections.defaultdict(list)  # (case, server) -> rounds
for r in rows:
    if r.get("mode") == "echo":
        echo[(r["case"], r["server"])].append(r)
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
for fig, key, fmt in [("messages/s", "msg_per_s", "{:.0f}"), ("p50 RTT µs", "p50_us", "{:.0f}"),
                      ("p99 RTT µs", "p99_us", "{:.0f}"), ("server CPU µs/msg", "cpu_us_per_msg", "{:.2f}")]:
    for (case, server), rs in echo.items():
        put(fig, case_name(case), server, (median([float(r[key]) for r in rs]), fmt))
# The least CPU per message of the rounds: noise only ever adds to it.
for (case, server), rs in echo.items():
    put("server CPU µs/msg, least of the rounds", case_name(case), server,
        (min(float(r["cpu_us_per_msg"]) for r in rs), "{:.2f}"))
for r in rows:
    if r.get("mode") == "strace" and r.get("syscalls") and r.get("msgs") and int(r["msgs"]) > 0:
        put("syscalls/msg (strace)", case_name(r["case"]), r["server"], (int(r["syscalls"]) / int(r["msgs"]), "{:.2f}"))
    if r.get("mode") == "perf" and r.get("syscalls", "").isdigit() and r.get("msgs") and int(r["msgs"]) > 0:
        put("syscalls/msg (perf)", case_name(r["case"]), r["server"], (int(r["syscalls"]) / int(r["msgs"]), "{:.2f}"))
for r in rows:
    if r.get("mode") == "handshake":
        put("handshakes/s", "32 concurrent", r["server"], (float(r["hs_per_s"]), "{:.0f}"))
        put("server CPU µs/handshake", "32 concurrent", r["server"], (float(r["cpu_us_per_hs"]), "{:.1f}"))
    if r.get("mode") == "idle":
        fig = "RSS bytes/idle conn" + (f" ({r['malloc']})" if "malloc" in r else "")
        put(fig, f"{r['conns']} conns", r["server"], (float(r["bytes_per_conn"]), "{:.0f}"))
refs = [s for s in ("fastwebsockets", "tokio-tungstenite") if s in servers]
if refs:
    print("Cells: value (ratio to " + " / ratio to ".join(refs) + "). Lower is better except messages/s and handshakes/s.")
else:
    print("Cells: values. Lower is better except messages/s and handshakes/s.")
floors = [s for s in servers if s.startswith("floor-")]
if floors:
    print(", ".join(floors) + ": runtime floors (a minimal echo on the runtime), not competitors.")
print()
print("| figure | case | " + " | ".join(servers) + " |")
print("|---|---|" + "---:|" * len(servers))
for fig, case in order:
    cells = []
    for s in servers:
        v = R[(fig, case)].get(s)
        if v is None:
            cells.append("–")
            continue
        val, fmt = v
        txt = fmt.format(val)
        ratios = []
        for ref in refs:
            rv = R[(fig, case)].get(ref)
            ratios.append(f"{val / rv[0]:.2f}×" if rv and rv[0] else "–")
        if refs and (s not in refs or len(refs) > 1):
            txt += " (" + " / ".join(ratios) + ")"
        cells.append(txt)
    print(f"| {fig} | {case} | " + " | ".join(cells) + " |")
PY

if [ "$ALLOC" = 1 ]; then
  echo
  echo '```'
  target/release/alloc_echo
  echo '```'
fi
