# SPDX-License-Identifier: GPL-2.0
"""Faults the driver must survive, each an end-to-end test in QEMU guests.

The module unloaded or the device removed while a hinting session runs or
while the balloon inflates, the balloon target changed during hinting, a
migration started while the balloon inflates. After each fault the data set
is intact, no kernel log (source or destination) shows a problem, no page
leaked (MemTotal and free memory are back once the balloon is empty or gone)
and a following live migration with free page hinting works.
"""

import re
import time

import migration as mig
import vm
from migration import HINT, MEM_MIB, PARAMS
from test_balloon import FREE_TOLERANCE, memory_kib
from host_build import MIB

FULL = MEM_MIB * MIB
# Inflating this much takes seconds under TCG, long enough to act midway,
# and leaves the guest (holding its data set) a few hundred MiB.
BIG_MIB = 768
# The only virtio device of these guests, as in migration.hint_stat().
VIRTIO = "/sys/bus/virtio/devices/virtio0"
# Free memory after a fault may differ from before by the share of a 512 MiB
# balloon test_balloon allows (the kernel's own allocations meanwhile, the
# module's memory when it is unloaded): a leaked balloon holds far more, the
# QUARTER_MIB or more inflated when the fault struck. Hinting takes no page
# (Documentation/free-page-hinting.rst); there this catches gross leaks only.
LEAK_KIB = int(FREE_TOLERANCE * 512 * MIB) // 1024
# Free memory in single pages (half of FRAGMENT_MIB), read one free-list
# entry per zone-lock acquisition and queued as that many ranges: a hinting
# session then lasts seconds (7 s measured under TCG, against 2 ms for the
# same guest's free memory in 4 MiB blocks), long enough to act while it runs.
FRAGMENT_MIB = 1024
SLOW_BUDGET = 1
# A link slow enough for the migration to outlast the first session.
SLOW_MIB_S = 200
# Act on the balloon once it is this far into inflating: well under way,
# yet seconds from its target.
QUARTER_MIB = BIG_MIB // 4
# Shell condition, true while a hinting session runs: sessions started read
# before sessions ended, so started > ended means one had not ended yet.
HINTING = ("d=%s/free_page_hint; s=$(cat $d/sessions_started) && "
           "e=$(cat $d/sessions_completed $d/aborted_* | awk '{n += $1} END {print n}') && "
           "[ $s -gt $e ]" % VIRTIO)
# A hot-pluggable slot on q35 and an iothread for a hot-plugged balloon.
SLOT = ["-object", "iothread,id=io1", "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1"]
SLOT_BALLOON = dict(HINT, bus="rp1", iothread="io1")


def slow_hinting(g, mib=FRAGMENT_MIB):
    """Make the hinting sessions of @g last seconds (see FRAGMENT_MIB):
    @mib fragmented, one free-list entry per lock acquisition."""
    mig.fragment(g, mib)
    g.check("echo %d > %shint_lock_budget" % (SLOW_BUDGET, PARAMS))


def _when(g, condition, command, timeout=90):
    """Run @command in the guest as soon as the shell @condition holds, in the
    same guest command: no host round trip between seeing it and acting.
    Return the output; "status N" on its last line is @command's status."""
    return g.check("end=$(($(date +%%s) + %d)); until %s; do [ $(date +%%s) -lt $end ] || exit 3; "
                   "usleep 5000; done; %s; echo status $?" % (timeout - 30, condition, command),
                   timeout=timeout)


def _figure(out, name):
    m = re.search(r"\b%s (\d+)" % name, out)
    assert m, "no %s in:\n%s" % (name, out)
    return int(m.group(1))


def _when_hinting(g, command):
    """@command, run while a hinting session is in progress; returns
    (sessions started, sessions ended, @command's status) as seen right before."""
    out = _when(g, HINTING, "echo started $s ended $e; " + command)
    started, ended = _figure(out, "started"), _figure(out, "ended")
    assert started > ended, "no session in progress: %s" % out
    return started, ended, _figure(out, "status")


def _migrate_with(src, fault, bandwidth_mib=SLOW_MIB_S):
    """Migrate @src, calling fault() once the migration started; return
    (destination, what fault() returned)."""
    result = []
    dst, _ = mig.migrate(src, bandwidth_mib, during=lambda: result.append(fault()))
    return dst, result[0]


def _reaches(g, target):
    """Seconds until the balloon of @g reaches @target, set before (not
    asked again here: the target must have travelled with the migration)."""
    start = time.monotonic()
    vm.wait_for(lambda: g.balloon_actual() == target, 120, lambda: "actual %d MiB, target %d MiB" % (
        g.balloon_actual() // MIB, target // MIB), interval=0.2)
    return time.monotonic() - start


def _bound(g):
    return g.run("readlink %s/driver" % VIRTIO)[1].endswith("/virtio_balloon")


def _wait_bound(g, what):
    vm.wait_for(lambda: _bound(g), 60, lambda: "%s: no balloon bound to virtio_balloon: %s" % (
        what, g.run("ls -l /sys/bus/virtio/devices/; dmesg | tail -5")[1]), interval=0.5)


def _survived(ctx, src, g, what, before, restore=None):
    """The checks after every fault. @g lives on (@src's migration
    destination, or @src itself) with its balloon empty or gone: the data set
    is intact, the kernel logs are clean, MemTotal and free memory are back
    to @before (memory_kib() before the fault). Then restore() brings the
    driver or device back and a hinted migration of @g works."""
    mig.assert_intact(g, what)
    if src is not g:
        mig.assert_clean(src, what + " (source)", running=False)
    mig.assert_clean(g, what)
    total0, free0 = before
    vm.wait_for(lambda: memory_kib(g)[0] == total0 and abs(memory_kib(g)[1] - free0) <= LEAK_KIB, 60,
                lambda: "%s: MemTotal %d KiB, free %d KiB; before the fault %d and %d KiB (+-%d)" % (
                    (what,) + memory_kib(g) + (total0, free0, LEAK_KIB)), interval=0.5)
    total1, free1 = memory_kib(g)
    ctx.note("%s: MemTotal %d -> %d KiB, free %d -> %d KiB (%+d)" % (
        what, total0, total1, free0, free1, free1 - free0))
    if restore:
        restore()
    pages = int(mig.hint_stat(g, "total_pages"))
    dst, info = mig.migrate(g)
    with dst:
        mig.assert_intact(dst, what + ", next migration")
        mig.assert_clean(g, what + ", next migration (source)", running=False)
        mig.assert_clean(dst, what + ", next migration (destination)")
        grown = int(mig.hint_stat(dst, "total_pages")) - pages
        assert grown > 0, "%s: the next migration hinted no page" % what
        ctx.note("%s: next migration hinted %d MiB, sent %d MiB" % (
            what, grown * 4096 // MIB, info["ram"]["transferred"] // MIB))


def _reload(g):
    mig.load_driver(g, "ours")
    _wait_bound(g, "reloaded")


def test_unload_while_hinting(ctx):
    with mig.hinted_guest(ctx) as src:
        slow_hinting(src)
        before = memory_kib(src)
        dst, (started, ended, status) = _migrate_with(
            src, lambda: _when_hinting(src, "rmmod virtio_balloon"))
        with dst:
            assert status == 0, "rmmod failed (%d) during a hinting session" % status
            ctx.note("rmmod with session %d in progress (%d ended before)" % (started, ended))
            assert dst.run("lsmod | grep -w virtio_balloon")[0] != 0, "virtio_balloon still loaded"
            _survived(ctx, src, dst, "unloaded while hinting", before, lambda: _reload(dst))


def test_unload_while_inflating(ctx):
    with mig.hinted_guest(ctx) as g:
        before = memory_kib(g)
        g.qmp("balloon", value=FULL - BIG_MIB * MIB)
        # In the guest: unload once MemTotal has dropped by a quarter of the
        # balloon, and say by how much exactly.
        out = _when(g, "m=$(awk '/^MemTotal/ {print $2}' /proc/meminfo) && [ $m -le %d ]" % (
            before[0] - QUARTER_MIB * 1024), "echo memtotal $m; rmmod virtio_balloon")
        assert _figure(out, "status") == 0, "rmmod failed during inflation:\n" + out
        inflated = before[0] - _figure(out, "memtotal")
        assert 0 < inflated < BIG_MIB * 1024, "%d KiB inflated at rmmod, the target was %d KiB" % (
            inflated, BIG_MIB * 1024)
        actual = g.balloon_actual()
        assert actual == FULL, "query-balloon actual %d MiB after unload" % (actual // MIB)
        ctx.note("rmmod with %d of %d MiB inflated; actual back to %d MiB" % (
            inflated // 1024, BIG_MIB, actual // MIB))

        def restore():
            g.qmp("balloon", value=FULL)
            _reload(g)
        _survived(ctx, g, g, "unloaded while inflating", before, restore)


def _plug(g):
    """Hot-plug a hinting balloon into the free slot and wait for our driver
    to bind it; from now on migration destinations start with it."""
    g.qmp("device_add", driver="virtio-balloon-pci", id="balloon0",
          **{name: value == "on" if value in ("on", "off") else value
             for name, value in SLOT_BALLOON.items()})
    _wait_bound(g, "hot-plugged")
    g.options["balloon"] = SLOT_BALLOON


def _unplugged(g):
    """Whether QEMU has deleted the balloon (it leaves /machine/peripheral
    once the guest let go of it)."""
    return "balloon0" not in [p["name"] for p in g.qmp("qom-list", path="/machine/peripheral")]


def _gone(g, seen):
    """Whether QEMU deleted the balloon; until then append its actual to
    @seen (what the driver reported: it deflates before it lets go)."""
    try:
        seen.append(g.balloon_actual())
        return False
    except RuntimeError:  # no balloon device any more
        return _unplugged(g)


def _unplug(g):
    """device_del the balloon and wait until QEMU and the guest are rid of
    it; return (its actual at each look, seconds it took)."""
    seen = [g.balloon_actual()]
    start = time.monotonic()
    g.qmp("device_del", id="balloon0")
    # q35 hot-plugs through ACPI (the guest's acpiphp), which ejects at
    # once; pciehp would wait 5 s after its attention button.
    vm.wait_for(lambda: _gone(g, seen), 60, lambda: "balloon0 still there after device_del", interval=0.2)
    vm.wait_for(lambda: g.run("test -e %s" % VIRTIO)[0] != 0, 30, lambda: "the guest still has virtio0")
    g.options["balloon"] = False
    return seen, time.monotonic() - start


def test_unplug_while_inflating(ctx):
    with mig.hinted_guest(ctx, balloon=False, devices=SLOT) as g:
        before = memory_kib(g)
        _plug(g)
        g.qmp("balloon", value=FULL - BIG_MIB * MIB)
        vm.wait_for(lambda: g.balloon_actual() <= FULL - QUARTER_MIB * MIB, 60,
                    lambda: "the balloon does not inflate: actual %d MiB" % (g.balloon_actual() // MIB))
        seen, seconds = _unplug(g)
        assert seen[0] > FULL - BIG_MIB * MIB, "the balloon was full at device_del"
        ctx.note("device_del with %d of %d MiB inflated, at most %d, %d at the last look; gone after %.1fs" % (
            (FULL - seen[0]) // MIB, BIG_MIB, (FULL - min(seen)) // MIB, (FULL - seen[-1]) // MIB, seconds))
        _survived(ctx, g, g, "unplugged while inflating", before, lambda: _plug(g))


def _pci_address(g):
    """PCI address of the balloon, the parent of its virtio device in sysfs."""
    return g.check("basename $(dirname $(readlink -f %s))" % VIRTIO)


def test_remove_while_hinting(ctx):
    with mig.hinted_guest(ctx, balloon=SLOT_BALLOON, devices=SLOT) as src:
        slow_hinting(src)
        bdf = _pci_address(src)
        before = memory_kib(src)

        def fault():
            # QEMU keeps the device while migrating: only the guest can let go.
            vm.wait_for(lambda: src.run(HINTING)[0] == 0, 60, lambda: "no hinting session")
            try:
                src.qmp("device_del", id="balloon0")
                refused = None
            except RuntimeError as e:
                refused = str(e)
            assert refused and "migrat" in refused, "device_del while migrating: %s" % refused
            ctx.note("device_del refused: " + re.search(r"'desc': '([^']*)'", refused).group(1))
            return _when_hinting(src, "echo 1 > /sys/bus/pci/devices/%s/remove" % bdf)

        dst, (started, ended, status) = _migrate_with(src, fault)
        with dst:
            assert status == 0, "removing %s failed (%d) during a hinting session" % (bdf, status)
            ctx.note("%s removed with session %d in progress (%d ended before)" % (bdf, started, ended))
            assert dst.run("test -e %s" % VIRTIO)[0] != 0, "virtio0 still there after the remove"

            def restore():
                dst.check("echo 1 > /sys/bus/pci/rescan")
                _wait_bound(dst, "rescanned")
                # Now that QEMU allows it, the device also goes and comes back for real.
                ctx.note("rescanned, then device_del in %.1fs and device_add" % _unplug(dst)[1])
                _plug(dst)
            _survived(ctx, src, dst, "removed while hinting", before, restore)


def test_target_change_while_hinting(ctx):
    with mig.hinted_guest(ctx) as src:
        slow_hinting(src)
        before = memory_kib(src)
        target = FULL - 256 * MIB

        def fault():
            started = _when_hinting(src, "true")[0]
            src.qmp("balloon", value=target)
            rc, out = src.run(HINTING + " && echo started $s")
            assert rc == 0 and _figure(out, "started") == started, \
                "session %d ended before the target changed: %s" % (started, out)
            return started

        dst, started = _migrate_with(src, fault)
        with dst:
            seconds = _reaches(dst, target)
            ends = dst.check("cd %s/free_page_hint; grep . sessions_* aborted_* | grep -v ':0$'" % VIRTIO)
            ctx.note("target %d MiB set during session %d, reached %.1fs after the migration; %s" % (
                target // MIB, started, seconds, ends.replace("\n", " ")))
            dst.set_balloon(FULL)
            _survived(ctx, src, dst, "target changed while hinting", before)


def test_migration_while_inflating(ctx):
    with mig.hinted_guest(ctx) as src:
        before = memory_kib(src)
        target = FULL - BIG_MIB * MIB
        src.qmp("balloon", value=target)
        dst, actual = _migrate_with(src, src.balloon_actual, bandwidth_mib=1250)
        with dst:
            assert actual > target, "the balloon was full (%d MiB) when the migration started" % (
                actual // MIB)
            seconds = _reaches(dst, target)
            ctx.note("migration started with %d of %d MiB inflated; target reached %.1fs after" % (
                (FULL - actual) // MIB, BIG_MIB, seconds))
            dst.set_balloon(FULL)
            _survived(ctx, src, dst, "migrated while inflating", before)
