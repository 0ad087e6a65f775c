#!/usr/bin/env bash
# Build the RISC-V test ROMs and run one on emu: scripts/run-rom.sh [NAME] [emu options...]
# NAME defaults to hello. Example: scripts/run-rom.sh rv64m --engine interp --stats
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-hello}
shift || true
out=target/test-roms
make -s -C test-roms/riscv64 OUT="$PWD/$out"
cargo build --release --quiet
exec target/release/emu --arch riscv64 "$@" -bios none -kernel "$out/$name.elf"
