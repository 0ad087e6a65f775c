#!/usr/bin/env bash
# The longer disk crash campaign: tests/disk_crash.rs's SIGKILL test (a bare-metal guest writes
# checksummed 4 KiB blocks to virtio-blk, FLUSHes each and prints "FLUSHED i"; emu is killed
# with SIGKILL at a seeded random moment; every block whose FLUSHED line was seen must be intact)
# for ROUNDS rounds of RUNS runs, each round with a new seed. A failure prints the seed that
# reproduces it: EMU_CRASH_SEED=<seed> EMU_CRASH_RUNS=<runs> cargo test --release --test disk_crash
#
# usage: scripts/disk-crash.sh [ROUNDS (default 10)] [RUNS per round (default 200)]
# SEED=<n> fixes the first round's seed (default: from the clock; printed).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-10}
runs=${2:-200}
seed=${SEED:-$(date +%s%N)}

cargo test --release --test disk_crash --no-run
failed=0
for ((r = 0; r < rounds; r++)); do
  s=$((seed + r))
  echo "== round $((r + 1))/$rounds: EMU_CRASH_SEED=$s EMU_CRASH_RUNS=$runs"
  st=0
  out=$(EMU_CRASH_SEED=$s EMU_CRASH_RUNS=$runs cargo test --release --test disk_crash \
    every_flushed_block_survives_sigkill -- --nocapture 2>&1) || st=$?
  grep -E 'campaign|runs killed|panicked|test result' <<<"$out" || true
  if [ "$st" -ne 0 ]; then
    echo "$out" | tail -40
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "disk crash campaign FAILED (see the seeds above)"
  exit 1
fi
echo "disk crash campaign passed: $rounds rounds of $runs runs from seed $seed"
