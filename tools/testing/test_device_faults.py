# SPDX-License-Identifier: GPL-2.0
"""A device that misbehaves, and teardown at awkward moments, in QEMU guests.

The device stops answering inflate and deflate messages (the emulating
QEMU's stall switch) while the balloon deflates and while compaction moves
balloon pages; the module is removed while compaction runs; the free page
queue is smaller than a hint element; statistics after freeze and restore;
the sysfs files are in place when the binding is announced. Each test
asserts on what it measured: vmstat's balloon counters, MemTotal, the pages
released after the reset, times, and the kernel log.
"""

import os
import time

import migration as mig
import vm
from test_balloon import assert_healthy, balloon_device, guest_stats, load, start_stats
from test_parity import (COMPACT_BALLOON_MIB, COMPACT_MEM_MIB, COMPACT_PASSES, COMPACT_TARGET,
                         HIBERNATE_APPEND, compactable_balloon, freeze_restore, vmstat)
from host_build import MIB

# Balloon pages interleaved with free pages, where compaction moves them.
MEM_MIB = COMPACT_MEM_MIB
BALLOON_MIB = COMPACT_BALLOON_MIB
FULL = MEM_MIB * MIB
# The driver's VB_ACK_TIMEOUT: how long it waits for one acknowledgement.
ACK_TIMEOUT_S = 30
# 4 KiB units in one guest page (x86-64).
UNITS_PER_PAGE = 1
HINT = {"free-page-hint": "on"}
BALLOON_EVENTS = ("balloon_inflate", "balloon_deflate", "balloon_migrate")


def _events(g):
    return {name: vmstat(g, name) for name in BALLOON_EVENTS}


def _released(g):
    """How many 4 KiB units the driver said it released after each reset."""
    out = g.check("dmesg | grep -o 'released [0-9]* unacknowledged' || true")
    return [int(line.split()[1]) for line in out.splitlines()]


def _stall(g, on):
    if on:
        open(g.stall_file, "w").close()
    else:
        os.remove(g.stall_file)


def _unload(g):
    """rmmod with the device answering again; returns MemTotal after it."""
    _stall(g, False)
    g.check("rmmod virtio_balloon", timeout=120)
    return g.meminfo()["MemTotal"]


def test_device_stops_acknowledging(ctx):
    """The device stops answering while the balloon deflates, then (after a
    reload) while compaction moves a balloon page. No page leaves the balloon
    unacknowledged, vmstat counts only what happened, and the reset gives
    every page back, including the old page of the unacknowledged move."""
    units = BALLOON_MIB * MIB // 4096
    with ctx.guest(mem_mib=MEM_MIB, host="stalling") as g:
        load(ctx, g)
        total0 = g.meminfo()["MemTotal"]
        g.set_balloon(COMPACT_TARGET)

        # Deflate to a device that does not answer.
        before = _events(g)
        _stall(g, True)
        start = time.monotonic()
        g.qmp("balloon", value=FULL)
        vm.wait_for(lambda: "did not acknowledge deflate" in g.check("dmesg"),
                    ACK_TIMEOUT_S + 30, lambda: "no deflate timeout in the log", interval=0.5)
        deflate_s = time.monotonic() - start
        after = _events(g)
        total = g.meminfo()["MemTotal"]
        assert after == before, "vmstat changed by a deflate the device never took: %s -> %s" % (
            before, after)
        assert total == total0 - BALLOON_MIB * 1024, \
            "MemTotal %d KiB while the balloon holds %d MiB (%d KiB before)" % (
                total, BALLOON_MIB, total0)
        total = _unload(g)
        assert _released(g) == [units], "released after the deflate timeout: %s, expected [%d]" % (
            _released(g), units)
        assert total == total0, "MemTotal %d KiB after rmmod, %d KiB before" % (total, total0)

        # Compaction moves a balloon page while the device does not answer.
        load(ctx, g)
        compactable_balloon(g)
        before = _events(g)
        _stall(g, True)
        start = time.monotonic()
        for passes in range(1, COMPACT_PASSES + 1):
            g.check("echo 1 > /proc/sys/vm/compact_memory", timeout=ACK_TIMEOUT_S + 120)
            if "page migration not acknowledged" in g.check("dmesg"):
                break
        compact_s = time.monotonic() - start
        after = _events(g)
        dmesg = g.check("dmesg")
        assert "did not acknowledge inflate" in dmesg, \
            "%d compaction passes met no inflate timeout: %s -> %s" % (passes, before, after)
        assert "page migration not acknowledged" in dmesg, "no unacknowledged move in the log"
        moved = after["balloon_migrate"] - before["balloon_migrate"]
        assert moved == 1, "%d balloon pages moved; one, then the device was broken" % moved
        for event in ("balloon_inflate", "balloon_deflate"):
            assert after[event] == before[event], "%s went %d -> %d during compaction" % (
                event, before[event], after[event])
        total = _unload(g)
        released = _released(g)
        assert released[1:] == [units + UNITS_PER_PAGE], \
            "released after the unacknowledged move: %s, expected %d (balloon and old page)" % (
                released[1:], units + UNITS_PER_PAGE)
        assert total == total0, "MemTotal %d KiB after rmmod, %d KiB before" % (total, total0)
        assert_healthy(g)
        ctx.note("deflate gave up after %.1f s, compaction after %.1f s (%d passes); released %s "
               "units; MemTotal %d KiB before and after" % (
                   deflate_s, compact_s, passes, released, total0))


def test_rmmod_during_compaction(ctx):
    """rmmod while compaction moves balloon pages in a loop takes about as
    long as deflating the same balloon, and nothing waits for an
    acknowledgement."""
    with ctx.guest(mem_mib=MEM_MIB) as g:
        load(ctx, g)
        compactable_balloon(g)
        deflate_s = g.set_balloon(FULL)
        compactable_balloon(g)
        moved0 = vmstat(g, "balloon_migrate")
        pid = g.check("(while :; do echo 1 > /proc/sys/vm/compact_memory; done) "
                      ">/dev/null 2>&1 & echo $!")
        vm.wait_for(lambda: vmstat(g, "balloon_migrate") > moved0, 120,
                    lambda: "compaction moved no balloon page", interval=0.2)
        start = time.monotonic()
        g.check("rmmod virtio_balloon", timeout=120)
        rmmod_s = time.monotonic() - start
        moved = vmstat(g, "balloon_migrate") - moved0
        g.check("kill %s" % pid)
        assert rmmod_s < 2 * deflate_s + 1, \
            "rmmod took %.1f s; deflating the same balloon took %.1f s" % (rmmod_s, deflate_s)
        dmesg = g.check("dmesg")
        assert "did not acknowledge" not in dmesg and "unacknowledged" not in dmesg, \
            "the device was reported silent:\n" + dmesg[-2000:]
        assert_healthy(g)
        ctx.note("rmmod %.2f s, deflating %d MiB %.2f s; %d balloon pages moved by compaction" % (
            rmmod_s, BALLOON_MIB, deflate_s, moved))


def test_small_free_page_queue(ctx):
    """A free page queue of 16 entries, fewer than an element's 32 ranges:
    hinting fills elements to the ring size, and a migration with hinting
    of fragmented free memory keeps the data set intact with no warning."""
    with ctx.guest(mem_mib=1024, balloon=HINT, host="small-free-page-queue") as src:
        mig.load_driver(src, "ours")
        status = src.qmp("x-query-virtio-queue-status",
                         path=vm.BALLOON_QOM + "/virtio-backend", queue=3)
        assert status["vring-num"] == 16, "free page queue has %d entries" % status["vring-num"]
        mig.prepare(src, 64, 256)
        # Free single pages, far apart: a batch of them is dozens of ranges.
        # A slow link lets the session walk down to them before STOP.
        mig.fragment(src, 256)
        dst, info = mig.migrate(src, bandwidth_mib=100)
        with dst:
            mig.assert_intact(dst, "small free page queue")
            mig.assert_clean(src, "small free page queue (source)", running=False)
            mig.assert_clean(dst, "small free page queue (destination)")
            stats = {name: int(mig.hint_stat(dst, name)) for name in (
                "sessions_started", "aborted_timeout", "aborted_error", "total_ranges",
                "total_pages")}
            # Far more ranges than single free pages in one lock budget (128):
            # batches that needed several elements of at most 16 ranges.
            assert stats["sessions_started"] >= 1 and stats["total_ranges"] > 1024, stats
            assert stats["aborted_timeout"] == 0 and stats["aborted_error"] == 0, stats
            ctx.note("16-entry free page queue: %s; sent %d MiB" % (
                stats, info["ram"]["transferred"] // MIB))


def test_stats_after_restore(ctx):
    """Statistics keep coming after each of three freeze/restore cycles."""
    with ctx.guest(mem_mib=1024, append=HIBERNATE_APPEND) as g:
        load(ctx, g)
        start_stats(g, 1)
        for cycle in range(3):
            freeze_restore(g)
            seen = guest_stats(g)["last-update"]
            vm.wait_for(lambda: guest_stats(g)["last-update"] >= seen + 2, 20, lambda: (
                "cycle %d: statistics stuck at %d" % (cycle, guest_stats(g)["last-update"])),
                interval=0.2)
        assert_healthy(g)


def test_sysfs_at_bind(ctx):
    """When the binding is announced (the bind uevent), the device already
    has its free_page_hint/ directory."""
    with ctx.guest(mem_mib=1024, balloon=HINT) as g:
        g.check("uevent sh -c '[ \"$ACTION\" = bind ] && [ \"$DRIVER\" = virtio_balloon ] && "
                "ls /sys$DEVPATH/free_page_hint > /tmp/at_bind 2>&1' >/dev/null 2>&1 &")
        load(ctx, g)
        vm.wait_for(lambda: g.run("test -e /tmp/at_bind")[0] == 0, 10,
                    lambda: "no bind uevent seen", interval=0.2)
        files = g.check("cat /tmp/at_bind").split()
        assert "status" in files and "sessions_started" in files, \
            "free_page_hint/ at bind: %s" % files
        assert balloon_device(g)
