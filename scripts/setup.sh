#!/usr/bin/env bash
# Install what emu's tests use, on a fresh Debian machine, then fetch the Linux guest.
#   scripts/setup.sh              Debian packages + the riscv64 Debian guest (scripts/debian-guest.sh)
#   scripts/setup.sh --toolchain  Debian packages only (enough to build and run the test ROMs)
# Idempotent and quick when everything is present: apt runs only if a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc-riscv64-unknown-elf: builds test-roms; qemu-system-misc: qemu-system-riscv64, the
# differential oracle and benchmark baseline; cmake + build-essential: SoftFloat's build (the FP
# oracle); device-tree-compiler: dtc for device-tree tests; gdb-multiarch: the scripted GDB session
# (tests/gdb.rs); strace: the fsync-order check of tests/disk_crash.rs; dpkg, xz-utils, gzip, cpio,
# debian-archive-keyring, ca-certificates: scripts/debian-guest.sh.
packages=(
  build-essential gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf make
  qemu-system-misc cmake device-tree-compiler gdb-multiarch strace
  dpkg xz-utils gzip cpio debian-archive-keyring ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "setup: missing Debian packages: ${missing[*]}; install them as root:" >&2
      echo "  apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    SUDO=sudo
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" != "--toolchain" ]; then
  # Debian's riscv64 kernel, busybox and OpenSBI, cached outside the repository.
  scripts/debian-guest.sh riscv64 >/dev/null
fi
