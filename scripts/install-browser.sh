#!/usr/bin/env bash
# Installs what the console's browser tests (tests/console.rs) and the screenshots
# (scripts/screenshots.sh) need, idempotently:
#   chromium        Debian's package (/usr/bin/chromium); Playwright's own browser download
#                   does not work here, so the tests drive the distribution's build
#   playwright-core from npm, into the tools cache (no browser download, no global install)
# Cache: $CHURNWATCH_TOOLS, default ~/.cache/churnwatch/tools. Prints the node_modules
# directory that holds playwright-core (tests read it from CHURNWATCH_NODE_MODULES).
set -euo pipefail

TOOLS="${CHURNWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/churnwatch/tools}"
PLAYWRIGHT_VERSION=1.64.1
NODE_DIR="$TOOLS/node"
mkdir -p "$NODE_DIR"

log() { printf '[install-browser] %s\n' "$*" >&2; }

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"

if command -v chromium >/dev/null 2>&1; then
  log "chromium already installed: $(command -v chromium)"
else
  log "installing chromium (Debian package; about 100 MB)"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >&2
  log "chromium installed: $(command -v chromium)"
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: node and npm are needed for the browser tests; install Node.js 18 or later" >&2
  exit 2
fi

stamp="$NODE_DIR/.playwright-core-$PLAYWRIGHT_VERSION"
if [[ -f "$stamp" && -d "$NODE_DIR/node_modules/playwright-core" ]]; then
  log "playwright-core $PLAYWRIGHT_VERSION already installed in $NODE_DIR"
else
  log "installing playwright-core $PLAYWRIGHT_VERSION from npm into $NODE_DIR"
  [[ -f "$NODE_DIR/package.json" ]] || printf '{"private":true}\n' >"$NODE_DIR/package.json"
  # playwright-core never downloads a browser by itself; the flag makes sure of it.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$NODE_DIR" --no-audit --no-fund \
    --silent "playwright-core@$PLAYWRIGHT_VERSION" >&2
  touch "$stamp"
  log "playwright-core installed: $NODE_DIR/node_modules/playwright-core"
fi
echo "$NODE_DIR/node_modules"
