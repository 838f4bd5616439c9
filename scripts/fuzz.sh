#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while, starting from its committed corpus.
#
#     bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS defaults to 30 (the smoke run of the test command: 20); the targets default to
# all of them, run as many at a time as there are cores (or FUZZ_JOBS). New inputs the
# fuzzer finds go to a scratch directory, not to the committed corpus; a crash leaves its
# input under fuzz/artifacts/<target>/ and fails the run.
# Prints one line per target: executions, seconds, corpus size. Needs cargo-fuzz
# (`bash scripts/setup.sh`); runs on the stable toolchain through RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1

secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# One target per core at a time (FUZZ_JOBS overrides): each libFuzzer run is one process.
jobs=${FUZZ_JOBS:-$(nproc)}
fuzz_one() {
  local t=$1 log="$scratch/$1.log"
  mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
  if cargo fuzz run "$t" "$scratch/$t" fuzz/corpus/"$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(awk '/stat::number_of_executed_units/{print $2}' "$log")
    echo "fuzz $t: OK, $runs executions in $secs s, $(ls "$scratch/$t" | wc -l) new inputs beside $(ls fuzz/corpus/"$t" | wc -l) committed" >"$scratch/$t.result"
  else
    { echo "fuzz $t: FAILED; the end of its log:"; tail -40 "$log"; } >"$scratch/$t.result"
  fi
}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait
fail=0
for t in "${targets[@]}"; do
  if [ -f "$scratch/$t.result" ]; then cat "$scratch/$t.result"; else echo "fuzz $t: FAILED, no result"; fi
  grep -q "^fuzz $t: OK" "$scratch/$t.result" 2>/dev/null || fail=1
done
exit "$fail"
