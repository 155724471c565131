#!/usr/bin/env bash
# Installs the external tools the test suite needs, idempotently, into a cache that
# survives fresh clones:
#   tansu     Kafka-API broker for the real-broker tests (cargo install, 15–25 min once)
#   promtool  Prometheus config/rule checker (Debian package `prometheus`)
# Usage: scripts/install-tools.sh [tansu] [promtool]     (no argument: all)
# Cache: $CHURNWATCH_TOOLS, default ~/.cache/churnwatch/tools. Prints the bin directory.
set -euo pipefail

TOOLS="${CHURNWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/churnwatch/tools}"
TANSU_VERSION=0.6.0
TANSU_FEATURES=dynostore,libsql
mkdir -p "$TOOLS/bin"

log() { printf '[install-tools] %s\n' "$*" >&2; }

install_tansu() {
  local stamp="$TOOLS/.tansu-$TANSU_VERSION-${TANSU_FEATURES//,/-}"
  if [[ -x "$TOOLS/bin/tansu" && -f "$stamp" ]]; then
    log "tansu $TANSU_VERSION ($TANSU_FEATURES) already installed in $TOOLS/bin"
    return
  fi
  log "building tansu $TANSU_VERSION with features $TANSU_FEATURES (15 to 25 minutes the first time on 2 cores;"
  log "an interrupted build resumes from $TOOLS/build)"
  # The default features include no storage engine; without these the broker exits
  # with FeatureNotEnabled.
  cargo install --locked tansu --version "$TANSU_VERSION" --features "$TANSU_FEATURES" \
    --root "$TOOLS" --target-dir "$TOOLS/build"
  touch "$stamp"
  log "tansu installed: $TOOLS/bin/tansu"
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
[[ ${#targets[@]} -eq 0 ]] && targets=(tansu promtool)
for t in "${targets[@]}"; do
  case "$t" in
    tansu) install_tansu ;;
    promtool) install_promtool ;;
    *) echo "unknown tool '$t'; known: tansu promtool" >&2; exit 2 ;;
  esac
done
echo "$TOOLS/bin"
