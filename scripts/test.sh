#!/usr/bin/env bash
# Provision (scripts/setup.sh), then build once in release mode and run every test of the
# workspace: unit tests, IR file tests,
# the CLI tests, and every test ROM on every engine (tests/roms.rs builds test-roms/riscv64 with
# riscv64-unknown-elf-gcc). Extra arguments go to `cargo test`. Ends with cargo's summary lines.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages and the Linux guest the tests use (a no-op when present).
scripts/setup.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

echo
echo "==== summary ===="
grep -E '^\s+(Running|Doc-tests) |^test result:|^error|FAILED|failures:$' "$log" || true
if [ "$status" -eq 0 ]; then
  echo "all tests passed"
else
  echo "some tests FAILED (cargo exit status $status)"
fi
exit "$status"
