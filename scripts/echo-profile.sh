#!/usr/bin/env bash
# usage: bash scripts/echo-profile.sh SERVER [CONNS] [SIZE] [INFLIGHT]
#
# Runs the echo server SERVER (a binary taking ADDR, e.g. target/bin/tokio/echo_server)
# under callgrind, warms it up for 1 s with the load client, counts 3 s of echoes
# (CONNS connections, default 10, of SIZE bytes, default 20, INFLIGHT messages in flight
# each, default 1), and prints per echo: instructions, locked instructions by function,
# clock reads (scripts/echo-profile.py). Instruction counts do not depend on the machine's
# noise; how many messages one reactor turn serves does, so compare servers back to back.
# Needs valgrind and objdump (Debian: valgrind binutils) and `cargo build --release -p
# tether-bench --bins`.
set -euo pipefail
cd "$(dirname "$0")/.."
server=$1 conns=${2:-10} size=${3:-20} inflight=${4:-1}
out=$(mktemp -d)
port=$((30000 + RANDOM % 20000))
valgrind --tool=callgrind --dump-instr=yes --compress-strings=no --compress-pos=no \
  --instr-atstart=no --callgrind-out-file="$out/cg" "$server" "127.0.0.1:$port" >/dev/null 2>&1 &
vg=$!
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
load() { target/release/load echo --conns "$conns" --size "$size" --inflight "$inflight" --warmup 0 --addr "127.0.0.1:$port" "$@"; }
load --duration 1 >/dev/null
callgrind_control -i on "$vg" >/dev/null
line=$(load --duration 3)
callgrind_control -i off "$vg" >/dev/null
callgrind_control -d "$vg" >/dev/null
sleep 1
kill "$vg"
wait "$vg" 2>/dev/null || true
echoes=$(sed -n 's/.*total_msgs=\([0-9]*\).*/\1/p' <<<"$line")
profile=$(ls -t "$out"/cg.* | head -1)
echo "$server, $conns x $size B, $inflight in flight"
python3 scripts/echo-profile.py "$profile" "$server" "$echoes"
rm -rf "$out"
