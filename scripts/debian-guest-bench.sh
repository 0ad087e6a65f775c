#!/usr/bin/env bash
# Build the benchmark guest for benches/compare.sh: scripts/debian-guest.sh's initramfs plus
# Debian trixie's dynamically linked 7zip package (with the shared libraries it needs) and an
# /init with benchmark modes.
#
#   scripts/debian-guest-bench.sh riscv64     # prints the cache directory on stdout
#
# The directory (${EMU_GUEST_CACHE:-~/.cache/emu-guest}/riscv64/bench-<key>/, with a
# `bench-current` symlink) holds Image, fw_dynamic.bin (links to the base guest's), initrd.gz
# (the benchmark initramfs) and versions. Packages come from the mirror this machine's apt
# configuration names, with a separate apt state (never the host's own); a second run with the
# cache present does no network access.
#
# /init understands, on the kernel command line:
#   emu.test=poweroff       print EMU-INIT-READY, power off
#   emu.test=7zip[:N]       print EMU-7Z-BEGIN, compress N (default 1) copies of a fixed ~5 MB
#                           file (busybox, 7z.so, the modules) with `7z a -mmt1 -mx5 -md4m`,
#                           test the archive (`7z t`), print EMU-7Z-END status=A,T, power off
#   emu.test=7zb[:ARGS]     the same markers around `7z b -mmt1 ARGS` (ARGS comma-separated;
#                           default -md18)
#   emu.test=procs[:N]      print EMU-PROCS-BEGIN, run N (default 200) short-lived busybox
#                           processes, print EMU-PROCS-END, power off
#   emu.test=shell          a shell on the console
set -euo pipefail

arch="${1:-riscv64}"
if [ "$arch" != riscv64 ]; then
  echo "debian-guest-bench.sh: only riscv64 is supported (got '$arch')" >&2
  exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
base=$("$here/debian-guest.sh" "$arch")

root="${EMU_GUEST_CACHE:-$HOME/.cache/emu-guest}/$arch"
# The image depends on the base guest and on this script (its /init).
key=$( (echo "$base"; cat "$0") | sha256sum | cut -c1-16)
out="$root/bench-$key"
if [ -z "${EMU_GUEST_REFRESH:-}" ] && [ -f "$out/complete" ]; then
  ln -sfn "bench-$key" "$root/bench-current"
  readlink -f "$root/bench-current"
  exit 0
fi

# The Debian mirror this machine already uses.
. "$(dirname "$0")/debian-mirror.sh"
if ! mirror=$(debian_mirror); then
  echo "debian-guest-bench.sh: no Debian mirror found in the apt configuration" >&2
  exit 1
fi

apt_dir="$root/bench-apt"
mkdir -p "$apt_dir/etc/preferences.d" "$apt_dir/state/lists/partial" \
  "$apt_dir/cache/archives/partial" "$root/bench-debs"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [ -f "$keyring" ]; then
  echo "deb [arch=$arch signed-by=$keyring] $mirror trixie main" >"$apt_dir/etc/sources.list"
else
  echo "deb [arch=$arch] $mirror trixie main" >"$apt_dir/etc/sources.list"
fi
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
  -o "Dir::State=$apt_dir/state"
  -o "Dir::State::status=/dev/null"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Architecture=$arch"
  -o "APT::Architectures=$arch"
  -o "Debug::NoLocking=1"
  -o "Acquire::Languages=none"
  -o "APT::Sandbox::User=root"
)
echo "debian-guest-bench.sh: apt-get update (trixie/$arch from $mirror)" >&2
apt-get "${apt_opts[@]}" -qq update >&2

# 7zip and the libraries its binaries link against (libc6's Depends is libgcc-s1 only).
pkgs=(7zip libc6 libstdc++6 libgcc-s1)
version_of() { apt-cache "${apt_opts[@]}" show "$1" | awk '/^Version:/ { print $2; exit }'; }
versions=""
for p in "${pkgs[@]}"; do
  versions+="$p $(version_of "$p")"$'\n'
done
echo "debian-guest-bench.sh: downloading ${pkgs[*]}" >&2
(cd "$root/bench-debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" >&2)
rm -rf "$out.tmp"
mkdir -p "$out.tmp/x" "$out.tmp/initramfs"
for p in "${pkgs[@]}"; do
  deb=$(ls -t "$root/bench-debs/${p}_"*.deb | head -n1)
  dpkg-deb -x "$deb" "$out.tmp/x"
done
x="$out.tmp/x"
ir="$out.tmp/initramfs"
(cd "$ir" && gzip -dc "$base/initrd.gz" | cpio -id --quiet)

# 7-Zip: the 7z front end execs lib/7zip/7z with 7z.so beside it; copy the package's files and
# the runtime libraries (the dynamic loader, libc, libm, libstdc++, libgcc_s).
mkdir -p "$ir/usr/lib/riscv64-linux-gnu" "$ir/lib"
cp -a "$x/usr/bin/." "$ir/usr/bin/" 2>/dev/null || true
[ -d "$x/usr/lib/7zip" ] && cp -a "$x/usr/lib/7zip" "$ir/usr/lib/"
for d in "$x/usr/lib/riscv64-linux-gnu" "$x/lib/riscv64-linux-gnu"; do
  [ -d "$d" ] || continue
  find "$d" -maxdepth 1 \( -name 'ld-linux*' -o -name 'libc.so*' -o -name 'libm.so*' \
    -o -name 'libstdc++.so*' -o -name 'libgcc_s.so*' \) -exec cp -a {} "$ir/usr/lib/riscv64-linux-gnu/" \;
done
# The ELF interpreter path (/lib/ld-linux-riscv64-lp64d.so.1) and the library search path.
for f in "$ir"/usr/lib/riscv64-linux-gnu/ld-linux*; do
  ln -sf "/usr/lib/riscv64-linux-gnu/$(basename "$f")" "$ir/lib/$(basename "$f")"
done
ln -sfn usr/lib/riscv64-linux-gnu "$ir/lib64" 2>/dev/null || true
if [ ! -e "$ir/usr/bin/7z" ]; then
  echo "debian-guest-bench.sh: the 7zip package has no usr/bin/7z" >&2
  exit 1
fi

cat >"$ir/init" <<'EOF'
#!/bin/sh
# emu benchmark guest (scripts/debian-guest-bench.sh). Kernel command line:
#   emu.test=poweroff | 7zip[:N] | 7zb[:ARGS] | procs[:N] | shell
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/usr/lib/riscv64-linux-gnu
/bin/busybox --install -s /bin 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/lib/modules/$m.ko" || echo "init: insmod $m failed"; done </etc/modules
test=shell
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    emu.test=*) test="${arg#emu.test=}" ;;
  esac
done
echo "EMU-INIT-READY"
case "$test" in
  poweroff) poweroff -f ;;
  7zb*)
    args="${test#7zb}"
    args="${args#:}"
    [ -n "$args" ] || args="-md18"
    args=$(echo "$args" | tr ',' ' ')
    cd /tmp
    echo "EMU-7Z-BEGIN"
    7z b -mmt1 $args
    echo "EMU-7Z-END status=$?"
    poweroff -f ;;
  7zip*)
    # A fixed amount of work: 7z b sizes its decompression passes from the compression speed
    # it measures with the guest clock, so its host time is not comparable between emulators.
    n="${test#7zip}"
    n="${n#:}"
    [ -n "$n" ] || n=1
    cat /bin/busybox /usr/lib/7zip/7z.so /lib/modules/*.ko >/tmp/in1
    : >/tmp/in
    i=0
    while [ "$i" -lt "$n" ]; do cat /tmp/in1 >>/tmp/in; i=$((i + 1)); done
    rm -f /tmp/in1
    cd /tmp
    echo "EMU-7Z-BEGIN $(wc -c </tmp/in) bytes"
    7z a -mmt1 -mx5 -md4m /tmp/a.7z /tmp/in >/dev/null
    s1=$?
    7z t -mmt1 /tmp/a.7z >/dev/null
    s2=$?
    echo "EMU-7Z-END status=$s1,$s2 $(wc -c </tmp/a.7z) bytes"
    poweroff -f ;;
  procs*)
    n="${test#procs}"
    n="${n#:}"
    [ -n "$n" ] || n=200
    echo "EMU-PROCS-BEGIN"
    i=0
    while [ "$i" -lt "$n" ]; do
      /bin/busybox true
      /bin/busybox echo "$i" | /bin/busybox sed 's/0/o/' >/dev/null
      /bin/busybox ls / >/dev/null
      /bin/busybox uname -a >/dev/null
      i=$((i + 4))
    done
    echo "EMU-PROCS-END"
    poweroff -f ;;
esac
echo "EMU-SHELL"
exec setsid cttyhack sh
EOF
chmod 755 "$ir/init"
(cd "$ir" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -6n >"$out.tmp/initrd.gz")
ln -s "$base/Image" "$out.tmp/Image"
ln -s "$base/fw_dynamic.bin" "$out.tmp/fw_dynamic.bin"
{ cat "$base/versions"; printf '%s' "$versions"; } >"$out.tmp/versions"
echo "$base" >"$out.tmp/base"
rm -rf "$x" "$ir"
touch "$out.tmp/complete"
rm -rf "$out"
mv "$out.tmp" "$out"
ln -sfn "bench-$key" "$root/bench-current"
readlink -f "$root/bench-current"
