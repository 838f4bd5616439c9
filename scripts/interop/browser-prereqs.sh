# Sourced by the headless Chromium tests (browser.sh, demo.sh): checks that the server
# binary and the browser's pieces are there, naming how to get what is missing.
# usage: check_browser_prereqs NAME BIN WHAT   (exits 1 if anything is missing)
check_browser_prereqs() {
  local name=$1 bin=$2 what=$3 missing=0
  if [ ! -x "$bin" ]; then
    echo "$name: $what '$bin' not found or not executable" >&2
    missing=1
  fi
  if [ ! -x /usr/bin/chromium ]; then
    echo "$name: /usr/bin/chromium is missing: apt-get install -y --no-install-recommends chromium" >&2
    missing=1
  fi
  if ! command -v node >/dev/null; then
    echo "$name: node is missing: run \`bash scripts/setup.sh\`" >&2
    missing=1
  fi
  if [ ! -f scripts/node/node_modules/playwright-core/package.json ]; then
    echo "$name: playwright-core is missing: (cd scripts/node && npm ci --no-audit --no-fund)" >&2
    missing=1
  fi
  [ "$missing" -eq 0 ] || exit 1
}
