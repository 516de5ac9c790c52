#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build, the tests and the demo need on a Debian 12
# machine, and unpack the guest kernels and their headers into the cache.
# Safe to run again: it only does what is missing. Prints the resolved kernel
# versions on stdout as "flavour version" lines (6.1 and 6.12).
set -euo pipefail

CACHE=${VB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-balloon}
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

log() { echo "setup: $*" >&2; }

if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
	log "adding bookworm-backports to APT's sources"
	$SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	$SUDO apt-get update -q >&2
fi

# The metapackages name the current ABI; resolve them rather than pinning one.
dep_of() { apt-cache depends "$1" 2>/dev/null | awk '/Depends:/ { print $2; exit }'; }
resolve() {
	local v
	v=$(dep_of "linux-image-amd64$1")
	if [ -z "$v" ]; then
		$SUDO apt-get update -q >&2
		v=$(dep_of "linux-image-amd64$1")
	fi
	[ -n "$v" ] || { log "cannot resolve linux-image-amd64$1"; exit 1; }
	v=${v#linux-image-}
	echo "$v"
}
K61=$(resolve "")
K612=$(resolve /bookworm-backports)

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }
for p in gcc gcc-12 make sparse busybox-static cpio dkms kmod xz-utils zstd python3 \
	 python3-matplotlib bc flex bison libelf-dev libssl-dev libc6-dev \
	 linux-source-6.1 linux-source-6.12; do
	have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi
bpo=()
if ! have qemu-system-x86 || ! dpkg-query -W -f='${Version}' qemu-system-x86 | grep -q '^1:1[0-9]'; then
	bpo+=(qemu-system-x86)
fi
if [ ${#bpo[@]} -gt 0 ]; then
	log "installing from bookworm-backports: ${bpo[*]}"
	$SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "${bpo[@]}" >&2
fi

# Download packages and unpack them all into one fresh directory, instead of
# installing them: nothing touches the machine's own kernels or boot set-up.
unpack() {
	local dir=$1 tmp deb
	shift
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -q "$@" >&2)
	rm -rf "$dir"
	mkdir -p "$dir"
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$dir"
	done
	rm -rf "$tmp"
}

# Guest kernels.
for v in "$K61" "$K612"; do
	dir=$CACHE/kernels/$v
	[ -e "$dir/.done" ] && continue
	log "unpacking guest kernel $v"
	unpack "$dir" "linux-image-$v"
	# The package ships no modules.dep: the harness resolves dependencies.
	depmod -b "$dir" "$v"
	touch "$dir/.done"
done

# Headers, likewise: bookworm-backports' headers package depends on its
# linux-image, so installing it would put a kernel on the machine and make it
# the default boot entry. The -amd64 package, its -common and kbuild packages
# go under one root; their symlinks are relative, and the one absolute path
# (the Makefile's include) is pointed into it.
for v in "$K61" "$K612"; do
	dir=$CACHE/headers/$v
	[ -e "$dir/.done" ] && continue
	log "unpacking headers $v"
	unpack "$dir" "linux-headers-$v" $(apt-cache depends "linux-headers-$v" |
		awk '$1 == "Depends:" && $2 ~ /^linux-(headers|kbuild)-/ { print $2 }')
	sed -i "s|^include /usr/src/|include $dir/usr/src/|" "$dir/usr/src/linux-headers-$v/Makefile"
	touch "$dir/.done"
done

echo "6.1 $K61"
echo "6.12 $K612"
