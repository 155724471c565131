#!/usr/bin/env bash
# The whole test suite: format check, clippy with warnings as errors, every test.
# Usage: scripts/test.sh        (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

for tool in cargo rustfmt cargo-clippy; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is not installed; install the Rust stable toolchain with the rustfmt and clippy components" >&2
    exit 2
  fi
done

step "tools (cached: Apache Kafka from Maven Central ~1 min the first time, promtool from Debian)"
scripts/install-tools.sh kafka promtool >/dev/null

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy --all-targets -D warnings)"
cargo clippy --all-targets --locked -- -D warnings

step "doc tests"
cargo test --locked --doc

step "tests (unit, property, fuzz, schema, CLI, Kafka: mock cluster and Apache Kafka; benches are built by clippy above)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --lib --bins --tests --examples 2>&1 | tee "$log"

# One closing line for all test binaries together.
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "all checks passed"
echo "tests: ${passed} passed, ${failed} failed"
