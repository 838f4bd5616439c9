#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while, starting from its committed corpus.
#
#     bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS defaults to 30 (the smoke run of the test command); the targets default to all
# of them. New inputs the fuzzer finds go to a scratch directory, not to the committed
# corpus; a crash leaves its input under fuzz/artifacts/<target>/ and fails the run.
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
fail=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
  log="$scratch/$t.log"
  if cargo fuzz run "$t" "$scratch/$t" fuzz/corpus/"$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(awk '/stat::number_of_executed_units/{print $2}' "$log")
    echo "fuzz $t: OK, $runs executions in $secs s, $(ls "$scratch/$t" | wc -l) new inputs beside $(ls fuzz/corpus/"$t" | wc -l) committed"
  else
    echo "fuzz $t: FAILED; the end of its log:"
    tail -40 "$log"
    fail=1
  fi
done
exit "$fail"
