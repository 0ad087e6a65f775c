#!/usr/bin/env bash
# Fetch Debian 13 (trixie) guest files and build a small initramfs for emu's Linux boot tests.
#
#   scripts/debian-guest.sh riscv64        # prints the cache directory on stdout
#
# Downloads, with apt and a separate apt state (never the host's own), the packages
# linux-image-riscv64 (followed to the real linux-image-6.12.* package), busybox-static and
# opensbi, extracts them with dpkg-deb, and builds initrd.gz: busybox, the virtio modules the
# kernel has as modules (virtio_mmio, virtio_blk, virtio_net and its deps, virtio-rng) and an
# /init that mounts proc/sys/dev, loads them, prints EMU-INIT-READY and then does what the
# kernel command line asks (emu.test=..., see the init script below) or runs a shell on the
# console. Nothing is written into the repository: everything lives in
#   ${EMU_GUEST_CACHE:-~/.cache/emu-guest}/riscv64/<kernel version>_<busybox>_<opensbi>/
# with a `current` symlink to the newest. A second run with the cache present does no network
# access (EMU_GUEST_REFRESH=1 checks the mirror for newer packages).
#
# Files in the cache directory: Image (the kernel, a RISC-V Image with an EFI stub),
# initrd.gz, fw_dynamic.bin (OpenSBI), config (the kernel's .config), versions.
#
# Needs: apt-get, dpkg-deb, xz, gzip, cpio (Debian packages apt, dpkg, xz-utils, gzip, cpio).
set -euo pipefail

arch="${1:-riscv64}"
if [ "$arch" != riscv64 ]; then
  echo "debian-guest.sh: only riscv64 is supported (got '$arch')" >&2
  exit 1
fi
for tool in apt-get apt-cache dpkg-deb xz gzip cpio; do
  if ! command -v "$tool" >/dev/null; then
    echo "debian-guest.sh: '$tool' is missing (apt-get install apt dpkg xz-utils gzip cpio)" >&2
    exit 1
  fi
done

root="${EMU_GUEST_CACHE:-$HOME/.cache/emu-guest}/$arch"
mkdir -p "$root"
if [ -z "${EMU_GUEST_REFRESH:-}" ] && [ -f "$root/current/complete" ]; then
  readlink -f "$root/current"
  exit 0
fi

# The Debian mirror this machine already uses.
. "$(dirname "$0")/debian-mirror.sh"
if ! mirror=$(debian_mirror); then
  echo "debian-guest.sh: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2
  exit 1
fi

apt_dir="$root/apt"
mkdir -p "$apt_dir/etc/preferences.d" "$apt_dir/etc/apt.conf.d" "$apt_dir/state/lists/partial" \
  "$apt_dir/cache/archives/partial" "$root/debs"
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
echo "debian-guest.sh: apt-get update (trixie/$arch from $mirror)" >&2
apt-get "${apt_opts[@]}" -qq update >&2

# linux-image-riscv64 is a metapackage: its Depends names the real linux-image-6.12.* package.
kpkg=$(apt-cache "${apt_opts[@]}" show linux-image-riscv64 | awk -F': ' '/^Depends:/ { print $2; exit }' |
  tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep '^linux-image-[0-9]' | head -n1)
if [ -z "$kpkg" ]; then
  echo "debian-guest.sh: linux-image-riscv64 does not depend on a linux-image-6.* package" >&2
  exit 1
fi
version_of() { apt-cache "${apt_opts[@]}" show "$1" | awk '/^Version:/ { print $2; exit }'; }
kver=$(version_of "$kpkg")
bver=$(version_of busybox-static)
over=$(version_of opensbi)
key=$(echo "${kpkg#linux-image-}_${kver}_busybox-${bver}_opensbi-${over}" | tr ':/+~' '....')
out="$root/$key"
if [ -f "$out/complete" ]; then
  ln -sfn "$key" "$root/current"
  readlink -f "$root/current"
  exit 0
fi

echo "debian-guest.sh: downloading $kpkg $kver, busybox-static $bver, opensbi $over" >&2
(cd "$root/debs" && apt-get "${apt_opts[@]}" -qq download "$kpkg" busybox-static opensbi >&2)
rm -rf "$out.tmp"
mkdir -p "$out.tmp/x"
for pkg in "$kpkg" busybox-static opensbi; do
  deb=$(ls -t "$root/debs/${pkg}_"*.deb | head -n1)
  dpkg-deb -x "$deb" "$out.tmp/x"
done
x="$out.tmp/x"
krel="${kpkg#linux-image-}"
cp "$x/boot/vmlinux-$krel" "$out.tmp/Image"
cp "$x/boot/config-$krel" "$out.tmp/config"
cp "$x/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin" "$out.tmp/fw_dynamic.bin"
printf 'kernel %s %s\nbusybox-static %s\nopensbi %s\n' "$kpkg" "$kver" "$bver" "$over" >"$out.tmp/versions"

# The initramfs tree.
ir="$out.tmp/initramfs"
mkdir -p "$ir"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,lib/modules,usr/bin,usr/sbin}
cp "$(ls "$x/usr/bin/busybox" "$x/bin/busybox" 2>/dev/null | head -n1)" "$ir/bin/busybox"
for applet in $("$ir/bin/busybox" --list 2>/dev/null || true); do
  [ "$applet" = busybox ] || ln -sf busybox "$ir/bin/$applet"
done
# The host may not run riscv64 binaries: fall back to the applets the init script uses.
for applet in sh mount insmod cat echo ls ip ifconfig ping poweroff reboot sync dd tar sleep \
  setsid cttyhack mkdir uname grep head tr sed seq rm cp mv hostname; do
  [ -e "$ir/bin/$applet" ] || ln -sf busybox "$ir/bin/$applet"
done
mkdir -p "$ir/dev"

# Modules: the virtio drivers built as modules (=m) in this kernel's config, with the modules
# they depend on (the `depends=` field of each module's .modinfo), dependencies first.
mods="$x/usr/lib/modules/$krel/kernel"
declare -A path_of=()
while IFS= read -r -d '' f; do
  n=$(basename "$f" .ko.xz)
  path_of[$n]="$f"
  path_of[${n//-/_}]="$f"
done < <(find "$mods" -name '*.ko.xz' -print0)
order=()
declare -A seen=()
add_module() {
  local name="${1//-/_}"
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  local f="${path_of[$name]:-}"
  if [ -z "$f" ]; then
    echo "debian-guest.sh: module $name not found (built in?)" >&2
    return 0
  fi
  local deps
  deps=$(xz -dc "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1)
  local d
  for d in ${deps//,/ }; do add_module "$d"; done
  order+=("$name")
}
for m in virtio_mmio virtio_blk virtio_net virtio_rng virtio_console; do
  if grep -q "^CONFIG_$(echo "$m" | tr a-z A-Z | sed 's/VIRTIO_RNG/HW_RANDOM_VIRTIO/')=y" "$out.tmp/config"; then
    continue # built in
  fi
  add_module "$m"
done
: >"$ir/etc/modules"
for m in "${order[@]}"; do
  xz -dc "${path_of[$m]}" >"$ir/lib/modules/$m.ko"
  echo "$m" >>"$ir/etc/modules"
done

cat >"$ir/init" <<'EOF'
#!/bin/sh
# emu test guest (scripts/debian-guest.sh). Kernel command-line parameters:
#   emu.ip=ADDR/PREFIX   configure eth0 (virtio-net) with a static address
#   emu.test=shell       (default) an interactive shell on the console
#   emu.test=poweroff    power off at once
#   emu.test=ping:ADDR   ping ADDR until it answers (at most 60 tries), print EMU-PING-OK or
#                        EMU-PING-FAIL, wait for the peer (emu.wait=SECONDS), power off
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s /bin 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
while read -r m; do insmod "/lib/modules/$m.ko" || echo "init: insmod $m failed"; done </etc/modules
test=shell
ip=""
wait=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    emu.test=*) test="${arg#emu.test=}" ;;
    emu.ip=*) ip="${arg#emu.ip=}" ;;
    emu.wait=*) wait="${arg#emu.wait=}" ;;
  esac
done
hostname emu
if [ -n "$ip" ]; then
  ip link set lo up
  ip link set eth0 up
  ip addr add "$ip" dev eth0
fi
echo "EMU-INIT-READY"
case "$test" in
  poweroff) poweroff -f ;;
  ping:*)
    peer="${test#ping:}"
    ok=EMU-PING-FAIL
    for i in $(seq 1 60); do
      if ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then ok=EMU-PING-OK; break; fi
    done
    echo "$ok $peer"
    sleep "$wait"
    poweroff -f ;;
esac
echo "EMU-SHELL"
exec setsid cttyhack sh
EOF
chmod 755 "$ir/init"
# Reproducible: fixed mtimes, sorted names, owner root, inode numbers from cpio --reproducible.
find "$ir" -exec touch -h -d @0 {} +
(cd "$ir" && find . | LC_ALL=C sort |
  cpio -o -H newc --quiet -R 0:0 --reproducible | gzip -9n >"$out.tmp/initrd.gz")
rm -rf "$x" "$ir"
touch "$out.tmp/complete"
rm -rf "$out"
mv "$out.tmp" "$out"
ln -sfn "$key" "$root/current"
readlink -f "$root/current"
