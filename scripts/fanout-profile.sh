#!/usr/bin/env bash
# usage: bash scripts/fanout-profile.sh SERVER [SUBS]
#
# Counts the user-space instructions a fan-out server (a binary taking ADDR, e.g.
# target/release/examples/broadcast_server or target/release/fanout_floor) spends per
# delivery, under callgrind: SUBS subscribers (default 200) and one publisher with one
# message in flight (the fan-out benchmark's `inflight` case), run twice, for 2 and 6
# seconds; the difference of the two runs' instructions over the difference of their
# deliveries leaves out the start-up and the connections' handshakes. Instruction counts
# do not depend on the machine's noise (the kernel's share of a write is not counted).
# Needs valgrind and `cargo build --release -p tether-bench --bin fanout`.
set -uo pipefail
cd "$(dirname "$0")/.."
server=$1 subs=${2:-200}
run() { # seconds -> "deliveries instructions"
  local out port vg line
  out=$(mktemp -d)
  port=$((30000 + RANDOM % 20000))
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$server" "127.0.0.1:$port" >/dev/null 2>&1 &
  vg=$!
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  line=$(timeout 120 target/release/fanout --addr "127.0.0.1:$port" --pid "$vg" --peer profile \
    --case inflight --subs "$subs" --pubs 1 --size 20 --rate 0 --duration "$1" --drain 5 \
    --stalled 0 --server-core 0 2>/dev/null)
  kill "$vg"
  wait "$vg" 2>/dev/null
  echo "$(sed -n 's/.* delivered=\([0-9]*\).*/\1/p' <<<"$line") $(callgrind_annotate "$out"/cg* 2>/dev/null |
    sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)"
  rm -rf "$out"
}
read -r d1 i1 <<<"$(run 2)"
read -r d2 i2 <<<"$(run 6)"
if [ -z "$d1" ] || [ -z "$d2" ] || [ "$d2" -le "$d1" ]; then
  echo "fanout-profile: the runs delivered nothing to compare ($d1, $d2)" >&2
  exit 1
fi
echo "$server, $subs subscribers, 1 in flight: $(( (i2 - i1) / (d2 - d1) )) instructions per delivery ($((d2 - d1)) deliveries)"
