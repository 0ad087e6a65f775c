#!/usr/bin/env bash
# Linux boot benchmark: emu and QEMU (`qemu-system-riscv64 -M virt`) boot the same Debian 13
# kernel and initramfs (scripts/debian-guest.sh) with the same options, alternating, RUNS times
# each (default 3). Measured: host wall time from process start to the initramfs's
# EMU-INIT-READY line. Printed: the median of each, and emu's time as a ratio of QEMU's.
#
#   benches/boot.sh            # RUNS=5 benches/boot.sh for more runs
#
# QEMU boots through its bundled OpenSBI; emu is measured with its built-in SBI (its default)
# and with the same OpenSBI (-bios fw_dynamic.bin from Debian's opensbi package).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
guest=$(scripts/debian-guest.sh riscv64)
cargo build --release --bin emu >&2
emu=target/release/emu
command -v qemu-system-riscv64 >/dev/null || { echo "boot.sh: qemu-system-riscv64 is missing" >&2; exit 1; }

common=(-M virt -m 512M -smp 1 -kernel "$guest/Image" -initrd "$guest/initrd.gz"
  -append "console=ttyS0 emu.test=poweroff")

# Seconds from start to the marker line (the guest then powers off by itself).
time_to_marker() {
  python3 - "$@" <<'EOF'
import subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
t = None
for line in p.stdout:
    if b"EMU-INIT-READY" in line and t is None:
        t = time.monotonic() - t0
try:
    p.wait(timeout=300)
except subprocess.TimeoutExpired:
    p.kill()
print("%.2f" % t if t is not None else "nan")
EOF
}

declare -a q e eo
for i in $(seq 1 "$runs"); do
  q+=("$(time_to_marker qemu-system-riscv64 "${common[@]}" -nographic)")
  e+=("$(time_to_marker "$emu" --arch riscv64 "${common[@]}" -serial stdio)")
  eo+=("$(time_to_marker "$emu" --arch riscv64 "${common[@]}" -serial stdio -bios "$guest/fw_dynamic.bin")")
  echo "run $i: qemu ${q[-1]} s, emu ${e[-1]} s, emu+OpenSBI ${eo[-1]} s" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mq=$(median "${q[@]}")
me=$(median "${e[@]}")
meo=$(median "${eo[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "Boot to /init marker, Debian $(awk '/^kernel/ { print $3 }' "$guest/versions") riscv64, median of $runs (wall s)"
printf '%-34s %8s %10s\n' "" "seconds" "vs QEMU"
printf '%-34s %8s %10s\n' "qemu-system-riscv64 (OpenSBI)" "$mq" "1.00"
printf '%-34s %8s %10s\n' "emu (built-in SBI)" "$me" "$(ratio "$me" "$mq")"
printf '%-34s %8s %10s\n' "emu -bios fw_dynamic.bin" "$meo" "$(ratio "$meo" "$mq")"
