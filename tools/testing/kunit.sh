#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the driver's KUnit suites in User Mode Linux, against the source Debian
# ships for each kernel of tools/testing/kernels (linux-source-<major.minor>),
# built with that kernel's compiler (in its Debian root, if it has one).
#
#   tools/testing/kunit.sh [LABEL]... [-- KUNIT_PY_ARGS...]
#
# LABEL is a kernel's label (6.1, 6.12, ...; all of them by default). For
# each kernel the source tarball is unpacked once into the cache
# ($VB_CACHE, default ~/.cache/virtio-balloon, under kunit/<label>/linux) and
# given a directory drivers/virtio_balloon_oot whose Makefile includes this
# clone's Kbuild and whose sources are symlinks to this clone's
# drivers/virtio/*.[ch]: nothing is copied, and an edit here is rebuilt there.
# The build directory (kunit/<label>/build) is kept, so a later run only
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

case ${1:-} in
-h|--help)
	sed -n '3,22s/^# \{0,1\}//p' "$0"
	exit 0 ;;
esac

# label -> "root tarball", from setup.sh, which installs what is missing.
declare -A kernel=()
known=()
while read -r label _ root _ tarball; do
	kernel[$label]="$root $tarball"
	known+=("$label")
done < <(bash "$REPO/tools/testing/setup.sh")

versions=()
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; extra=("$@"); break ;;
	*)
		[ -n "${kernel[$1]:-}" ] ||
			die "unknown argument '$1' (want one of ${known[*]}, or -- kunit.py arguments)"
		versions+=("$1") ;;
	esac
	shift
done
[ ${#versions[@]} -gt 0 ] || versions=("${known[@]}")

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

# Unpack the kernel source once per tarball (a new package brings a new one).
prepare_tree() {
	local v=$1 base=$2 tarball=$3 tree=$2/linux want tmp
	want="$tarball $(stat -c %Y "$tarball") glue $GLUE_VERSION"
	if [ "$(cat "$tree/.vb-tree" 2>/dev/null)" = "$want" ]; then
		return
	fi
	log "$v: unpacking $tarball"
	rm -rf "$tree" "$tree.tmp" "$base/build"
	mkdir -p "$tree.tmp"
	tar -xJf "$tarball" -C "$tree.tmp" --strip-components=1
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

# Point the cached tree at this clone. Only the sources are linked, one by
# one: kbuild's VPATH would otherwise find the objects of the module build
# in the clone and link them into UML.
link_sources() {
	local dir=$1/drivers/virtio_balloon_oot balloon=$2 f
	mkdir -p "$dir/drivers/virtio"
	write_if_changed "$dir/Kconfig" <<-EOF
	# SPDX-License-Identifier: GPL-2.0
	# Written by virtio_balloon's tools/testing/kunit.sh.
	config VIRTIO_BALLOON_OOT_KUNIT_TEST
		bool "The out-of-tree virtio_balloon and its KUnit suites"
		depends on KUNIT && VIRTIO && MMU && !VIRTIO_BALLOON
		select $balloon
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
	ccflags-y += -I\$(VB_REPO)/include -Werror -Wmissing-prototypes -Wmissing-declarations
	EOF
	for f in "$dir"/drivers/virtio/*; do
		if [ ! -e "$f" ] || [ "$(readlink "$f")" != "$REPO/drivers/virtio/${f##*/}" ]; then
			rm -f "$f"
		fi
	done
	for f in "$REPO"/drivers/virtio/*.[ch]; do
		[ -e "$dir/drivers/virtio/${f##*/}" ] || ln -s "$f" "$dir/drivers/virtio/"
	done
}

# Suites the clone defines: every kunit_suite's .name in *_test.c.
expected_suites() {
	sed -n '/struct kunit_suite/,/};/s/^[[:space:]]*\.name[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
		"$REPO"/drivers/virtio/*_test.c
}

# Kernel log lines that fail the run even when every test passed: the
# patterns the guests' logs are held to too.
SPLATS=$(sed -e '/^#/d' -e '/^[[:space:]]*$/d' "$REPO/tools/testing/problem-patterns" | paste -sd '|')

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
	read -r root tarball <<<"${kernel[$v]}"
	prepare_tree "$v" "$base" "$tarball"

	args=(run --kunitconfig="$KUNITCONFIG" --build_dir="$base/build"
	      --arch=um --jobs="$JOBS")
	# The balloon core's symbols: renamed in newer kernels (7.3).
	if grep -q '^config BALLOON_MIGRATION' "$base/linux/mm/Kconfig"; then
		link_sources "$base/linux" BALLOON
		args+=(--kconfig_add CONFIG_BALLOON_MIGRATION=y)
	else
		link_sources "$base/linux" MEMORY_BALLOON
		args+=(--kconfig_add CONFIG_BALLOON_COMPACTION=y)
	fi
	# UML can be SMP in newer kernels (7.3), whose page allocator uses no
	# per-CPU lists on a uniprocessor: the walker's suites need them. SMP
	# UML runs its processes under seccomp, not ptrace.
	if grep -q '^config SMP' "$base/linux/arch/um/Kconfig"; then
		args+=(--kconfig_add CONFIG_SMP=y --kconfig_add CONFIG_NR_CPUS=2
		       --kernel_args ncpus=2 --kernel_args seccomp=on)
	fi
	# UML allows preemption from 6.12 on, and with it this check.
	grep -q 'select ARCH_NO_PREEMPT' "$base/linux/arch/um/Kconfig" ||
		args+=(--kconfig_add CONFIG_DEBUG_ATOMIC_SLEEP=y)
	run=()
	[ "$root" = host ] || run=(bash "$REPO/tools/testing/in-root.sh" "$root" "$base/linux")
	log "$v: ${run[*]} tools/testing/kunit/kunit.py ${args[*]} ${extra[*]}"
	rm -f "$base/build/test.log"
	set +e
	(cd "$base/linux" && "${run[@]}" python3 tools/testing/kunit/kunit.py "${args[@]}" "${extra[@]}") \
		</dev/null 2>&1 | tee "$base/kunit.out"
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
