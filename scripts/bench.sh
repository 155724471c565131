#!/usr/bin/env bash
# Issue 18's throughput benchmarks, all in one run and printed side by side: replay
# against the floor on the generated mix and on the 1 M-customer file, alert bytes per
# input event (JSON and LZ4-compressed as the producer sends them), memory per customer
# at 1 M customers, and (unless BENCH_E2E=0) the service's catch-up on Apache Kafka
# against a bare consumer. Benchmarks print numbers; nothing here passes or fails.
#
# Usage: scripts/bench.sh [WORKDIR]      (default: target/bench; the generated files are
#        kept there and reused)
#   BENCH_E2E=0                skip the Apache Kafka catch-up (takes ~5 min)
#   BENCH_E2E_EVENTS=1000000   events of the catch-up (customers: half as many)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench}
mkdir -p "$work"
step() { printf '\n==> %s\n' "$*" >&2; }

step "build (release: churnwatch, examples split, memory, e2e)"
cargo build --release --locked --bin churnwatch --example split --example memory --example e2e >&2
bin=target/release/churnwatch
ex=target/release/examples

# The two files issue 18 names. `gen` is deterministic for a seed, so a kept file is reused.
gen() { # NAME CUSTOMERS EVENTS
  local f="$work/$1.jsonl"
  if [[ ! -s $f ]]; then
    step "generate $1: gen --customers $2 --events $3 --seed 42"
    "$bin" gen --customers "$2" --events "$3" --seed 42 --out "$f.tmp" >&2
    mv "$f.tmp" "$f"
  fi
  echo "$f"
}
mix=$(gen mix 250000 1000000)
big=$(gen big 1000000 4000000)

# The day after the file's last event (the day most lines carry as their latest, so that
# the generator's deliberately bad timestamps do not count): replay evaluates deadlines
# up to it, as the earlier rounds did with `--until 2025-08-19T00:00:00Z` on the mix.
until_of() {
  grep -o '"ts":"[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]' "$1" | cut -d'"' -f4 | sort | uniq -c |
    awk '$1 >= 100 {d = $2} END {print d}' | xargs -I{} date -u -d '{} + 1 day' +%Y-%m-%dT00:00:00Z
}

declare -A R
for name in mix big; do
  f=${!name}
  until=$(until_of "$f")
  step "$name: split FILE floor"
  floor=$("$ex/split" "$f" floor | grep -o 'floor[^:]*: [0-9]*' | grep -o '[0-9]*$')
  step "$name: replay --until $until (alerts and profiles written)"
  out=$("$bin" replay --input "$f" --output "$work/$name.alerts" --profiles "$work/$name.profiles" --until "$until" 2>&1 >/dev/null | grep '^replay:')
  echo "$out" >&2
  rate=$(echo "$out" | grep -o '([0-9]*/s)' | tr -dc 0-9)
  lines=$(wc -l <"$f")
  alerts=$(wc -l <"$work/$name.alerts")
  abytes=$(wc -c <"$work/$name.alerts")
  lz4b=$(lz4 -q -1 -B6 -c "$work/$name.alerts" | wc -c)  # 1 MiB blocks: librdkafka's batch.size
  R[$name.floor]=$floor
  R[$name.replay]=$rate
  R[$name.ratio]=$(awk -v a="$rate" -v b="$floor" 'BEGIN{printf "%.2f", a/b}')
  R[$name.alerts_per_event]=$(awk -v a="$alerts" -v b="$lines" 'BEGIN{printf "%.2f", a/b}')
  R[$name.bytes_per_event]=$(awk -v a="$abytes" -v b="$lines" 'BEGIN{printf "%.0f", a/b}')
  R[$name.lz4_per_event]=$(awk -v a="$lz4b" -v b="$lines" 'BEGIN{printf "%.0f", a/b}')
  rm -f "$work/$name.alerts" "$work/$name.profiles"
done

step "memory: examples/memory 1000000 5000000"
mem=$("$ex/memory" 1000000 5000000)
echo "$mem" >&2
R[mem]=$(echo "$mem" | grep -o 'RSS delta [0-9]*' | grep -o '[0-9]*$')

e2e=""
if [[ ${BENCH_E2E:-1} != 0 ]]; then
  scripts/install-tools.sh kafka >/dev/null
  n=${BENCH_E2E_EVENTS:-1000000}
  step "catch-up on Apache Kafka: e2e $n $((n / 2)) 0 0 0 0 (one round)"
  e2e=$(E2E_ROUNDS=1 RUST_LOG=warn "$ex/e2e" "$n" $((n / 2)) 0 0 0 0 | tee /dev/stderr | grep -E 'bare|ratio' || true)
fi

cat <<EOF

issue 18 benchmarks ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD))
| | mix (250 k customers, 1 M events) | 1 M-customer file (4 M events) | target |
|---|---|---|---|
| split FILE floor, events/s | ${R[mix.floor]} | ${R[big.floor]} | — |
| replay with alerts and profiles, events/s | ${R[mix.replay]} | ${R[big.replay]} | — |
| replay / floor | ${R[mix.ratio]} | ${R[big.ratio]} | ≥ 0.5 |
| alerts per input event | ${R[mix.alerts_per_event]} | ${R[big.alerts_per_event]} | — |
| alert bytes per input event (JSON) | ${R[mix.bytes_per_event]} | ${R[big.bytes_per_event]} | ≤ 300 (mix) |
| same, LZ4 in 1 MiB batches (as produced) | ${R[mix.lz4_per_event]} | ${R[big.lz4_per_event]} | — |
| memory per customer at 1 M (examples/memory) | ${R[mem]} B | | ≤ 200 B |
EOF
if [[ -n $e2e ]]; then
  echo
  echo "catch-up on Apache Kafka (target: run ≥ 0.3 × bare with at_least_once, 1 and 2 workers):"
  echo "$e2e"
fi
