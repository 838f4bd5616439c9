# Sourced by the interop scripts (run.sh, axum.sh, browser.sh, demo.sh): their one argument
# (the server binary under test) and the checks of what they need, each naming how to get
# what is missing. A script calls interop_args, then the need_* checks it wants, then
# prereqs_ok, which exits 1 if anything was missing (after naming all of it).
MISSING=0

# interop_args NAME WHAT USAGE "$@": exactly one argument, the server binary (WHAT, shown as
# USAGE in the usage line; exits 2 otherwise). Sets NAME, BIN and STEP_TIMEOUT
# (INTEROP_STEP_TIMEOUT seconds, default 120).
interop_args() {
  NAME=$1
  local what=$2 usage=$3
  shift 3
  if [ $# -ne 1 ]; then
    echo "usage: $0 $usage" >&2
    exit 2
  fi
  BIN=$1
  STEP_TIMEOUT=${INTEROP_STEP_TIMEOUT:-120}
  if [ ! -x "$BIN" ]; then
    echo "$NAME: $what '$BIN' not found or not executable" >&2
    MISSING=1
  fi
}

# need_node_ws: Node.js and the npm package ws (scripts/node).
need_node_ws() {
  if ! command -v node >/dev/null || [ ! -d scripts/node/node_modules/ws ]; then
    echo "$NAME: Node.js or Node ws is missing: run \`bash scripts/setup.sh\`" >&2
    MISSING=1
  fi
}

# need_python_websockets: the venv's Python with websockets (sets PY).
need_python_websockets() {
  PY=.venv/bin/python
  if ! "$PY" -c 'import websockets' 2>/dev/null; then
    echo "$NAME: Python websockets is missing (.venv): run \`bash scripts/setup.sh\`" >&2
    MISSING=1
  fi
}

# need_browser: Debian's chromium, Node.js and playwright-core (scripts/node).
need_browser() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "$NAME: /usr/bin/chromium is missing: apt-get install -y --no-install-recommends chromium" >&2
    MISSING=1
  fi
  if ! command -v node >/dev/null; then
    echo "$NAME: node is missing: run \`bash scripts/setup.sh\`" >&2
    MISSING=1
  fi
  if [ ! -f scripts/node/node_modules/playwright-core/package.json ]; then
    echo "$NAME: playwright-core is missing: (cd scripts/node && npm ci --no-audit --no-fund)" >&2
    MISSING=1
  fi
}

# prereqs_ok: exits 1 if a check above found something missing.
prereqs_ok() {
  [ "$MISSING" -eq 0 ] || exit 1
}
