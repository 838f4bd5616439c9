#!/usr/bin/env bash
# The test command: every test in the workspace (with the fuzz corpora replays), the Rust
# tests that talk to real peers (`--features interop`) and to axum (`--features hyper`),
# then the Autobahn TestSuite (all 517 cases) against both adapters in both roles, interop
# with real peers (Python websockets, Node ws, headless Chromium; the axum example too), the
# gateway's demo chat in headless Chromium, and a short run of every fuzz target.
# Needs `bash scripts/setup.sh` first (the CI script runs it); checks for what it installs
# before anything else and stops, naming what is missing, without it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

# The peers and tools beyond Rust that the steps below need: all of them, or stop now
# (rather than after minutes of building) with the list of what is missing.
missing=()
if [ ! -x .venv/bin/python ]; then
  missing+=(".venv/bin/python (the Python venv)")
else
  [ -x .venv/bin/kosoku ] || missing+=("kosoku in .venv (the Autobahn TestSuite runner)")
  .venv/bin/python -c 'import websockets' 2>/dev/null || missing+=("websockets in .venv (Python)")
fi
if ! command -v node >/dev/null; then
  missing+=("node (Node.js)")
fi
for module in ws playwright-core; do
  [ -f "scripts/node/node_modules/$module/package.json" ] || missing+=("scripts/node/node_modules/$module (npm ci in scripts/node)")
done
[ -x /usr/bin/chromium ] || missing+=("/usr/bin/chromium (Debian's chromium)")
command -v cargo-fuzz >/dev/null || missing+=("cargo-fuzz")
if [ ${#missing[@]} -ne 0 ]; then
  echo "scripts/test.sh: missing what it needs besides Rust:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "Install them with \`bash scripts/setup.sh\` (from the repository root), then run this again." >&2
  echo "(\`cargo test --workspace\` alone needs only Rust.)" >&2
  exit 1
fi

T0=$SECONDS
step() { printf '\n=== [%d s] %s\n' "$((SECONDS - T0))" "$*"; }

step "cargo test --workspace"
cargo test --workspace --quiet 2>&1 | grep -v -E '^\s*$|^running [0-9]+ tests?$|^\.+$' | grep -v '^test .* ok$' || true
# Re-run to get the real exit status (the filter above hides it); cached, so this is fast.
cargo test --workspace --quiet >/dev/null 2>&1 || { echo "cargo test failed"; cargo test --workspace 2>&1 | tail -60; exit 1; }

# Tests behind a feature of tether-tokio (off by default, so that `cargo test --workspace`
# needs only Rust), run once each, their output kept for the failure report.
feature_test() {
  local feature=$1 test=$2 log
  log=$(mktemp)
  if ! cargo test -p tether-tokio --features "$feature" --test "$test" >"$log" 2>&1; then
    echo "FAILED: cargo test -p tether-tokio --features $feature --test $test"
    tail -60 "$log"
    rm -f "$log"
    exit 1
  fi
  grep -E '^test result:' "$log" || true
  rm -f "$log"
}

step "cargo test -p tether-tokio --features interop --test interop (Python websockets, Node ws)"
feature_test interop interop

step "cargo test -p tether-tokio --features hyper --test hyper (WebSockets served from axum)"
feature_test hyper hyper

step "benchmarks build (cargo bench --no-run; run them with scripts/bench.sh)"
# With the dev profile the benchmarks reuse what `cargo test` just compiled; scripts/bench.sh
# builds and runs them in release.
cargo bench --no-run --profile dev --quiet -p tether-bench >/dev/null 2>&1 || { echo "FAILED: cargo bench --no-run"; cargo bench --no-run --profile dev -p tether-bench 2>&1 | tail -30; exit 1; }
echo "benchmarks build"

step "build the endpoints (profile test-release)"
# The README's run command: it must keep building.
cargo build --profile test-release --quiet -p tether-core --example blocking_echo
# Both adapters have examples of the same names: build one crate at a time, keep copies
# (under target/test-bin, apart from the release builds of scripts/bench.sh in target/bin).
BIN=target/test-bin
for crate in tokio async-std; do
  cargo build --profile test-release --quiet -p "tether-$crate" --examples
  mkdir -p "$BIN/$crate"
  for ex in echo_server autobahn_client client; do cp "target/test-release/examples/$ex" "$BIN/$crate/"; done
done
# The axum example needs tether-tokio's `hyper` feature.
cargo build --profile test-release --quiet -p tether-tokio --features hyper --example axum_server
cp target/test-release/examples/axum_server "$BIN/tokio/"
# The gateway's `tether` binary, for the demo chat's browser test.
cargo build --profile test-release --quiet -p tether-gateway --bin tether
cp target/test-release/tether "$BIN/"

PY=.venv/bin/python
fail=0
run() { "$@" || fail=1; }

# Two runs side by side (separate ports and report directories), their output in order:
# one run alone leaves about a third of the two cores idle (the deflate cases keep kosoku
# and the endpoint busy in turn); two at once keep both cores busy (server runs: 315 s one
# after the other, 225 s side by side, on this 2-core machine).
both() {
  local role=$1 tokio_cmd=$2 async_std_cmd=$3 logs pid_tokio pid_async_std
  logs=$(mktemp -d)
  $PY scripts/autobahn.py "$role" --name tether-tokio --cmd "$tokio_cmd" >"$logs/tokio" 2>&1 &
  pid_tokio=$!
  $PY scripts/autobahn.py "$role" --name tether-async-std --cmd "$async_std_cmd" >"$logs/async-std" 2>&1 &
  pid_async_std=$!
  wait "$pid_tokio" || fail=1
  wait "$pid_async_std" || fail=1
  cat "$logs/tokio" "$logs/async-std"
  rm -rf "$logs"
}

step "Autobahn TestSuite: servers (kosoku fuzzingclient), both at once"
both server "$BIN/tokio/echo_server 127.0.0.1:{port}" "$BIN/async-std/echo_server 127.0.0.1:{port}"

step "Autobahn TestSuite: clients (kosoku fuzzingserver), both at once"
both client "$BIN/tokio/autobahn_client {url} {agent}" "$BIN/async-std/autobahn_client {url} {agent}"

step "Interop: Python websockets and Node ws clients, headless Chromium"
run bash scripts/interop/run.sh $BIN/tokio/echo_server
run bash scripts/interop/run.sh $BIN/async-std/echo_server
run bash scripts/interop/browser.sh $BIN/tokio/echo_server
run bash scripts/interop/browser.sh $BIN/async-std/echo_server

step "Interop: a WebSocket served from axum (Node ws and http clients, headless Chromium)"
run bash scripts/interop/axum.sh $BIN/tokio/axum_server
run bash scripts/interop/browser.sh $BIN/tokio/axum_server

step "Demo chat: the page at / in headless Chromium against the tether binary (two users, recovery, server restart)"
run bash scripts/interop/demo.sh $BIN/tether

step "Fuzz smoke: every cargo-fuzz target for ${FUZZ_SECONDS:=20} s"
run bash scripts/fuzz.sh "$FUZZ_SECONDS"

step "done"
if [ "$fail" -ne 0 ]; then
  echo "FAILED: see the step above that printed FAILED"
  exit 1
fi
echo "all passed: every Autobahn case OK or INFORMATIONAL, interop and fuzz smoke green"
