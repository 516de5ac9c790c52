#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Set up as a new Debian 12 machine would, then build the module for every
# kernel of tools/testing/kernels:
#
#   tools/testing/new-machine.sh
#
# In a minimal Debian 12 root (debootstrap --variant=minbase, with the APT
# sources of a fresh install) and with an empty cache of its own, it runs
# tools/testing/setup.sh: the APT sources, every package, and the download,
# unpack and headers fix-ups of every kernel line. Then, for each kernel, it
# builds the module as a user does, `make KDIR=<the unpacked headers>` in a
# copy of the clone's sources (in the kernel's Debian root when it has one),
# checks its vermagic, and builds the tests' initramfs with it. It fails on
# the first error. The root is unpacked from a tarball kept in
# $VB_CACHE/new-machine and made again once a week; the root, its cache and
# its mounts are gone when the script ends.
#
# Left out, as too slow to repeat each time: the emulating QEMU's build
# (build-qemu.sh) and the Debian roots of tools/testing/kernels other than
# the machine itself (Debian 13's): those of $VB_CACHE/roots are reused as
# they are (setup.sh refreshes them but does not make them), so run
# setup.sh before this. Nothing boots either: no guest, no KUnit.
set -euo pipefail

TESTING=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$(dirname "$TESTING")")
CACHE=${VB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-balloon}
MIRROR=http://deb.debian.org/debian
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# The new machine's own cache, inside its root.
INNER_CACHE=/var/tmp/virtio-balloon

base=$CACHE/new-machine
tarball=$base/bookworm-minbase.tar.zst
log=$base/last.log
mkdir -p "$base"
: >"$log"
start=$SECONDS

say() { echo "new-machine: $* ($((SECONDS - start)) s)"; }
fail() {
	echo "new-machine: $* ($((SECONDS - start)) s); the end of $log:"
	tail -n 40 "$log" | sed 's/^/    /'
	exit 1
}

# Roots of runs that ended without cleaning up: a root is in use while its
# run holds the lock beside it (taken the moment the lock is made).
for lock in $(find "$base" -maxdepth 1 -name 'root.*.lock' -mmin +1); do
	exec 8>"$lock"
	if flock -n 8; then
		$SUDO rm -rf "${lock%.lock}"
		rm -f "$lock"
	fi
	exec 8>&-
done

# The minimal root, made again when a week old.
exec 9>"$base/tarball.lock"
flock 9
if [ -z "$(find "$tarball" -mtime -7 2>/dev/null)" ]; then
	say "making a minimal Debian 12 root with debootstrap"
	tmp=$(mktemp -d "$base/make.XXXXXX")
	$SUDO debootstrap --variant=minbase bookworm "$tmp/root" "$MIRROR" >"$log" 2>&1 ||
		{ $SUDO rm -rf "$tmp"; fail "debootstrap failed"; }
	$SUDO tar -C "$tmp/root" --numeric-owner -cf - . | zstd -q -T0 >"$tarball.tmp"
	mv "$tarball.tmp" "$tarball"
	$SUDO rm -rf "$tmp"
fi
exec 9>&-

root=$(mktemp -d "$base/root.XXXXXX")
exec 8>"$root.lock"
flock 8
cleanup() {
	# The mounts were private to in-root.sh's namespaces: only files remain.
	$SUDO rm -rf "$root"
	rm -f "$root.lock"
}
trap cleanup EXIT
trap 'exit 1' TERM INT
zstd -dc "$tarball" | $SUDO tar -C "$root" --numeric-owner -xpf -

# APT's sources as a fresh install has them (no backports: setup.sh adds it).
$SUDO rm -f "$root/etc/apt/sources.list"
$SUDO tee "$root/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR}-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Only faster: dpkg does not sync every file it writes in this throw-away root.
echo force-unsafe-io | $SUDO tee "$root/etc/dpkg/dpkg.cfg.d/unsafe-io" >/dev/null

# The other releases' roots, reused: the new cache points at them.
$SUDO mkdir -p "$root$INNER_CACHE/roots"
for r in $(sed -e 's/#.*//' "$TESTING/kernels" | awk 'NF >= 2 && $2 != "host" { print $2 }' | sort -u); do
	[ -e "$CACHE/roots/$r/.done" ] ||
		{ echo "new-machine: no Debian $r root in $CACHE/roots: run tools/testing/setup.sh first"; exit 1; }
	$SUDO ln -s "$(realpath "$CACHE/roots/$r")" "$root$INNER_CACHE/roots/$r"
done
say "a minimal Debian 12 root in $root"

in_root() { bash "$TESTING/in-root.sh" "$root" "$@"; }

kernels=$(in_root / env VB_CACHE="$INNER_CACHE" bash "$TESTING/setup.sh" 2>>"$log") ||
	fail "setup.sh failed in the new machine"
say "setup.sh: $(echo "$kernels" | wc -l) kernels"

# What each kernel's build and tests need, in the new machine: the module
# (make KDIR=..., in the kernel's root when it has one), then the initramfs
# the tests boot with it.
while read -r label v where _; do
	src=$INNER_CACHE/build/$label
	kdir=$INNER_CACHE/headers/$v/usr/src/linux-headers-$v
	$SUDO mkdir -p "$root$src"
	$SUDO cp -a "$REPO/Kbuild" "$REPO/Makefile" "$REPO/drivers" "$REPO/include" "$root$src"
	build=(make KDIR="$kdir")
	[ "$where" = host ] || build=(bash "$TESTING/in-root.sh" "$where" "$src" "${build[@]}")
	echo "== $label: ${build[*]}" >>"$log"
	in_root "$src" env VB_CACHE="$INNER_CACHE" "${build[@]}" >>"$log" 2>&1 ||
		fail "$label: the module does not build for $v"
	vermagic=$(in_root / modinfo -F vermagic "$src/virtio_balloon.ko" 2>>"$log") ||
		fail "$label: modinfo failed"
	[ "${vermagic%% *}" = "$v" ] || fail "$label: the module is for '${vermagic%% *}', not $v"
	in_root / env VB_CACHE="$INNER_CACHE" python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
import initramfs
print(initramfs.build_initramfs(sys.argv[2], sys.argv[3]))
' "$TESTING" "$v" "$src/virtio_balloon.ko" >>"$log" 2>&1 || fail "$label: no initramfs for $v"
	say "$label: module and initramfs for $v"
done <<<"$kernels"
say "passed"
