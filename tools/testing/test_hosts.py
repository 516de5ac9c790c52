# SPDX-License-Identifier: GPL-2.0
"""Hints on the hosts users run, which TCG is not: QEMU with KVM's dirty
logging, and a host that discards hinted memory (Firecracker). The emulating
QEMU (build-qemu.sh) acts like each under TCG.

The guest allocates 4 MiB every 40 ms from the moment the migration starts,
writes each page once and keeps it, then verifies all of it on the
destination: the allocations take exactly the free blocks a walk hints
first. Every page must arrive as written.

On the discarding host a hinting run also comes without a migration, as
Firecracker starts and stops one through its API: the host's resident
memory shows what the run gave back."""

import re

import migration as mig
import vm
from host_build import MIB

GROW_MIB = 384
GROW_STEP_KIB = 4096
GROW_EVERY_MS = 40
GROW_STATUS = "/tmp/grow.status"
GROW_LOG = "/tmp/grow.log"
EMULATION_RE = re.compile(r"kvm-dirty-log emulation: (\d+) chunk clears dropped (\d+) logged writes")


def grow_status(g):
    """(KiB allocated, passes, errors) of memload grow."""
    rc, out = g.run("cat %s" % GROW_STATUS)
    m = re.search(r"allocated (\d+) passes (\d+) errors (\d+)", out) if rc == 0 else None
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def start_growing(g):
    """Start memload grow in @g: GROW_MIB allocated, written and verified."""
    g.check("memload grow %d %d %d %s >%s 2>&1 &" % (
        GROW_MIB, GROW_STEP_KIB, GROW_EVERY_MS, GROW_STATUS, GROW_LOG))


def assert_growth_intact(g, what):
    """All that memload grow wrote, and the data set, verify in @g."""
    vm.wait_for(lambda: grow_status(g)[1] >= 1, 120,
                lambda: "%s: growth not verified: %s" % (what, g.run("cat %s %s" % (
                    GROW_STATUS, GROW_LOG))[1]), interval=0.5)
    kib, passes, errors = grow_status(g)
    assert errors == 0, "%s: %d bad words in %d MiB written meanwhile:\n%s" % (
        what, errors, kib // 1024, g.run("cat %s" % GROW_LOG)[1])
    assert kib == GROW_MIB * 1024, "%s: grew %d KiB" % (what, kib)
    mig.assert_intact(g, what)


def migrate_while_growing(ctx, host, driver, append="", **options):
    """Migrate a guest of @host (vm.Guest @options, and mig.hinted_guest's
    params) that allocates throughout; return (source, destination,
    query-migrate) with the growth verified intact on the destination. The
    caller closes both guests."""
    src = mig.hinted_guest(ctx, driver, host=host, append=append, **options)
    try:
        start_growing(src)
        dst, info = mig.migrate(src)
    except BaseException:
        src.close()
        raise
    try:
        what = "%s driver on a %s host" % (driver, host)
        assert_growth_intact(dst, what)
        mig.assert_clean(src, what + " (source)", running=False)
        mig.assert_clean(dst, what + " (destination)")
    except BaseException:
        dst.close()
        src.close()
        raise
    return src, dst, info


def emulation_counts(src):
    """(chunk clears, logged writes dropped) the source's emulation did."""
    found = []
    vm.wait_for(lambda: found.extend(EMULATION_RE.findall(src._log("qemu.log"))) or found, 30,
                lambda: "the source QEMU printed no emulation summary:\n" + src._log("qemu.log")[-2000:])
    clears, dropped = found[-1]
    return int(clears), int(dropped)


def test_kvm_dirty_log_loses_no_write(ctx, driver):
    src, dst, info = migrate_while_growing(ctx, "kvm-dirty-log", driver)
    with src, dst:
        clears, dropped = emulation_counts(src)
        # The emulation did its part: it forgot writes, as KVM would.
        assert clears > 0 and dropped > 0, \
            "emulation cleared %d chunks and dropped %d writes" % (clears, dropped)
        note = "%d MiB sent; emulation: %d chunk clears dropped %d logged writes" % (
            info["ram"]["transferred"] // MIB, clears, dropped)
        if driver == "ours":
            pages = int(mig.hint_stat(dst, "total_pages"))
            fences = int(mig.hint_stat(dst, "fences_applied"))
            assert pages > 0, "no page hinted"
            # Hints follow an applied fence (the later sessions of a
            # migration may end before theirs is).
            assert fences > 0, "%d pages hinted, and no fence applied" % pages
            note += "; %d MiB hinted after %d fences; last: %s windows, %s without a probe, %s us" % (
                pages * 4096 // MIB, fences, *(mig.hint_stat(dst, n) for n in (
                    "last_fence_windows", "last_fence_missing", "last_fence_us")))
        ctx.note(note)


test_kvm_dirty_log_loses_no_write.cases = {d: {"driver": d} for d in ("ours", "intree", "none")}


def test_discarding_host_declined(ctx):
    opt = "virtio_balloon.host_discards_hints=yes"
    src, dst, info = migrate_while_growing(ctx, "discard", "ours", append=opt)
    with src, dst:
        status = mig.hint_stat(dst, "status")
        assert status == "off: host_discards_hints=yes", "status %r" % status
        assert int(mig.hint_stat(dst, "total_pages")) == 0, "pages hinted to a discarding host"
        line = [s for s in dst.check("dmesg").splitlines() if "free page hinting off" in s]
        assert line, "no log line says why hinting is off"
        ctx.note("%d MiB sent; %s" % (info["ram"]["transferred"] // MIB, line[0].split("] ", 1)[-1]))


def test_discarding_host_hinting_run(ctx, driver):
    """A hinting run on a host that discards what it is hinted, started and
    ended (DONE) as Firecracker's API does, outside any migration. Ours
    declines free page hinting there, so the host cannot start a run. The
    in-tree driver hints the memory it allocated, and the host's resident
    memory falls by what the guest had written and freed: the harness's
    switch really gives memory back. (The guest does not allocate during the
    in-tree run: the in-tree driver's shrinker frees hinted pages before the
    host is done with them.)"""
    params = "host_discards_hints=yes" if driver == "ours" else ""
    g = mig.hinted_guest(ctx, driver, host="discard", params=params)
    with g:
        what = "%s driver, hinting run on a discarding host" % driver
        if driver == "ours":
            try:
                g.hint_run(True)
            except RuntimeError as e:
                assert "did not take free page hinting" in str(e), str(e)
            else:
                raise AssertionError("%s: a run started though hinting was declined" % what)
            status = mig.hint_stat(g, "status")
            assert status == "off: host_discards_hints=yes", "status %r" % status
            ctx.note("the host could not start a run: %s" % status)
            return
        resident = g.resident_bytes()
        mig.lowfree_reset(g)
        g.hint_run(True)
        vm.wait_for(lambda: not g.hint_run_waiting(), 120,
                    lambda: "%s: the guest never ended the run" % what, interval=0.5)
        during = g.resident_bytes()
        lowest_kib = mig.lowfree_kib(g)[0]
        g.hint_run(False)
        mig.assert_intact(g, what)
        fell = resident - during
        assert fell >= mig.DIRTY_MIB * MIB * 9 // 10, \
            "%s: resident memory fell by %d MiB; the guest wrote and freed %d MiB" % (
                what, fell // MIB, mig.DIRTY_MIB)
        ctx.note("host resident %d MiB before the run, %d during; guest lowest free %d MiB" % (
            resident // MIB, during // MIB, lowest_kib // 1024))


test_discarding_host_hinting_run.cases = {d: {"driver": d} for d in ("ours", "intree")}
