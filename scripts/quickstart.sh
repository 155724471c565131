#!/usr/bin/env bash
# Quick start: build churnwatch, generate a year of events for 20,000 customers, run the
# engine over them and show the alerts a sales team would get. No external services.
# (When the Kafka runtime lands, `churnwatch demo` replaces this with live alerts.)
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/quickstart
mkdir -p "$out"

echo "==> building (cargo build --release)"
cargo build --release --locked --quiet
bin=target/release/churnwatch

echo "==> generating events: 20,000 customers, 400,000 events over 365 days"
"$bin" gen --customers 20000 --events 400000 --days 365 --start 2025-01-01T00:00:00Z --seed 7 --out "$out/events.jsonl"

echo "==> replaying them through the rules (config/default.toml), time advanced to 2026-01-01"
"$bin" replay --input "$out/events.jsonl" --output "$out/alerts.jsonl" --profiles "$out/profiles.jsonl" \
  --dead-letters "$out/dead_letters.jsonl" --until 2026-01-01T00:00:00Z --print 2> "$out/replay.log"

echo
show() { # title, then a grep pattern; prints up to $3 matching alerts (default 3)
  echo "--- $1 ---"
  grep -E "$2" "$out/replay.log" | head -n "${3:-3}" || true
  echo
}
show "high churn warnings: owner, due time, the rule's conditions with their values" 'WARNING  HIGH'
show "silence: no order for 90 days, raised by time passing (no event needed)" 'silence: ' 2
show "visit drop" 'visit_drop: ' 2
show "tier upgrades" 'tier .*-> (high_value|potential)'
show "tier decay as time passes" 'T00:00 .*tier +[a-z_]+ -> (potential|regular|churn_risk)'
show "recoveries" ' cleared ' 2
tail -n 1 "$out/replay.log"
echo
echo "files:"
echo "  $out/alerts.jsonl        tier changes, warnings, clearances (JSON, one per line)"
echo "  $out/profiles.jsonl      every customer's profile as of 2026-01-01 (what a look-up shows)"
echo "  $out/dead_letters.jsonl  rejected input with reason codes"
echo "  $out/replay.log          every alert in readable form"
