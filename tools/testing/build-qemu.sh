#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the QEMU that acts like the hosts our machines cannot run, once, into
# the cache: Debian's QEMU source (the version of the installed
# qemu-system-x86) with tools/testing/qemu-host-emulation.patch, which adds
# test-only switches, read from QEMU's environment:
#
#   QEMU_TEST_KVM_DIRTY_LOG=1  dirty logging as on KVM with manual protection
#                              (a page dirty at a sync is not logged again
#                              until its chunk's dirty log is cleared); it
#                              prints each hint that makes the first clear
#                              of its chunk in a round, and a summary
#   QEMU_TEST_DISCARD_HINTS=1  zero every hinted range on receipt (Firecracker)
#   QEMU_TEST_BALLOON_STALL=F  while file F exists, leave inflate and deflate
#                              messages unanswered (a device that hangs)
#   QEMU_TEST_FREE_PAGE_VQ_SIZE=N  a free page queue of N entries instead of
#                              1024 (a device other than QEMU)
#   QEMU_TEST_REPORTING_VQ_SIZE=N  a reporting queue of N entries instead of 32
#
# It also fixes a TCG bug of QEMU 10.0.2 that aborts the migration of a guest
# with a second RAM block (a pc-dimm).
#
# Prints the path of the binary. The build is keyed by the QEMU version and
# the patch, and a changed patch rebuilds only the files it touches.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${VB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-balloon}
PATCH=$REPO/tools/testing/qemu-host-emulation.patch
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

log() { echo "build-qemu: $*" >&2; }

# 1:10.0.2+ds-2+deb13u1~bpo12+1 -> 10.0.2+ds
full=$(dpkg-query -W -f='${Version}' qemu-system-x86)
upstream=${full#*:}
upstream=${upstream%-*}
key=$upstream-$(sha256sum "$PATCH" | cut -c1-12)
base=$CACHE/qemu-emulation
out=$base/$key/qemu-system-x86_64
if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }
for p in gcc make ninja-build pkg-config python3-venv libglib2.0-dev zlib1g-dev libfdt-dev \
	 patch xz-utils; do
	have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi
# QEMU 10 wants meson 1.5 or later: bookworm-backports has it.
if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' meson 2>/dev/null || echo 0)" ge 1.5; then
	log "installing meson from bookworm-backports"
	$SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports meson >&2
fi

# The .orig tarball of the installed version. apt-get source needs a deb-src
# line; the Debian part of the source is not needed (and not always there).
mkdir -p "$base"
tarball=$base/qemu_$upstream.orig.tar.xz
if [ ! -s "$tarball" ]; then
	if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/vb-bookworm-backports-src.sources; then
		log "adding bookworm-backports sources to APT"
		$SUDO tee /etc/apt/sources.list.d/vb-bookworm-backports-src.sources >/dev/null <<-'SRC'
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: bookworm-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		SRC
		$SUDO apt-get update -q >&2
	fi
	tmp=$(mktemp -d "$base/dl.XXXXXX")
	(cd "$tmp" && apt-get source --download-only -q "qemu=$full" >&2) || true
	[ -s "$tmp/qemu_$upstream.orig.tar.xz" ] ||
		{ log "could not download qemu_$upstream.orig.tar.xz"; rm -rf "$tmp"; exit 1; }
	mv "$tmp/qemu_$upstream.orig.tar.xz" "$tarball"
	rm -rf "$tmp"
fi

# One source tree and build directory per QEMU version. The patch applied to
# the tree is kept beside it, so that a new patch replaces the old one in
# place and ninja rebuilds only what they touch.
src=$base/src-$upstream
build=$base/build-$upstream
if [ ! -e "$src/.vb-unpacked" ]; then
	log "unpacking $tarball"
	rm -rf "$src" "$build"
	mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=1
	# The +ds tarball has neither the bundled wheels, the dtc subproject
	# nor the firmware blobs: use the system's meson and libfdt, no
	# test-only Python package, and the firmware of Debian's packages
	# (-L at run time).
	sed -i '/^pycotap/d' "$src/pythondeps.toml"
	sed -i 's/unpack_edk2_blobs = bzip2.found()/unpack_edk2_blobs = false/' "$src/meson.build"
	touch "$src/.vb-unpacked"
fi
if ! cmp -s "$PATCH" "$src/.vb-patch"; then
	if [ -e "$src/.vb-patch" ]; then
		patch -d "$src" -p1 -R -s <"$src/.vb-patch"
		rm "$src/.vb-patch"
	fi
	patch -d "$src" -p1 -s <"$PATCH"
	cp "$PATCH" "$src/.vb-patch"
fi
if [ ! -e "$build/build.ninja" ]; then
	log "configuring QEMU $upstream"
	rm -rf "$build"
	mkdir -p "$build"
	# Debian's python3 sees Debian's meson; a python3 earlier on PATH may not.
	(cd "$build" && PATH=/usr/bin:/bin:/usr/sbin:/sbin "$src/configure" \
		--python=/usr/bin/python3 --target-list=x86_64-softmmu \
		--without-default-features --enable-tcg --disable-docs \
		--disable-download --disable-install-blobs --disable-werror) >"$base/configure.log" 2>&1 ||
		{ tail -n 20 "$base/configure.log" >&2; exit 1; }
fi
log "building QEMU $upstream with the host emulation (about 10 minutes the first time)"
(cd "$build" && PATH=/usr/bin:/bin:/usr/sbin:/sbin ninja -j"$(nproc)" qemu-system-x86_64) \
	>"$base/build.log" 2>&1 || { tail -n 30 "$base/build.log" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
cp "$build/qemu-system-x86_64" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
