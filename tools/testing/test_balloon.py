# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of the classic balloon, in QEMU guests on each kernel.

Every test asserts on values it measures in the guest or through QMP. Free
memory is the buddy allocator's free pages (MemFree) plus the pages parked on
the per-CPU lists, both read at once from /proc/zoneinfo: with the per-CPU
lists, an idle guest's free memory before and after a 512 MiB balloon round
trip differs by less than 100 KiB, while MemFree alone wanders by up to
35 MiB.
"""

import itertools
import re
import statistics
import time

import vm
from host_build import MIB

MEM_MIB = 1024
HALF = MEM_MIB // 2 * MIB
FULL = MEM_MIB * MIB
# Free memory may differ from what the balloon explains by this share of the
# balloon: room for the kernel's own allocations during a test (slabs, the
# shell), while a driver that leaks or returns the wrong pages by more than
# ~10 MiB of a 512 MiB balloon is caught.
FREE_TOLERANCE = 0.02
# Guest stats are up to one polling interval old: an idle guest's free and
# available memory move by far less than this share of its total memory.
STATS_TOLERANCE = 0.05
BALLOON_PROPS = ("free-page-hint", "free-page-reporting", "deflate-on-oom")
ROUNDS = 3


def balloon_device(g):
    """sysfs directory of the virtio device with id 5 (the balloon)."""
    path = g.check("grep -l '^0x0005$' /sys/bus/virtio/devices/*/device")
    return path.splitlines()[0].rsplit("/", 1)[0]


def assert_bound(g):
    dev = balloon_device(g)
    driver = g.check("readlink %s/driver || true" % dev)
    assert driver.endswith("/virtio_balloon"), "%s is bound to %r, not virtio_balloon" % (dev, driver)


def assert_driver_is(g, module):
    """The loaded virtio_balloon is ours (the updates/ file) or the in-tree one."""
    status, version = g.run("cat /sys/module/virtio_balloon/version")
    if module == "ours":
        assert status == 0 and version, "the loaded virtio_balloon has no version: not ours"
        loaded = g.check("cat /sys/module/virtio_balloon/srcversion")
        built = g.check("modinfo -F srcversion /lib/modules/$(uname -r)/updates/virtio_balloon.ko")
        assert loaded == built, "loaded srcversion %s, updates/virtio_balloon.ko has %s" % (loaded, built)
    else:
        assert status != 0, "the loaded virtio_balloon has version %r: not the in-tree one" % version


def load(ctx, g, command="modprobe virtio_balloon"):
    """Load the driver under test with @command; check it is bound and the right one."""
    status, out = g.run("lsmod | grep -w virtio_balloon")
    assert status != 0, "virtio_balloon was loaded before the test loaded it:\n" + out
    g.check(command)
    assert_bound(g)
    assert_driver_is(g, ctx.module)


def assert_healthy(g):
    problems = g.dmesg_problems()
    assert not problems, "kernel log shows problems:\n" + "\n".join(problems[:20])


def memory_kib(g):
    """(MemTotal, free memory) in KiB, free including the per-CPU lists.

    Both parts of free memory come from one read of /proc/zoneinfo. Read
    apart (MemFree from /proc/meminfo a command later), a drain of the
    per-CPU lists in between counted them twice: 30 MiB too much on 6.12."""
    zoneinfo = g.check("cat /proc/zoneinfo")
    buddy = sum(int(n) for n in re.findall(r"^\s+pages free\s+(\d+)$", zoneinfo, re.M))
    pcp = sum(int(n) for n in re.findall(r"^\s+count:\s+(\d+)$", zoneinfo, re.M))
    return g.meminfo()["MemTotal"], (buddy + pcp) * 4


def assert_free_drop(before, after, expected_kib, what):
    drop = before - after
    assert abs(drop - expected_kib) <= FREE_TOLERANCE * HALF // 1024, \
        "%s: free memory dropped by %d KiB, expected %d KiB (+-%d%% of the balloon)" % (
            what, drop, expected_kib, FREE_TOLERANCE * 100)


def guest_stats(g):
    return g.qmp("qom-get", path=vm.BALLOON_QOM, property="guest-stats")


def start_stats(g, interval):
    """Turn stats polling on and wait for the first report from the driver."""
    g.qmp("qom-set", path=vm.BALLOON_QOM, property="guest-stats-polling-interval",
              value=interval)
    vm.wait_for(lambda: guest_stats(g)["last-update"] > 0, 10 * interval,
                lambda: "no guest stats: %s" % guest_stats(g), interval=0.2)
    return guest_stats(g)


def test_load_and_bind(ctx, **props):
    with ctx.guest(mem_mib=MEM_MIB, balloon=props) as g:
        load(ctx, g)
        # Queue indices must match what the device offers whatever the
        # properties: exercise inflate, deflate and stats queues.
        g.set_balloon(FULL - 64 * MIB, timeout=60)
        g.set_balloon(FULL, timeout=60)
        stats = start_stats(g, 1)["stats"]
        assert stats["stat-total-memory"] > 0, "stats: %s" % stats
        assert_healthy(g)


test_load_and_bind.cases = {
    ",".join("%s=%s" % kv for kv in zip(BALLOON_PROPS, values)): dict(zip(BALLOON_PROPS, values))
    for values in itertools.product(("off", "on"), repeat=len(BALLOON_PROPS))}


def test_autoload_by_modalias(ctx):
    with ctx.guest(mem_mib=MEM_MIB) as g:
        dev = balloon_device(g)
        load(ctx, g, "modprobe $(cat %s/modalias)" % dev)
        assert_healthy(g)


def test_inflate_half_and_deflate(ctx):
    with ctx.guest(mem_mib=MEM_MIB) as g:
        load(ctx, g)
        total0, free0 = memory_kib(g)
        inflate = g.set_balloon(HALF)
        total1, free1 = memory_kib(g)
        # Without deflate-on-oom the balloon's pages leave MemTotal exactly.
        assert total0 - total1 == HALF // 1024, "MemTotal dropped by %d KiB for a %d KiB balloon" % (
            total0 - total1, HALF // 1024)
        assert_free_drop(free0, free1, HALF // 1024, "inflated")
        deflate = g.set_balloon(FULL)
        total2, free2 = memory_kib(g)
        assert total2 == total0, "MemTotal %d KiB after deflating, %d KiB before" % (total2, total0)
        assert_free_drop(free0, free2, 0, "deflated")
        ctx.note("inflate %.2fs, deflate %.2fs; MemTotal %d -> %d -> %d KiB" % (
            inflate, deflate, total0, total1, total2))
        assert_healthy(g)


def test_guest_stats(ctx):
    with ctx.guest(mem_mib=MEM_MIB) as g:
        load(ctx, g)
        first = start_stats(g, 1)
        m = g.meminfo()
        s = first["stats"]
        total = m["MemTotal"] * 1024
        slack = STATS_TOLERANCE * total
        assert s["stat-total-memory"] == total, "total-memory %d, MemTotal %d" % (
            s["stat-total-memory"], total)
        assert 0 < s["stat-free-memory"] < total, "free-memory %d of %d" % (s["stat-free-memory"], total)
        assert abs(s["stat-free-memory"] - m["MemFree"] * 1024) <= slack, \
            "free-memory %d, MemFree %d" % (s["stat-free-memory"], m["MemFree"] * 1024)
        assert 0 < s["stat-available-memory"] <= total and \
            abs(s["stat-available-memory"] - m["MemAvailable"] * 1024) <= slack, \
            "available-memory %d, MemAvailable %d" % (s["stat-available-memory"], m["MemAvailable"] * 1024)
        time.sleep(2.5)
        second = guest_stats(g)
        assert second["last-update"] > first["last-update"], "last-update did not advance: %d, then %d" % (
            first["last-update"], second["last-update"])
        ctx.note("total %d MiB, free %d MiB, available %d MiB, last-update +%ds" % (
            s["stat-total-memory"] // MIB, s["stat-free-memory"] // MIB,
            s["stat-available-memory"] // MIB, second["last-update"] - first["last-update"]))
        assert_healthy(g)


def test_unload_while_inflated(ctx):
    with ctx.guest(mem_mib=MEM_MIB) as g:
        load(ctx, g)
        total0, free0 = memory_kib(g)
        g.set_balloon(HALF)
        g.check("rmmod virtio_balloon")
        total1, free1 = memory_kib(g)
        assert total1 == total0, "MemTotal %d KiB after unload, %d KiB before inflating" % (total1, total0)
        assert_free_drop(free0, free1, 0, "unloaded")
        # The driver gives every page back to the host before it goes.
        actual = g.balloon_actual()
        assert actual == FULL, "query-balloon actual %d MiB after unload" % (actual // MIB)
        # The host's target is still half: the reloaded driver inflates again.
        load(ctx, g)
        vm.wait_for(lambda: g.balloon_actual() == HALF, 60,
                    lambda: "after reload actual %d MiB, target %d MiB" % (g.balloon_actual() // MIB,
                                                                            HALF // MIB))
        total2, free2 = memory_kib(g)
        assert total0 - total2 == HALF // 1024, "after reload MemTotal dropped by %d KiB" % (total0 - total2)
        assert_free_drop(free0, free2, HALF // 1024, "reloaded")
        g.set_balloon(FULL)
        g.check("rmmod virtio_balloon")
        assert_healthy(g)


def test_inflate_deflate_timing(ctx):
    """Half the guest memory in and out with the in-tree driver and, with
    --module ours, ours: rounds alternate between the drivers so that a
    change in the host's load weighs on both alike."""
    drivers = {"in-tree": "insmod " + ctx.intree_ko}
    if ctx.module == "ours":
        drivers["ours"] = "modprobe virtio_balloon"
    times = {name: ([], []) for name in drivers}
    with ctx.guest(mem_mib=MEM_MIB) as g:
        for _ in range(ROUNDS):
            for name, command in drivers.items():
                g.check(command)
                assert_bound(g)
                assert_driver_is(g, "intree" if name == "in-tree" else "ours")
                times[name][0].append(g.set_balloon(HALF))
                times[name][1].append(g.set_balloon(FULL))
                g.check("rmmod virtio_balloon")
        assert_healthy(g)
    for name, (inflate, deflate) in times.items():
        ctx.timing(name, statistics.median(inflate), statistics.median(deflate))
        ctx.note("%s: inflate %s s, deflate %s s" % (
            name, " ".join("%.2f" % t for t in inflate), " ".join("%.2f" % t for t in deflate)))

# Run on every kernel, also those whose line in tools/testing/kernels says "core".
test_load_and_bind.core = True
test_autoload_by_modalias.core = True
test_inflate_half_and_deflate.core = True
test_guest_stats.core = True
test_unload_while_inflated.core = True
test_inflate_deflate_timing.core = True
