#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a command in one of the Debian roots setup.sh keeps in the cache, for
# the kernels built with another release's compiler (Debian 13's gcc-14):
#
#   tools/testing/in-root.sh ROOT DIR COMMAND [ARG]...
#
# runs COMMAND in directory DIR inside the root. This clone, the cache and
# /tmp are bind-mounted at the same paths, so paths mean the same inside and
# out (/tmp first: the clone may be in it). The mounts live in a private mount namespace and go away with the
# command: nothing is left mounted on the machine.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 ROOT DIR COMMAND [ARG]..." >&2; exit 2; }
root=$1 dir=$2
shift 2
[ -x "$root/usr/bin/env" ] || { echo "in-root: $root is not a Debian root" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${VB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-balloon}
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# The script inside the namespace gets the root, the directory, the
# directories to bind, "--", then the command.
exec $SUDO unshare --mount --propagation private /bin/bash -c '
	set -e
	root=$1 dir=$2
	shift 2
	# The root is a mount point of its own, so that in-root.sh works in it
	# too (unshare --propagation needs "/" to be a mount point).
	mount --bind "$root" "$root"
	mount --rbind /dev "$root/dev"
	mount -t proc proc "$root/proc"
	while [ "$1" != -- ]; do
		mkdir -p "$root$1"
		mount --bind "$1" "$root$1"
		shift
	done
	shift
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		/bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$dir" "$@"
' in-root "$root" "$dir" /tmp "$(realpath -m "$cache")" "$repo" -- "$@"
