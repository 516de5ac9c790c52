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


def start_growing(g, mib=GROW_MIB):
    """Start memload grow in @g: @mib allocated, written and verified."""
    g.check("memload grow %d %d %d %s >%s 2>&1 &" % (
        mib, GROW_STEP_KIB, GROW_EVERY_MS, GROW_STATUS, GROW_LOG))


def assert_growth_intact(g, what, mib=GROW_MIB):
    """All that memload grow wrote, and the data set, verify in @g."""
    vm.wait_for(lambda: grow_status(g)[1] >= 1, 120,
                lambda: "%s: growth not verified: %s" % (what, g.run("cat %s %s" % (
                    GROW_STATUS, GROW_LOG))[1]), interval=0.5)
    kib, passes, errors = grow_status(g)
    assert errors == 0, "%s: %d bad words in %d MiB written meanwhile:\n%s" % (
        what, errors, kib // 1024, g.run("cat %s" % GROW_LOG)[1])
    assert kib == mib * 1024, "%s: grew %d KiB" % (what, kib)
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


def test_discarding_host_owned_hints(ctx):
    """A migration from a discarding host: hints are owned, and the guest
    that allocates throughout loses nothing."""
    opt = "virtio_balloon.host_discards_hints=yes"
    src, dst, info = migrate_while_growing(ctx, "discard", "ours", append=opt)
    with src, dst:
        status = mig.hint_stat(dst, "status")
        assert status == "on, owned hints: host_discards_hints=yes", "status %r" % status
        pages = int(mig.hint_stat(dst, "total_pages"))
        assert pages > 0, "no page hinted"
        line = [s for s in dst.check("dmesg").splitlines() if "owned hints" in s]
        assert line, "no log line says why hints are owned"
        ctx.note("%d MiB sent, %d MiB hinted; %s" % (
            info["ram"]["transferred"] // MIB, pages * 4096 // MIB, line[0].split("] ", 1)[-1]))


# Allocated, written and verified during a hinting run: little, so that the
# host's resident memory shows what the run gave back.
RUN_GROW_MIB = 32
# What the guest's free memory may miss after a run: the pages that per-CPU
# free lists keep, which MemFree does not count (the driver's own count of
# what it holds, owned_kib, must be 0).
RUN_FREE_SLACK_MIB = 32


def test_discarding_host_hinting_run(ctx, driver):
    """A hinting run on a host that discards what it is hinted, started and
    ended as Firecracker's API does (mig.discarding_run()). Ours, while the
    guest allocates, writes and verifies memory: nothing is lost, the host's
    resident memory falls by at least 90% of the guest's free memory, and
    the guest's free memory is back after the run. The in-tree driver is the
    baseline, and shows that the host really gives memory back; the guest
    does not allocate during its run (its shrinker frees hinted pages before
    the host is done with them)."""
    params = "host_discards_hints=yes" if driver == "ours" else ""
    g = mig.hinted_guest(ctx, driver, host="discard", params=params)
    with g:
        what = "%s driver, hinting run on a discarding host" % driver

        def grow(g):
            start_growing(g, RUN_GROW_MIB)
            vm.wait_for(lambda: grow_status(g)[0] == RUN_GROW_MIB * 1024, 60,
                        lambda: "%s: memload grow did not allocate" % what, interval=0.2)

        run = mig.discarding_run(g, grow if driver == "ours" else None)
        if driver == "ours":
            assert_growth_intact(g, what, RUN_GROW_MIB)
        else:
            mig.assert_intact(g, what)
        fell = run["resident_before"] - run["resident_after"]
        if driver == "intree":
            # The baseline shows that the harness's switch gives memory back.
            assert fell >= mig.DIRTY_MIB * MIB * 9 // 10, \
                "%s: the host's resident memory fell by %d MiB" % (what, fell // MIB)
        after_kib = peak_kib = 0
        if driver == "ours":
            assert fell >= run["free_kib"] * 1024 * 9 // 10, \
                "%s: the host's resident memory fell by %d MiB of %d MiB free in the guest " \
                "(stretches refused: %s, hinted %s pages)" % (
                    what, fell // MIB, run["free_kib"] // 1024,
                    mig.hint_stat(g, "owned_take_failures"), mig.hint_stat(g, "total_pages"))
            vm.wait_for(lambda: mig.hint_stat(g, "owned_kib") == "0", 30,
                        lambda: "%s: %s KiB still owned after the run" % (
                            what, mig.hint_stat(g, "owned_kib")))
            peak_kib = int(mig.hint_stat(g, "last_owned_peak_kib"))
            assert int(mig.hint_stat(g, "total_pages")) > 0, "%s: no page hinted" % what
            # Back to what it was, but for the pages per-CPU lists keep.
            after_kib = g.meminfo()["MemFree"]
            assert after_kib >= run["free_kib"] - RUN_FREE_SLACK_MIB * 1024, \
                "%s: free memory %d MiB after the run, %d before" % (
                    what, after_kib // 1024, run["free_kib"] // 1024)
        ctx.note("run %.1f s; host resident %d MiB before, %d after; guest free %d MiB before, "
                 "lowest %d during, %d after; owned at most %d MiB" % (
                     run["seconds"], run["resident_before"] // MIB, run["resident_after"] // MIB,
                     run["free_kib"] // 1024, run["lowest_kib"] // 1024, after_kib // 1024,
                     peak_kib // 1024))


test_discarding_host_hinting_run.cases = {d: {"driver": d} for d in ("ours", "intree")}


def test_device_offering_wait_on_ack_gets_owned_hints(ctx):
    """A device that offers feature bit 6 (e2b's Firecracker's
    HINT_WAIT_ON_ACK) gets it accepted, and owned hints: a run gives back
    every chunk it took."""
    g = mig.hinted_guest(ctx, "ours", host="wait-on-ack")
    with g:
        features = g.check("cat /sys/bus/virtio/devices/virtio0/features")
        assert features[3] == "1" and features[6] == "1", "negotiated %s" % features
        status = mig.hint_stat(g, "status")
        assert status == "on, owned hints: the device offers HINT_WAIT_ON_ACK", "status %r" % status
        g.hint_run(True)
        vm.wait_for(lambda: not g.hint_run_waiting(), 120,
                    lambda: "the guest never ended the run", interval=0.2)
        g.hint_run(False)
        assert int(mig.hint_stat(g, "total_pages")) > 0, "no page hinted"
        vm.wait_for(lambda: mig.hint_stat(g, "owned_kib") == "0", 30,
                    lambda: "%s KiB still owned after the run" % mig.hint_stat(g, "owned_kib"))
        mig.assert_intact(g, "owned hints on a device offering bit 6")
        ctx.note("features %s; %s; %d MiB hinted" % (
            features[:8], status, int(mig.hint_stat(g, "total_pages")) * 4096 // MIB))
