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

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy --all-targets -D warnings)"
cargo clippy --all-targets --locked -- -D warnings

step "tests (unit, property, fuzz, schema, CLI; benches are built by clippy above)"
cargo test --locked --lib --bins --tests --examples

step "doc tests"
cargo test --locked --doc

echo
echo "all checks passed"
