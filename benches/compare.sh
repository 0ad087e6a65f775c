#!/usr/bin/env bash
# emu vs QEMU 7.2 whole-system benchmark: one command (docs/benchmarks.md).
#
#   benches/compare.sh                 # every workload, 3 runs each, medians and emu/QEMU ratios
#   RUNS=5 ONLY="boot 7zip" benches/compare.sh
#
# Workloads, each run on QEMU and emu alternately with the same kernel, initramfs and options:
#   boot         host time from start to the guest /init's EMU-INIT-READY line
#   boot-phases  the same boot with the kernel's early console; also prints each boot phase's
#                time (to the firmware banner, kernel start, ftrace, clocksource, /init, ready)
#   7zip         host time between the markers around Debian's 7zip compressing and testing a
#                fixed ~5 MB file with one thread (SEVENZIP=N: N copies)
#   procs        host time between the markers around PROCS (200) short-lived busybox processes
#   bench-*      bare-metal test-roms/riscv64/bench programs, whole-process host time
#                (QEMU: -M spike -bios none -kernel X)
#
# Environment: RUNS (3), ONLY (workload names), BIOS (fw: Debian's OpenSBI on both, the
# default; `default`: each emulator's default firmware), EMU_ARGS (extra emu options, e.g.
# "--stats"), MEM (512M), PROCS (200), SEVENZIP (1), QEMU (qemu-system-riscv64),
# EMU (target/release/emu, built here with cargo build --release unless EMU is set).
# Not part of CI: about 10-15 minutes on two host cores.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
qemu="${QEMU:-qemu-system-riscv64}"
if ! command -v "$qemu" >/dev/null; then
  echo "compare.sh: $qemu is missing (apt-get install qemu-system-misc)" >&2
  exit 1
fi
if ! command -v python3 >/dev/null; then
  echo "compare.sh: python3 is missing" >&2
  exit 1
fi
if [ -z "${EMU:-}" ]; then
  (cd "$repo" && cargo build --release --quiet --bin emu)
  emu="$repo/target/release/emu"
else
  emu="$EMU"
fi
guest=$("$repo/scripts/debian-guest-bench.sh" riscv64)
roms="$repo/target/bench-roms"
make -s -C "$repo/test-roms/riscv64" bench OUT="$roms"

exec python3 "$repo/benches/compare.py" --emu "$emu" --qemu "$qemu" --qemu-spike "$qemu" \
  --guest "$guest" --roms "$roms" --runs "${RUNS:-3}" --only "${ONLY:-}" --bios "${BIOS:-fw}" \
  --emu-args "${EMU_ARGS:-}" --mem "${MEM:-512M}" --procs "${PROCS:-200}" \
  --sevenzip "${SEVENZIP:-}" --log-dir "${LOG_DIR:-/tmp/emu-bench}"
