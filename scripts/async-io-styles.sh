#!/usr/bin/env bash
# How a single-threaded async-io server should run (BENCHMARKS.md, "Runtime floors"): the
# floor servers and tether-async-std's echo server under each running style of
# `tether_bench::servers::AsyncIoStyle`, against floor-tokio and fastwebsockets, at one case
# (default 100 connections x 20 B, 1 in flight). Each server is its own process pinned to
# CPU $SERVER_CPU (all its threads), the load client to CPU $CLIENT_CPU, as in bench.sh.
#
# 1. CPU: $ROUNDS rounds, the variants taking turns in each; per run the load client's line
#    plus each server thread's CPU ticks and context switches over the whole run.
# 2. System calls, per variant, over a separate 2 s run each: `strace -f -c` (all threads),
#    `strace -f -o` (counted per thread and per call), and `perf stat --per-thread` of
#    raw_syscalls:sys_enter (cheaper than strace, so it disturbs the timing less).
#
#   bash scripts/async-io-styles.sh              # builds, then about 5 minutes
#   ROUNDS=3 CASE=10:1024:1 bash scripts/async-io-styles.sh
#
# Raw lines go to target/bench/styles.txt, strace and perf output to target/bench/styles/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
CASE=${CASE:-100:20:1}
SYSCALLS=${SYSCALLS:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
IFS=: read -r CONNS SIZE INFLIGHT <<<"$CASE"
OUT=target/bench/styles
mkdir -p "$OUT"
RESULTS=target/bench/styles.txt
: >"$RESULTS"

if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release --quiet -p tether-bench --bins
  cargo build --release --quiet -p tether-async-std --example echo_server
  mkdir -p target/bin/async-std
  cp target/release/examples/echo_server target/bin/async-std/echo_server
fi

declare -A CMD=(
  [fastwebsockets]="target/release/echo_fastwebsockets"
  [floor-tokio]="target/release/echo_floor_tokio"
  [floor-async-io/block_on]="target/release/echo_floor_async_io @ block_on"
  [floor-async-io/local]="target/release/echo_floor_async_io @ local"
  [floor-async-io/park_only]="target/release/echo_floor_async_io @ park_only"
  [floor-async-io/ready_first]="target/release/echo_floor_async_io @ ready_first"
  [tether-async-std/example]="target/bin/async-std/echo_server"
  [tether-async-std/block_on]="target/release/echo_tether_async_std @ block_on"
  [tether-async-std/local]="target/release/echo_tether_async_std @ local"
  [tether-async-std/park_only]="target/release/echo_tether_async_std @ park_only"
)
VARIANTS=${VARIANTS:-"fastwebsockets floor-tokio floor-async-io/block_on floor-async-io/local floor-async-io/park_only floor-async-io/ready_first tether-async-std/example tether-async-std/block_on tether-async-std/local tether-async-std/park_only"}

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

load() { taskset -c "$CLIENT_CPU" target/release/load echo --addr "127.0.0.1:$PORT" --pid "$PID" \
  --conns "$CONNS" --size "$SIZE" --inflight "$INFLIGHT" "$@"; }

# "name:ticks:voluntary:involuntary" for every thread of $PID (name = comm, spaces as _).
threads() {
  local t
  for t in /proc/"$PID"/task/*; do
    local comm stat
    comm=$(tr ' ' _ <"$t/comm" 2>/dev/null) || continue
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    read -r -a f <<<"$stat"
    local vol inv
    vol=$(sed -n 's/^voluntary_ctxt_switches:\s*//p' "$t/status")
    inv=$(sed -n 's/^nonvoluntary_ctxt_switches:\s*//p' "$t/status")
    printf '%s:%s:%s:%s:%s ' "${t##*/}" "$comm" $((f[11] + f[12])) "$vol" "$inv"
  done
}

for round in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    echo "=== $v ${CASE} round $round/$ROUNDS" >&2
    start_server "$v"
    before=$(threads)
    line=$(load --warmup "$WARMUP" --duration "$DURATION")
    after=$(threads)
    echo "variant=$v round=$round $line threads_before=${before// /,} threads_after=${after// /,}" | tee -a "$RESULTS" >&2
    stop_server
  done
done

# perf: every system call, the ones async-io's reactor and the echo make by name, and
# context switches, per thread.
PERF_EVENTS=raw_syscalls:sys_enter,context-switches
for c in recvfrom sendto epoll_ctl epoll_pwait epoll_wait timerfd_settime read write futex; do
  PERF_EVENTS+=",syscalls:sys_enter_$c"
done

if [ "$SYSCALLS" = 1 ]; then
  for v in $VARIANTS; do
    f=$OUT/${v//\//_}
    echo "=== $v strace -f -c" >&2
    start_server "$v"
    line=$(counted "$f.strace-c.txt" strace -c -f -- load --warmup 0 --duration 2)
    msgs=$(total_msgs "$line")
    calls=$(awk '$NF=="total"{print $4}' "$f.strace-c.txt")
    echo "variant=$v mode=strace-c msgs=$msgs syscalls=$calls" | tee -a "$RESULTS" >&2
    stop_server

    echo "=== $v strace -f -o" >&2
    start_server "$v"
    names=$(threads)
    line=$(counted "$f.strace-o.txt" strace -f -qq -- load --warmup 0 --duration 2)
    msgs=$(total_msgs "$line")
    # Calls per thread (named from /proc) and per system call.
    per=$(NAMES="$names" awk '
      BEGIN { n = split(ENVIRON["NAMES"], t, " "); for (i = 1; i <= n; i++) { split(t[i], p, ":"); name[p[1]] = p[2] } }
      { if ($2 !~ /^[a-z_0-9]+\(/) next; call = $2; sub(/\(.*/, "", call); k = (($1 in name) ? name[$1] : "t" $1) "/" call; c[k]++ }
      END { for (k in c) printf "%s=%d,", k, c[k] }' "$f.strace-o.txt")
    echo "variant=$v mode=strace-o msgs=$msgs calls=${per%,}" | tee -a "$RESULTS" >&2
    stop_server

    if command -v perf >/dev/null; then
      echo "=== $v perf stat --per-thread" >&2
      start_server "$v"
      line=$(counted "$f.perf.txt" perf stat -x, --per-thread -e "$PERF_EVENTS" -- load --warmup 0 --duration 2)
      msgs=$(total_msgs "$line")
      # thread-TID/event=count (events: all system calls, a few by name, context switches).
      per=$(awk -F, 'NF > 3 && $1 !~ /^#/ { gsub(/ /, "", $1); ev = $4; sub(/^raw_syscalls:sys_enter$/, "syscalls", ev);
        sub(/^syscalls:sys_enter_/, "", ev); printf "%s/%s=%s,", $1, ev, $2 }' "$f.perf.txt")
      echo "variant=$v mode=perf msgs=$msgs counts=${per%,}" | tee -a "$RESULTS" >&2
      stop_server
    fi
  done
fi

python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in open(sys.argv[1]) if line.strip()]
order = []
for r in rows:
    if r["variant"] not in order:
        order.append(r["variant"])
def med(xs):
    return statistics.median(xs) if xs else float("nan")
def threads(s):  # tid -> (name, ticks, voluntary, involuntary)
    out = {}
    for t in filter(None, s.split(",")):
        tid, name, ticks, vol, inv = t.split(":")
        out[tid] = (name, int(ticks), int(vol), int(inv))
    return out
HELPER = "async-io"  # the name of async-io's fallback thread
print("CPU: median (least) of the rounds; the helper's share is of the server's CPU ticks over the whole run.")
print()
print("| variant | server CPU µs/msg | msg/s | server CPU % | helper thread's CPU | context switches/msg |")
print("|---|---:|---:|---:|---:|---:|")
for v in order:
    rs = [r for r in rows if r["variant"] == v and r.get("mode") == "echo"]
    if not rs:
        continue
    cpu = [float(r["cpu_us_per_msg"]) for r in rs]
    share, cs = [], []
    for r in rs:
        b, a = threads(r["threads_before"]), threads(r["threads_after"])
        d = {t: [x - y for x, y in zip(a[t][1:], b.get(t, (0, 0, 0, 0))[1:])] for t in a}
        total = sum(x[0] for x in d.values())
        share.append(sum(d[t][0] for t in d if a[t][0] == HELPER) / total if total else 0.0)
        cs.append(sum(x[1] + x[2] for x in d.values()) / int(r["total_msgs"]))
    print(f"| {v} | {med(cpu):.2f} ({min(cpu):.2f}) | {med([float(r['msg_per_s']) for r in rs]):.0f} | "
          f"{med([float(r['server_cpu_pct']) for r in rs]):.1f} | {100 * med(share):.1f} % | {med(cs):.3f} |")
print()
def split(kvs, sep):
    for kv in filter(None, kvs.split(",")):
        k, n = kv.split("=")
        thread, call = k.split("/", 1)
        yield thread.rsplit(sep, 1)[0] if sep else thread, call, int(n)
table = []
for v in order:
    sc = [r for r in rows if r["variant"] == v and r.get("mode") == "strace-c"]
    so = [r for r in rows if r["variant"] == v and r.get("mode") == "strace-o"]
    pf = [r for r in rows if r["variant"] == v and r.get("mode") == "perf"]
    cells = [f"{int(sc[0]['syscalls']) / int(sc[0]['msgs']):.2f}" if sc and sc[0].get("syscalls") else "–"]
    for rs, sep, total in ((so, None, None), (pf, "-", "syscalls")):
        if not rs:
            cells.append("–")
            continue
        m = int(rs[0]["msgs"])
        main = helper = 0
        for thread, call, n in split(rs[0].get("calls") or rs[0].get("counts", ""), sep):
            if (total is None or call == total):
                if thread == HELPER:
                    helper += n
                else:
                    main += n
        cells.append(f"{main / m:.2f} / {helper / m:.2f}")
    table.append((v, cells))
if table:
    print("System calls per message: all threads (strace -f -c), and main thread / helper thread (strace -f -o; perf stat --per-thread).")
    print()
    print("| variant | strace -f -c | strace -f -o, main / helper | perf, main / helper |")
    print("|---|---:|---:|---:|")
    for v, cells in table:
        print(f"| {v} | " + " | ".join(cells) + " |")
    print()
    for mode, key, sep, skip in (("strace-o", "calls", None, ()), ("perf", "counts", "-", ("syscalls", "context-switches"))):
        print(f"{mode}: calls per message, by thread (≥ 0.01)")
        for v in order:
            rs = [r for r in rows if r["variant"] == v and r.get("mode") == mode]
            if not rs:
                continue
            m = int(rs[0]["msgs"])
            items = sorted(((t, c, n) for t, c, n in split(rs[0][key], sep) if c not in skip), key=lambda x: -x[2])
            print(f"  {v}: " + ", ".join(f"{'helper' if t == HELPER else 'main'} {c} {n / m:.3f}" for t, c, n in items if n / m >= 0.01))
        print()
PY
