#!/usr/bin/env bash
# The broadcast benchmark of issue 21, in one command: builds tether-bench in release, runs
# the broadcast server (benches/src/bin/broadcast_tether.rs, single-threaded tether-tokio)
# pinned to CPU $SERVER_CPU and the load client's broadcast mode (benches/src/bin/load.rs)
# pinned to CPU $CLIENT_CPU, over loopback. The client opens $CONNS connections and, round
# after round, has the server publish each case (SIZE:MSGS:BURST: MSGS messages of SIZE
# bytes to every connection, yielding to the runtime after every BURST messages) once per
# mode, the modes taking turns: `prepared` (one PreparedFrame per message, try_send_prepared
# to each Sender) and `per-connection` (try_send of the Message to each Sender). Prints a
# markdown table of medians with the ratio prepared / per-connection, then the core-level
# count of bytes copied per delivery (benches/src/bin/broadcast_copies.rs).
#
#   bash scripts/bench-broadcast.sh                    # about 3 minutes on 2 cores
#   ROUNDS=1 CASES="20:200:50" bash scripts/bench-broadcast.sh   # a quick look
#
# Every publication is bounded: the client gives up on one after 60 s. Raw lines are kept in
# target/bench/broadcast.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

CONNS=${CONNS:-1000}
ROUNDS=${ROUNDS:-3}
# SIZE:MSGS:BURST. BURST=1: every message is written to every connection on its own (one
# write per delivery); BURST=50: the connections' drivers write 50 messages at a time.
CASES=${CASES:-"20:100:1 1024:100:1 16384:50:1 20:1000:50 1024:1000:50 16384:200:50"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=target/bench
mkdir -p "$OUT"
RESULTS="$OUT/broadcast.txt"

echo "=== build (release)" >&2
cargo build --release --quiet -p tether-bench --bins

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

declare -A CMD=([broadcast]=target/release/broadcast_tether)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_server broadcast
echo "=== broadcast: $CONNS connections, cases $CASES, $ROUNDS rounds" >&2
timeout 1800 taskset -c "$CLIENT_CPU" target/release/load broadcast --addr "127.0.0.1:$PORT" --pid "$PID" \
  --conns "$CONNS" --concurrency 100 --rounds "$ROUNDS" --cases "${CASES// /,}" \
  --modes prepared,per-connection | tee "$RESULTS" >&2
stop_server
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
echo "load average (1, 5, 15 min) before: $load_before, after: $load_after"
echo "$CONNS connections; median of $ROUNDS rounds, the two modes taking turns; binary messages"
echo
python3 - "$RESULTS" <<'PY'
import sys, collections
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        for line in open(sys.argv[1]) if line.startswith("mode=broadcast ")]
by = collections.defaultdict(list)  # (size, msgs, burst, pub) -> rounds
cases = []
for r in rows:
    case = (int(r["size"]), int(r["msgs"]), int(r["burst"]))
    if case not in cases:
        cases.append(case)
    by[case + (r["pub"],)].append(r)
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
def size_name(s):
    return f"{s // 1024} KiB" if s >= 1024 else f"{s} B"
print("CPU: the server's, over the window from the command to the last delivery, per delivery "
      "(utime+stime in clock ticks; run time from schedstat in ns). Cells: prepared / "
      "per-connection (ratio).")
print()
print("| message | messages × connections | burst | CPU µs/delivery (utime+stime) | CPU µs/delivery (schedstat) | wall ms | deliveries/s | Full / Closed answers | all delivered |")
print("|---|---:|---:|---|---|---|---|---|---|")
def cell(p, c, fmt):
    return f"{fmt.format(p)} / {fmt.format(c)} ({p / c:.2f}×)" if c else "–"
for case in cases:
    size, msgs, burst = case
    P, C = by[case + ("prepared",)], by[case + ("per-connection",)]
    if not P or not C:
        continue
    def m(rs, k):
        return median([float(r[k]) for r in rs])
    full = lambda rs: sum(int(r.get("full", 0)) for r in rs)
    closed = lambda rs: sum(int(r.get("closed", 0)) for r in rs)
    ok = all(r["finished"] == "true" and r["bad"] == "0" and r["errors"] == "0" for r in P + C)
    conns = P[0]["conns"]
    print(f"| {size_name(size)} | {msgs} × {conns} | {burst} | "
          f"{cell(m(P, 'cpu_us_per_delivery'), m(C, 'cpu_us_per_delivery'), '{:.2f}')} | "
          f"{cell(m(P, 'sched_us_per_delivery'), m(C, 'sched_us_per_delivery'), '{:.2f}')} | "
          f"{cell(m(P, 'secs') * 1e3, m(C, 'secs') * 1e3, '{:.0f}')} | "
          f"{cell(m(P, 'deliveries_per_s'), m(C, 'deliveries_per_s'), '{:.0f}')} | "
          f"{full(P)}/{closed(P)} · {full(C)}/{closed(C)} | {'yes' if ok else 'NO'} |")
PY

echo
target/release/broadcast_copies "$CONNS"
