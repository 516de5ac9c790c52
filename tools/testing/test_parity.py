# SPDX-License-Identifier: GPL-2.0
"""Parity with the in-tree driver, end to end: deflate on OOM, the page
poison rules of free page reporting, the memory reporting gives back to the
host, balloon compaction, and freeze/restore during a live migration with
free page hinting.

Each test measures the effect where it shows: the guest's exit statuses and
kernel log, the features the device negotiated, the QEMU process's resident
memory, /proc/vmstat, query-balloon, and the device state QEMU migrates.
"""

import os
import re
import tempfile
import time

import migration as mig
import vm
from test_balloon import assert_bound, assert_driver_is, assert_free_drop, assert_healthy, \
    balloon_device, load, memory_kib
from host_build import MIB

# A guest that overcommits: the balloon leaves it OOM_LEFT_MIB, and the
# workload asks for OOM_EXTRA_MIB more than is free. 128 MiB is 128 OOM
# notifications at 1 MiB each, far beyond the few MiB the kernel could find
# by reclaiming slabs (the initramfs is not reclaimable, there is no swap).
OOM_MEM_MIB = 1024
OOM_LEFT_MIB = 384
OOM_EXTRA_MIB = 128
OOM_RE = re.compile(r"Out of memory|Killed process|oom-kill|invoked oom-killer")
# Run as the OOM killer's first choice: if anything is killed, it is memload,
# never the test shell.
AS_VICTIM = "echo 1000 >/proc/self/oom_score_adj; exec "
# Without deflate-on-oom the balloon leaves MemTotal, and the default
# heuristic refuses an mmap larger than MemTotal before any OOM: always
# overcommit, so that both guests meet the same situation at page faults.
OVERCOMMIT = "echo 1 > /proc/sys/vm/overcommit_memory"

# Feature bits, as /sys/bus/virtio/devices/virtioN/features lists them.
F_PAGE_POISON = 4
F_REPORTING = 5
POISON_ARGS = {"none": "", "page_poison": "page_poison=1", "init_on_free": "init_on_free=1"}
# What a free page holds, as the driver must tell the device: PAGE_POISON
# (include/linux/poison.h) in every byte, or zeros.
POISON_VALUE = {"page_poison": 0xaaaaaaaa, "init_on_free": 0}
POISON_SUBSECTION = b"virtio-balloon-device/page-poison"

REPORT_MEM_MIB = 1536
REPORT_HOLD_MIB = 1024
# The share of the freed memory the host must get back. Reporting covers only
# free blocks of pageblock order (2 MiB) and up; what stays on the per-CPU
# lists or in smaller blocks, and what the kernel allocates again meanwhile,
# is not reported: 22 MiB of 1 GiB was measured (6.1), well within the tenth
# left here, while a driver that reports only part of the free lists fails.
REPORTED_SHARE = 0.9
# Without reporting the host keeps the memory: the resident size may drop by
# no more than this share (QEMU's own allocations come and go by a few MiB).
KEPT_SHARE = 0.05
# The kernel reports a zone's free lists in passes of about a sixteenth of
# them, two seconds apart (mm/page_reporting.c): 1 GiB takes half a minute
# under TCG; allow four times that.
REPORT_TIMEOUT = 120
REPORT_DELAY = 2

COMPACT_MEM_MIB = 1024
# Compaction moves pages from the bottom of a zone into the holes of partly
# used pageblocks above, never into wholly free ones
# (suitable_migration_target()); a fresh balloon sits low in the zone
# (/proc/kpageflags) with mostly free blocks above it, and 0 to 288 of its
# pages moved. So the balloon is interleaved with holes: memload fragment
# leaves a third of FRAGMENT_MIB in single free pages, which order-0
# allocations (the balloon's) take first, and freeing memload's share
# afterwards leaves blocks of balloon pages and free pages, sources and
# targets both, over most of the zone's free memory, its bottom included.
# One page in three, not every other one: the free scanner samples a block
# at a stride that doubles (up to 32) after each block where it isolated
# nothing (isolate_freepages()), so with every other page free it can step
# over every free page of the interleaved blocks, meet the migration
# scanner early and end the pass (seen: 9 and 103 balloon pages moved,
# against 20000-40000); a power-of-two stride meets one of three residues.
FRAGMENT_MIB = 600
FRAGMENT_EVERY = 3
COMPACT_BALLOON_MIB = 256
COMPACT_TARGET = (COMPACT_MEM_MIB - COMPACT_BALLOON_MIB) * MIB
# Every write starts a new pass over the whole zone.
COMPACT_PASSES = 3

# Small enough that hibernation's preallocation of the image (as many free
# pages as the guest uses, balloon included) succeeds without swap.
FREEZE_BALLOON_MIB = 256
# Slow enough that the migration is still copying memory, with a hinting
# session under way, when the guest freezes.
FREEZE_BANDWIDTH_MIB = 20
# hibernate() in pm_test mode "devices": freeze, wait, restore, thaw. (The
# wait reads "5 seconds" up to 6.12, "5 second(s)" in 7.3.)
PM_MESSAGES = (r"hibernation entry", r"debug: Waiting for 5 second(s|\(s\))", r"hibernation exit")
# Hibernation compresses the image with a crypto module the test initramfs
# lacks (6.12 checks it up front): guests that freeze write it uncompressed.
HIBERNATE_APPEND = "hibernate=nocompress"


def _drivers(ctx):
    """When ours is under test, ours then the in-tree driver, else the
    in-tree driver alone: {name: load command}. The test unloads each but
    the last before loading the next; Debian's 6.12.95 oopses unloading the
    in-tree driver when free page reporting is on without hinting (a bug of
    its virtio PCI transport that this driver works around)."""
    drivers = {}
    if ctx.module == "ours":
        drivers["ours"] = "modprobe virtio_balloon"
    drivers["intree"] = "insmod " + ctx.intree_ko
    return drivers


def _features(g):
    return g.check("cat %s/features" % balloon_device(g))


def _oom_lines(g):
    return [line for line in g.check("dmesg").splitlines() if OOM_RE.search(line)]


def _overcommit(g):
    """Inflate to leave OOM_LEFT_MIB, run a workload needing OOM_EXTRA_MIB
    more than is free; return (its exit status and output, MiB it asked for,
    MiB free before it ran, MiB the kernel could have reclaimed instead:
    page cache and reclaimable slabs)."""
    g.check(OVERCOMMIT)
    g.set_balloon(OOM_LEFT_MIB * MIB)
    _, free = memory_kib(g)
    m = g.meminfo()
    reclaimable = (m["Active(file)"] + m["Inactive(file)"] + m["KReclaimable"]) // 1024
    need = free // 1024 + OOM_EXTRA_MIB
    result = g.run(AS_VICTIM + "memload dirty %d" % need, timeout=300)
    return result, need, free // 1024, reclaimable


def test_deflate_on_oom(ctx):
    with ctx.guest(mem_mib=OOM_MEM_MIB, balloon={"deflate-on-oom": "on"}) as g:
        load(ctx, g)
        (status, out), need, free, reclaimable = _overcommit(g)
        assert status == 0, "memload dirty %d failed (%d) with deflate-on-oom: %s" % (need, status, out)
        actual = g.balloon_actual() // MIB
        # The balloon gave at least what the workload needed beyond the free
        # memory and what reclaim could find.
        assert actual - OOM_LEFT_MIB >= need - free - reclaimable, \
            "balloon gave back %d MiB, the workload needed %d MiB with %d MiB free, %d reclaimable" % (
                actual - OOM_LEFT_MIB, need, free, reclaimable)
        oom = _oom_lines(g)
        assert not oom, "OOM with deflate-on-oom:\n" + "\n".join(oom[:10])
        assert_healthy(g)
        ctx.note("deflate-on-oom: memload %d MiB with %d MiB free, %d reclaimable; balloon %d -> %d MiB" % (
            need, free, reclaimable, OOM_MEM_MIB - OOM_LEFT_MIB, OOM_MEM_MIB - actual))

    # Control: the same workload without the feature is killed.
    with ctx.guest(mem_mib=OOM_MEM_MIB, balloon={"deflate-on-oom": "off"}) as g:
        load(ctx, g)
        (status, out), need, _, _ = _overcommit(g)
        assert status != 0, "control: memload dirty %d succeeded without deflate-on-oom" % need
        killed = [line for line in _oom_lines(g) if re.search(r"Killed process \d+ \(memload\)", line)]
        assert killed, "control: memload failed (%d) but was not OOM-killed: %s" % (status, out)
        actual = g.balloon_actual() // MIB
        assert actual == OOM_LEFT_MIB, "control: balloon moved to %d MiB" % actual
        _assert_healthy_but_oom(g)
        ctx.note("control (deflate-on-oom=off): memload %d MiB OOM-killed, status %d" % (need, status))


def _assert_healthy_but_oom(g):
    """The kernel log is clean but for the OOM killer's report (which prints
    a call trace), from "invoked oom-killer" to "Killed process"."""
    lines, outside, inside = g.check("dmesg").splitlines(), [], False
    for line in lines:
        if "invoked oom-killer" in line:
            inside = True
        if not inside and vm.PROBLEM_RE.search(line):
            outside.append(line)
        if "Killed process" in line:
            inside = False
    assert not outside, "kernel log shows problems:\n" + "\n".join(outside[:20])


def _poison_in_migration(g, path):
    """The poison value QEMU holds for the guest, read from the device state
    it migrates to @path; None when PAGE_POISON was not negotiated (QEMU
    sends the page-poison subsection only then). A subsection is: 0x05, the
    name's length and name, version (be32), then poison_val (be32)."""
    g.qmp("migrate", uri="file:" + path)
    info = mig.wait(g, timeout=120)
    assert info["status"] == "completed", "migration to a file %s: %s" % (
        info["status"], info.get("error-desc"))
    g.qmp("cont")
    with open(path, "rb") as f:
        stream = f.read()
    os.unlink(path)
    head = b"\x05" + bytes([len(POISON_SUBSECTION)]) + POISON_SUBSECTION
    i = stream.rfind(head)
    if i < 0:
        return None
    i += len(head) + 4
    return int.from_bytes(stream[i:i + 4], "big")


def test_page_poison_negotiation(ctx, poison, device):
    """The rules of the in-tree driver: PAGE_POISON only when free pages are
    poisoned or zeroed, then with the right value; REPORTING declined when
    such a guest's device cannot take the value."""
    props = {"free-page-reporting": "on", "page-poison": device}
    guest_poisons = poison != "none"
    want = {F_PAGE_POISON: guest_poisons and device == "on",
            F_REPORTING: not guest_poisons or device == "on"}
    want_value = POISON_VALUE[poison] if want[F_PAGE_POISON] else None
    seen = {}
    with ctx.guest(mem_mib=512, balloon=props, append=POISON_ARGS[poison]) as g, \
            tempfile.TemporaryDirectory() as tmp:
        for name, command in _drivers(ctx).items():
            if seen:
                g.check("rmmod virtio_balloon")
            g.check(command)
            assert_bound(g)
            assert_driver_is(g, name)
            bits = _features(g)
            got = {bit: bits[bit] == "1" for bit in want}
            value = _poison_in_migration(g, os.path.join(tmp, name))
            seen[name] = (got, value)
            assert got == want, "%s driver: features %s, rule says %s (%s, page-poison=%s)" % (
                name, got, want, poison, device)
            assert value == want_value, "%s driver: device holds poison value %s, expected %s" % (
                name, value if value is None else hex(value), want_value)
        assert_healthy(g)
    ctx.note("%s, page-poison=%s: %s" % (poison, device, "; ".join(
        "%s PAGE_POISON %d REPORTING %d value %s" % (
            name, got[F_PAGE_POISON], got[F_REPORTING], value if value is None else hex(value))
        for name, (got, value) in seen.items())))


test_page_poison_negotiation.cases = {
    "%s,page-poison=%s" % (p, d): dict(poison=p, device=d)
    for p in POISON_ARGS for d in ("on", "off")}


def _rss_mib(g):
    with open("/proc/%d/status" % g.proc.pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1)) // 1024


def _free(g, pid):
    g.check("kill %s; while kill -0 %s 2>/dev/null; do sleep 0.1; done" % (pid, pid))


def _hold_and_free(g):
    """Write REPORT_HOLD_MIB in the guest, hold it, free it; return the QEMU
    resident size (MiB) before the write and while it was held."""
    before = _rss_mib(g)
    pid = mig.hold(g, REPORT_HOLD_MIB)
    held = _rss_mib(g)
    _free(g, pid)
    return before, held


def test_free_page_reporting(ctx, balloon, append, control):
    with ctx.guest(mem_mib=REPORT_MEM_MIB, balloon=balloon, append=append) as g:
        load(ctx, g)
        assert _features(g)[F_REPORTING] == "1", "REPORTING not negotiated"
        before, held = _hold_and_free(g)
        start = time.monotonic()
        want = REPORTED_SHARE * REPORT_HOLD_MIB
        vm.wait_for(lambda: held - _rss_mib(g) >= want, REPORT_TIMEOUT, lambda: (
            "QEMU resident %d MiB while %d MiB were held, %d MiB %ds after freeing them" % (
                held, REPORT_HOLD_MIB, _rss_mib(g), REPORT_TIMEOUT)), interval=0.5)
        took = time.monotonic() - start
        after = _rss_mib(g)
        assert_healthy(g)
        ctx.note("reporting on: QEMU RSS %d MiB, %d MiB holding %d MiB, %d MiB %.1fs after freeing" % (
            before, held, REPORT_HOLD_MIB, after, took))

    if not control:
        return
    # Control: without the feature the host keeps the memory as long.
    with ctx.guest(mem_mib=REPORT_MEM_MIB, balloon={"free-page-reporting": "off"}) as g:
        load(ctx, g)
        before, held = _hold_and_free(g)
        deadline = time.monotonic() + took + 2 * REPORT_DELAY
        lowest = held
        while time.monotonic() < deadline:
            lowest = min(lowest, _rss_mib(g))
            time.sleep(0.5)
        assert held - lowest <= KEPT_SHARE * REPORT_HOLD_MIB, \
            "control: QEMU RSS fell from %d to %d MiB without reporting" % (held, lowest)
        assert_healthy(g)
        ctx.note("reporting off: QEMU RSS %d MiB, %d MiB holding, lowest %d MiB in %.1fs after freeing" % (
            before, held, lowest, took + 2 * REPORT_DELAY))


# With hinting offered but declined (init_on_free=1 makes the driver decline
# it), QEMU still has the free page queue before the reporting queue: reports
# must reach the latter (they once went to the former, which drops them).
test_free_page_reporting.cases = {
    "alone": dict(balloon={"free-page-reporting": "on"}, append="", control=True),
    "hinting_declined": dict(balloon={"free-page-reporting": "on", "free-page-hint": "on"},
                             append="init_on_free=1", control=False),
}


def vmstat(g, name):
    return int(re.search(r"^%s (\d+)$" % name, g.check("cat /proc/vmstat"), re.M).group(1))


def compactable_balloon(g):
    """Inflate the balloon of a COMPACT_MEM_MIB guest to COMPACT_TARGET,
    interleaved with free pages, where compaction moves its pages."""
    pid = mig.fragment(g, FRAGMENT_MIB, FRAGMENT_EVERY)
    g.set_balloon(COMPACT_TARGET)
    _free(g, pid)


def test_balloon_compaction(ctx):
    with ctx.guest(mem_mib=COMPACT_MEM_MIB) as g:
        load(ctx, g)
        total0, free0 = memory_kib(g)
        compactable_balloon(g)
        total1, _ = memory_kib(g)
        moved0 = vmstat(g, "balloon_migrate")
        for passes in range(1, COMPACT_PASSES + 1):
            g.check("echo 1 > /proc/sys/vm/compact_memory", timeout=300)
            moved = vmstat(g, "balloon_migrate") - moved0
            if moved:
                break
        assert moved > 0, "%d compaction passes moved no balloon page:\n%s" % (
            COMPACT_PASSES, g.check("grep -E '^(compact|pgmigrate|balloon)_' /proc/vmstat"))
        actual = g.balloon_actual()
        assert actual == COMPACT_TARGET, "after compaction actual %d MiB, target %d MiB" % (
            actual // MIB, COMPACT_TARGET // MIB)
        total2, _ = memory_kib(g)
        assert total2 == total1, "MemTotal %d KiB after compaction, %d KiB before" % (total2, total1)
        g.set_balloon(COMPACT_MEM_MIB * MIB)
        total3, free3 = memory_kib(g)
        assert total3 == total0, "MemTotal %d KiB after deflating, %d KiB before" % (total3, total0)
        assert_free_drop(free0, free3, 0, "deflated after compaction")
        assert_healthy(g)
        ctx.note("compaction moved %d balloon pages in %d pass(es); free %d KiB before, %d KiB after "
               "the round trip" % (moved, passes, free0, free3))


def freeze_restore(g):
    """Hibernation's device freeze and restore, through pm_test (no image is
    written: that needs swap and a resume boot); checks that it ran."""
    g.check("echo devices > /sys/power/pm_test; echo disk > /sys/power/state", timeout=180)
    dmesg = g.check("dmesg")
    missing = [m for m in PM_MESSAGES if not re.search(m, dmesg)]
    assert not missing, "hibernation test did not run, dmesg lacks %s" % missing


def test_freeze_restore(ctx):
    """Hibernation's device freeze and restore, through pm_test (no image is
    written: that needs swap and a resume boot), while a live migration with
    free page hinting copies the guest and the balloon is inflated."""
    target = (mig.MEM_MIB - FREEZE_BALLOON_MIB) * MIB
    with ctx.guest(mem_mib=mig.MEM_MIB, balloon=mig.HINT,
                 append=HIBERNATE_APPEND) as src:
        load(ctx, src)
        mig.prepare(src, mig.HOLD_MIB, mig.DIRTY_MIB)
        _, free0 = memory_kib(src)
        src.set_balloon(target)
        started = int(mig.hint_stat(src, "sessions_started"))
        dst = mig.start(src, bandwidth_mib=FREEZE_BANDWIDTH_MIB)
        with dst:
            vm.wait_for(lambda: int(mig.hint_stat(src, "sessions_started")) > started, 60,
                        lambda: "no hinting session began", interval=0.2)
            events = len(src.qmp.events)
            freeze_restore(src)
            # Freeze empties the balloon, restore fills it again.
            vm.wait_for(lambda: src.balloon_actual() == target, 120, lambda: (
                "after restore actual %d MiB, target %d MiB" % (src.balloon_actual() // MIB,
                                                                target // MIB)))
            sizes = [e["data"]["actual"] // MIB for e in src.qmp.events[events:]
                     if e["event"] == "BALLOON_CHANGE"]
            assert sizes and max(sizes) == mig.MEM_MIB, \
                "the balloon was not emptied while frozen: sizes %s MiB" % sizes
            state = src.qmp.cmd("query-migrate")["status"]
            assert state == "active", "migration %s when the guest was restored" % state
            src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1250 * MIB})
            mig.finish(src, dst)
            mig.assert_intact(dst, "after freeze/restore")
            mig.assert_clean(src, "freeze/restore (source)", running=False)
            mig.assert_clean(dst, "freeze/restore (destination)")
            actual = dst.balloon_actual()
            assert actual == target, "migrated balloon at %d MiB, target %d MiB" % (
                actual // MIB, target // MIB)
            hinted = int(mig.hint_stat(dst, "total_pages"))
            again, _ = mig.migrate(dst)
            with again:
                mig.assert_intact(again, "migration after freeze/restore")
                mig.assert_clean(again, "migration after freeze/restore")
                total_pages = int(mig.hint_stat(again, "total_pages"))
                assert total_pages > hinted, "no page hinted after freeze/restore (%d before)" % hinted
                again.set_balloon(mig.MEM_MIB * MIB)
                _, free1 = memory_kib(again)
                assert_free_drop(free0, free1, 0, "deflated after freeze/restore")
                mig.assert_clean(again, "after deflating")
                ctx.note("balloon sizes seen (MiB): %s; pages hinted %d before, %d after; "
                       "free %d KiB before, %d KiB after" % (
                           sizes, hinted, total_pages, free0, free1))

# Run on every kernel, also those whose line in tools/testing/kernels says "core".
test_balloon_compaction.core = True
