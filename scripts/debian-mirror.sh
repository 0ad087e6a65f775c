# Sourced by scripts/debian-guest*.sh: `debian_mirror` prints the Debian mirror this machine's
# apt already uses (deb822 .sources first, then sources.list), or fails if there is none. The
# guest scripts never name a mirror of their own.
debian_mirror() {
  local f mirror=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    [ -n "$mirror" ] && break
  done
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\// && $i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$mirror" ] || return 1
  printf '%s\n' "$mirror"
}
