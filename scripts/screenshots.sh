#!/usr/bin/env bash
# Regenerates the console screenshots in docs/console/ (shown in the README): runs the
# demo for a while so the pages have a year's story, then photographs the inbox, a
# customer page and the overview in headless Chromium.
# Usage: scripts/screenshots.sh [SECONDS_OF_DEMO [DEMO ARGS…]]   (default 60: ~300 simulated days)
#   CHURNWATCH_BIN=target/debug/churnwatch skips the release build (then pass a smaller
#   demo, e.g. `60 --customers 2000 --days-per-second 4`, so the debug build keeps up).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[screenshots] %s\n' "$*" >&2; }

seconds="${1:-60}"
shift || true
modules=$(scripts/install-browser.sh | tail -n 1)
bin="${CHURNWATCH_BIN:-}"
if [[ -z "$bin" ]]; then
  log "building churnwatch (release)"
  cargo build --release --locked >&2
  bin=target/release/churnwatch
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "demo on 127.0.0.1:$port for $((seconds + 30)) s; pictures after $seconds s"
"$bin" demo --seconds "$((seconds + 30))" --listen "127.0.0.1:$port" "$@" >/dev/null 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true' EXIT
sleep "$seconds"
NODE_MODULES="$modules" CONSOLE_URL="http://127.0.0.1:$port" OUT_DIR="$PWD/docs/console" \
  node tests/browser/screenshots.mjs
kill -INT "$demo" 2>/dev/null || true
wait "$demo" 2>/dev/null || true
log "done: docs/console/inbox.png customer.png overview.png"
