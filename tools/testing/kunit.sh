#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the driver's KUnit suites in User Mode Linux, against the 6.1 and 6.12
# sources Debian ships (linux-source-6.1, linux-source-6.12).
#
#   tools/testing/kunit.sh [6.1|6.12]... [-- KUNIT_PY_ARGS...]
#
# For each kernel the source tarball is unpacked once into the cache
# ($VB_CACHE, default ~/.cache/virtio-balloon, under kunit/<ver>/linux) and
# given a directory drivers/virtio_balloon_oot whose Makefile includes this
# clone's Kbuild and whose sources are symlinks to this clone's
# drivers/virtio/*.c: nothing is copied, and an edit here is rebuilt there.
# The build directory (kunit/<ver>/build) is kept, so a later run only
# rebuilds what changed.
#
# Fails if kunit.py fails (a build error, a failed or crashed test), if a
# suite of drivers/virtio/*_test.c did not run, or if the kernel log has a
# WARNING, BUG (KASAN reports are BUGs), lockdep or UBSAN report.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${VB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtio-balloon}
JOBS=${KUNIT_JOBS:-2}
KUNITCONFIG=$REPO/drivers/virtio/.kunitconfig
# Bump when the glue written into the cached trees changes shape.
GLUE_VERSION=1

log() { echo "kunit: $*" >&2; }
die() { log "$*"; exit 1; }

versions=()
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	6.1|6.12) versions+=("$1") ;;
	--) shift; extra=("$@"); break ;;
	-h|--help)
		sed -n '3,19s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	*) die "unknown argument '$1' (want 6.1, 6.12, or -- kunit.py arguments)" ;;
	esac
	shift
done
[ ${#versions[@]} -gt 0 ] || versions=(6.1 6.12)

have_tools() {
	local v
	for v in "${versions[@]}"; do
		[ -r "/usr/src/linux-source-$v.tar.xz" ] || return 1
	done
	command -v gcc >/dev/null && command -v flex >/dev/null &&
		command -v bison >/dev/null && command -v bc >/dev/null &&
		command -v python3 >/dev/null && [ -e /usr/include/stdio.h ]
}
if ! have_tools; then
	log "installing what the UML builds need (tools/testing/setup.sh)"
	bash "$REPO/tools/testing/setup.sh" >/dev/null
	have_tools || die "setup.sh did not provide the kernel sources and tools"
fi

# Write $1 from stdin, leaving it (and its timestamp) alone if unchanged.
write_if_changed() {
	local tmp
	tmp=$(mktemp "$1.XXXXXX")
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$1"
	fi
}

# Unpack the kernel source once per Debian package version.
prepare_tree() {
	local v=$1 base=$2 tree=$2/linux pkg want tmp
	pkg=$(dpkg-query -W -f='${Version}' "linux-source-$v" 2>/dev/null || echo unknown)
	want="linux-source-$v $pkg glue $GLUE_VERSION"
	if [ "$(cat "$tree/.vb-tree" 2>/dev/null)" = "$want" ]; then
		return
	fi
	log "$v: unpacking /usr/src/linux-source-$v.tar.xz ($pkg)"
	rm -rf "$tree" "$tree.tmp" "$base/build"
	mkdir -p "$tree.tmp"
	tar -xJf "/usr/src/linux-source-$v.tar.xz" -C "$tree.tmp" --strip-components=1
	tmp=$tree.tmp
	mkdir -p "$tmp/drivers/virtio_balloon_oot"
	cat >>"$tmp/drivers/Kconfig" <<-'EOF'

	source "drivers/virtio_balloon_oot/Kconfig"
	EOF
	cat >>"$tmp/drivers/Makefile" <<-'EOF'
	obj-$(CONFIG_VIRTIO_BALLOON_OOT_KUNIT_TEST) += virtio_balloon_oot/
	EOF
	echo "$want" >"$tmp/.vb-tree"
	mv "$tmp" "$tree"
}

# Point the cached tree at this clone. Only the .c files are linked, one by
# one: kbuild's VPATH would otherwise find the objects of the module build
# in the clone and link them into UML.
link_sources() {
	local dir=$1/drivers/virtio_balloon_oot f
	mkdir -p "$dir/drivers/virtio"
	write_if_changed "$dir/Kconfig" <<-'EOF'
	# SPDX-License-Identifier: GPL-2.0
	# Written by virtio_balloon's tools/testing/kunit.sh.
	config VIRTIO_BALLOON_OOT_KUNIT_TEST
		bool "The out-of-tree virtio_balloon and its KUnit suites"
		depends on KUNIT && VIRTIO && MMU && !VIRTIO_BALLOON
		select MEMORY_BALLOON
		select PAGE_REPORTING
		help
		  Builds virtio_balloon from the clone named in this
		  directory's Makefile into the kernel, with its KUnit suites
		  (drivers/virtio/*_test.c).
	EOF
	write_if_changed "$dir/Makefile" <<-EOF
	# SPDX-License-Identifier: GPL-2.0
	# Written by virtio_balloon's tools/testing/kunit.sh: the module's own
	# Kbuild, built in, plus the KUnit suites. Sources are symlinks.
	VB_REPO := $REPO
	include \$(VB_REPO)/Kbuild
	obj-y := \$(obj-m)
	obj-m :=
	virtio_balloon-y += \$(patsubst \$(VB_REPO)/%.c,%.o,\$(wildcard \$(VB_REPO)/drivers/virtio/*_test.c))
	ccflags-y := -I\$(VB_REPO)/include -Werror -Wmissing-prototypes -Wmissing-declarations
	EOF
	for f in "$dir"/drivers/virtio/*; do
		if [ ! -e "$f" ] || [ "$(readlink "$f")" != "$REPO/drivers/virtio/${f##*/}" ]; then
			rm -f "$f"
		fi
	done
	for f in "$REPO"/drivers/virtio/*.c; do
		[ -e "$dir/drivers/virtio/${f##*/}" ] || ln -s "$f" "$dir/drivers/virtio/"
	done
}

# Suites the clone defines: every kunit_suite's .name in *_test.c.
expected_suites() {
	sed -n '/struct kunit_suite/,/};/s/^[[:space:]]*\.name[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
		"$REPO"/drivers/virtio/*_test.c
}

# Kernel log lines that fail the run even when every test passed.
# Lockdep's reports are WARNINGs; KASAN's, and the sleep checks', are BUGs.
SPLATS='WARNING:|BUG:|kernel BUG at|UBSAN:|Kernel panic|Oops|Call Trace:|DEBUG_LOCKS_WARN_ON|turning off the locking correctness validator|INFO: trying to register non-static key|INFO: task .* blocked'

total_passed=0
total_failed=0
status=0
for v in "${versions[@]}"; do
	base=$CACHE/kunit/$v
	mkdir -p "$base"
	exec 9>"$base/lock"
	if ! flock -n 9; then
		log "$v: waiting for another run on $base"
		flock 9
	fi
	start=$SECONDS
	prepare_tree "$v" "$base"
	link_sources "$base/linux"

	args=(run --kunitconfig="$KUNITCONFIG" --build_dir="$base/build"
	      --arch=um --jobs="$JOBS")
	# UML allows preemption from 6.12 on, and with it this check.
	[ "$v" = 6.1 ] || args+=(--kconfig_add CONFIG_DEBUG_ATOMIC_SLEEP=y)
	log "$v: tools/testing/kunit/kunit.py ${args[*]} ${extra[*]}"
	rm -f "$base/build/test.log"
	set +e
	(cd "$base/linux" && python3 tools/testing/kunit/kunit.py "${args[@]}" "${extra[@]}") \
		2>&1 | tee "$base/kunit.out"
	rc=${PIPESTATUS[0]}
	set -e

	why=()
	[ "$rc" -eq 0 ] || why+=("kunit.py exited $rc")
	testlog=$base/build/test.log
	if [ -s "$testlog" ]; then
		if grep -Eq "$SPLATS" "$testlog"; then
			why+=("kernel log has a splat")
			log "$v: from $testlog:"
			grep -En -B2 -A20 "$SPLATS" "$testlog" | head -n 200 >&2
		fi
		# With kunit.py arguments (a filter, say) some suites may not run.
		[ ${#extra[@]} -gt 0 ] ||
		for s in $(expected_suites); do
			grep -Eq "^[[:space:]]*(not )?ok [0-9]+ $s([[:space:]]|\$)" "$testlog" ||
				why+=("suite $s did not run")
		done
	elif [ "$rc" -eq 0 ]; then
		why+=("no kernel log at $testlog")
	fi

	# "Testing complete. Ran N tests: passed: P, failed: F, crashed: C, ..."
	summary=$(sed -n 's/.*Testing complete\. Ran [0-9]* tests*: //p' "$base/kunit.out" | tail -n 1)
	count() { echo "$summary" | sed -n "s/.*$1: \([0-9]*\).*/\1/p"; }
	passed=$(count passed)
	passed=${passed:-0}
	failed=$(( $(count failed) + $(count crashed) + $(count errors) + 0 ))
	skipped=$(count skipped)
	[ -n "$summary" ] || why+=("no test ran")
	line="kunit $v: $passed passed, $failed failed, ${skipped:-0} skipped in $(( SECONDS - start )) s"
	if [ ${#why[@]} -gt 0 ]; then
		status=1
		# A run that failed without a failed test still counts once.
		[ "$failed" -gt 0 ] || failed=1
		line="$line; FAILED: $(IFS=';'; echo "${why[*]}")"
	fi
	total_passed=$(( total_passed + passed ))
	total_failed=$(( total_failed + failed ))
	echo "$line"
	exec 9>&-
done

# The closing line; a kernel that failed without a failed test counts as one.
echo "kunit: $total_passed passed, $total_failed failed"
exit $status
