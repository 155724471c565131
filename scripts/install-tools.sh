#!/usr/bin/env bash
# Installs the external tools the test suite needs, idempotently, into a cache that
# survives fresh clones:
#   kafka     Apache Kafka for the real-broker tests and benchmarks (jars from Maven
#             Central via scripts/kafka.sh install, ~1 min once; needs Java 17+ and Maven)
#   promtool  Prometheus config/rule checker (Debian package `prometheus`)
# Usage: scripts/install-tools.sh [kafka] [promtool]     (no argument: all)
# Cache: $CHURNWATCH_TOOLS, default ~/.cache/churnwatch/tools. Prints the bin directory.
set -euo pipefail

TOOLS="${CHURNWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/churnwatch/tools}"
mkdir -p "$TOOLS/bin"

log() { printf '[install-tools] %s\n' "$*" >&2; }

install_kafka() {
  local home
  home=$("$(dirname "$0")/kafka.sh" install)
  log "Apache Kafka ready in $home"
}

install_promtool() {
  if command -v promtool >/dev/null 2>&1; then
    log "promtool already installed: $(command -v promtool)"
    return
  fi
  log "installing promtool (Debian package prometheus)"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends prometheus >&2
  log "promtool installed: $(command -v promtool)"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(kafka promtool)
for t in "${targets[@]}"; do
  case "$t" in
    kafka) install_kafka ;;
    promtool) install_promtool ;;
    *) echo "unknown tool '$t'; known: kafka promtool" >&2; exit 2 ;;
  esac
done
echo "$TOOLS/bin"
