#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the build, the tests and the demo need on a Debian 12
# machine, make the Debian roots tools/testing/kernels asks for, and unpack
# each kernel listed there, its headers and its source into the cache.
# Safe to run again: it only does what is missing. Prints one line per
# kernel on stdout: "label version root tests source-tarball", where root
# is "host" or the root's directory.
#
# Nothing here installs a kernel or headers package on the machine: they are
# downloaded and unpacked, so its own kernels and boot set-up stay as they
# were.
set -euo pipefail

TESTING=$(cd "$(dirname "$0")" && pwd)
CACHE=${VB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-balloon}
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
# What a root needs to build the module, DKMS, and KUnit in UML. "gcc" is
# the release's own compiler, the one its kernels are built with.
ROOT_PACKAGES=gcc,make,sparse,libc6-dev,libelf-dev,libssl-dev,bc,kmod,perl,pahole,dkms,cpio,zstd,xz-utils,python3,flex,bison
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

log() { echo "setup: $*" >&2; }

# suite root tests, one line per kernel, from the table.
kernel_lines() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TESTING/kernels"; }

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

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }
# pahole: the modules' BTF (bookworm-backports' 6.12 makes it). perl:
# checkpatch.pl.
for p in gcc gcc-12 make sparse busybox-static cpio dkms kmod xz-utils zstd python3 \
	 python3-matplotlib bc flex bison libelf-dev libssl-dev libc6-dev debootstrap \
	 pahole perl; do
	have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi
if ! have qemu-system-x86 || ! dpkg-query -W -f='${Version}' qemu-system-x86 | grep -q '^1:1[0-9]'; then
	log "installing qemu-system-x86 from bookworm-backports"
	$SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 >&2
fi

HOST_CODENAME=$(. /etc/os-release && echo "$VERSION_CODENAME")

# A Debian root of release $1 in the cache, with its updates, security and
# backports suites; its package lists are refreshed once a day.
make_root() {
	local codename=$1 dir=$CACHE/roots/$1
	if [ ! -e "$dir/.done" ]; then
		log "making a Debian $codename root in $dir"
		$SUDO rm -rf "$dir.tmp"
		mkdir -p "$CACHE/roots"
		if ! $SUDO debootstrap --variant=minbase --include="$ROOT_PACKAGES" "$codename" \
			"$dir.tmp" "$MIRROR" >"$dir.log" 2>&1; then
			tail -n 20 "$dir.log" >&2
			exit 1
		fi
		cat >"$dir.tmp/etc/apt/sources.list" <<-EOF
		deb $MIRROR $codename main
		deb $MIRROR $codename-updates main
		deb $MIRROR $codename-backports main
		deb $SECURITY_MIRROR $codename-security main
		EOF
		$SUDO rm -rf "$dir"
		mv "$dir.tmp" "$dir"
		touch "$dir/.done"
	fi
	if [ -z "$(find "$dir/.lists-updated" -mmin -1440 2>/dev/null)" ]; then
		bash "$TESTING/in-root.sh" "$dir" / apt-get update -qq >&2
		touch "$dir/.lists-updated"
	fi
	if [ "$(cat "$dir/.packages" 2>/dev/null)" != "$ROOT_PACKAGES" ]; then
		log "installing into the $codename root: ${ROOT_PACKAGES//,/ }"
		bash "$TESTING/in-root.sh" "$dir" / apt-get install -y -q --no-install-recommends \
			${ROOT_PACKAGES//,/ } >&2
		echo "$ROOT_PACKAGES" >"$dir/.packages"
	fi
}

# Run an APT command where the kernel's packages come from: on the machine
# ($1 = host) or in a root.
apt_in() {
	local where=$1
	shift
	if [ "$where" = host ]; then
		"$@"
	else
		bash "$TESTING/in-root.sh" "$where" "$PWD" "$@"
	fi
}

# The packages @2 depends on whose names match the extended regular
# expression @3 and, if given, end with the string @4, in the APT of @1.
deps_of() {
	apt_in "$1" apt-cache depends "$2" 2>/dev/null |
		awk -v re="$3" -v end="${4:-}" '$1 == "Depends:" && $2 ~ re &&
			substr($2, length($2) - length(end) + 1) == end { print $2 }'
}

# Download packages with the APT of @1 and unpack them all into one fresh
# directory @2, instead of installing them.
unpack() {
	local where=$1 dir=$2 tmp deb
	shift 2
	tmp=$(mktemp -d)
	chmod 777 "$tmp" # APT downloads as its own user
	(cd "$tmp" && apt_in "$where" apt-get download -q "$@" >&2)
	rm -rf "$dir"
	mkdir -p "$dir"
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$dir"
	done
	rm -rf "$tmp"
}

declare -A labels=()
lines=()
while read -r suite root tests <&3; do
	if [ "$root" = host ]; then
		where=host
		base=$HOST_CODENAME
	else
		make_root "$root"
		where=$CACHE/roots/$root
		base=$root
	fi
	# linux-image-amd64 names the current ABI; resolve it rather than pin one.
	meta=linux-image-amd64
	[ "$suite" = "$base" ] || meta=$meta/$suite
	image=$(deps_of "$where" "$meta" '^linux-image-')
	if [ -z "$image" ] && [ "$where" = host ]; then
		$SUDO apt-get update -q >&2
		image=$(deps_of host "$meta" '^linux-image-')
	fi
	image=${image%%$'\n'*}
	[ -n "$image" ] || { log "cannot resolve $meta"; exit 1; }
	v=${image#linux-image-}
	mm=$(echo "$v" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
	label=$mm
	[ -z "${labels[$label]:-}" ] || label=$mm-$suite
	labels[$label]=1
	src_pkg=linux-source-$mm
	[ "$suite" = "$base" ] || src_pkg=$src_pkg/$suite

	# The guest kernel. From 6.19 on, linux-image-<ver> is a metapackage:
	# the kernel, modules and System.map are in linux-{binary,modules,base}-<ver>,
	# under /usr/lib/modules/<ver>. The harness finds them at the classic
	# paths, which symlinks provide.
	dir=$CACHE/kernels/$v
	if [ ! -e "$dir/.done" ]; then
		log "unpacking guest kernel $v"
		unpack "$where" "$dir" "$image" \
			$(deps_of "$where" "$image" '^linux-(binary|modules|base)-' "$v")
		if [ ! -e "$dir/lib/modules/$v" ]; then
			mkdir -p "$dir/lib/modules"
			ln -s "../../usr/lib/modules/$v" "$dir/lib/modules/$v"
		fi
		if [ ! -e "$dir/boot/vmlinuz-$v" ]; then
			mkdir -p "$dir/boot"
			ln -s "../lib/modules/$v/vmlinuz" "$dir/boot/vmlinuz-$v"
		fi
		# The packages ship no modules.dep: the harness resolves dependencies.
		depmod -b "$dir" "$v"
		touch "$dir/.done"
	fi

	# Its source, for KUnit and checkpatch: installed on the machine for
	# its own suites, unpacked from the root's otherwise.
	if [ "$where" = host ]; then
		if ! have "linux-source-$mm"; then
			log "installing linux-source-$mm"
			$SUDO apt-get install -y -q --no-install-recommends "linux-source-$mm" >&2
		fi
		tarball=/usr/src/linux-source-$mm.tar.xz
	else
		dir=$CACHE/sources/$v
		if [ ! -e "$dir/.done" ]; then
			log "unpacking $src_pkg"
			unpack "$where" "$dir" "$src_pkg"
			touch "$dir/.done"
		fi
		tarball=$(ls "$dir"/usr/src/linux-source-*.tar.xz)
	fi
	# Its headers: the -amd64 package, its -common and kbuild packages under
	# one root. Their symlinks are relative; the absolute paths of the
	# Makefile (its include, and from 7.x its KBUILD_OUTPUT) point into it.
	dir=$CACHE/headers/$v
	if [ ! -e "$dir/.done" ]; then
		log "unpacking headers $v"
		unpack "$where" "$dir" "linux-headers-$v" \
			$(deps_of "$where" "linux-headers-$v" '^linux-(headers|kbuild)-')
		sed -i -E "s#^(include |KBUILD_OUTPUT=)/usr/src/#\\1$dir/usr/src/#" \
			"$dir/usr/src/linux-headers-$v/Makefile"
		# Debian's 7.3 headers lack the script that tells kbuild sparse
		# works: without it C=2 checks nothing. Only kernels whose
		# Makefile calls it need it (6.1's has no such script).
		common=$(ls -d "$dir"/usr/src/linux-headers-*-common)
		if grep -qs checker-valid.sh "$common/Makefile" &&
		   [ ! -e "$common/scripts/checker-valid.sh" ]; then
			tar -xJf "$tarball" -C "$common" --strip-components=1 --wildcards \
				'*/scripts/checker-valid.sh'
		fi
		touch "$dir/.done"
	fi

	lines+=("$label $v $where $tests $tarball")
done 3< <(kernel_lines)

printf '%s\n' "${lines[@]}"
