#!/usr/bin/env bash
# The 7-Zip workload of benches/compare.sh run natively on the host: the floor an emulator's
# 7-Zip time is measured against (docs/benchmarks.md).
#
#   benches/native-7zip.sh              # 5 runs, prints each and the median host seconds
#   RUNS=9 benches/native-7zip.sh
#
# It builds the guest's input exactly as the guest's /init does (debian-guest-bench.sh: the
# initramfs's busybox, 7z.so and kernel modules, concatenated, SEVENZIP copies) from the
# bench guest's initramfs, then times `7zz a -mmt1 -mx5 -md4m` and `7zz t -mmt1` on it, as the
# guest does between its EMU-7Z-BEGIN and EMU-7Z-END markers. The host's 7-Zip comes from
# Debian's `7zip` package (`7zz`); its archive is byte-identical in size to the guest's, so
# both do the same work (the versions differ: see the guest's `versions` file).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v 7zz >/dev/null; then
  echo "native-7zip.sh: 7zz is missing (apt-get install 7zip)" >&2
  exit 1
fi
for tool in cpio python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "native-7zip.sh: $tool is missing (apt-get install $tool)" >&2
    exit 1
  fi
done
guest=$("$repo/scripts/debian-guest-bench.sh" riscv64)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/ir"
(cd "$work/ir" && zcat "$guest/initrd.gz" | cpio -id --quiet)
one="$work/in1"
cat "$work/ir/bin/busybox" "$work/ir/usr/lib/7zip/7z.so" "$work/ir"/lib/modules/*.ko >"$one"
: >"$work/in"
for _ in $(seq "${SEVENZIP:-1}"); do cat "$one" >>"$work/in"; done
echo "input: $(wc -c <"$work/in") bytes; $(7zz | sed -n 2p)"
python3 - "$work" "${RUNS:-5}" <<'EOF'
import os, statistics, subprocess, sys, time

work, runs = sys.argv[1], int(sys.argv[2])
archive = os.path.join(work, "a.7z")
times = []
for i in range(runs):
    if os.path.exists(archive):
        os.remove(archive)
    t0 = time.monotonic()
    for cmd in (["7zz", "a", "-mmt1", "-mx5", "-md4m", archive, os.path.join(work, "in")],
                ["7zz", "t", "-mmt1", archive]):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    times.append(time.monotonic() - t0)
    print(f"run {i + 1}: {times[-1]:.3f} s ({os.path.getsize(archive)} bytes archived)")
print(f"median of {runs}: {statistics.median(times):.3f} s")
EOF
