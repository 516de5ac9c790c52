# SPDX-License-Identifier: GPL-2.0
"""Memory that goes offline, comes back and is removed while hinting walks it.

The guest has a 512 MiB DIMM, onlined into ZONE_MOVABLE
(memhp_default_state=online_movable). While hinted live migrations run with
slow sessions (one free-list entry per lock acquisition, fragmented free
memory), a loop in the guest offlines every block of the DIMM, which empties
ZONE_MOVABLE and frees its per-CPU lists, and onlines them again. Then the
DIMM is removed (QEMU refuses that during a migration) and one more hinted
migration runs. Throughout: the data set stays intact, the kernel log is
clean and no page leaks.

The guests run on the emulating QEMU with KVM's dirty logging: that is what
users run, and Debian's QEMU 10.0.2 under TCG cannot migrate a guest with a
DIMM at all (it re-arms write tracking at the wrong address and asserts in
tlb_reset_dirty_range_all(); qemu-host-emulation.patch fixes that).
"""

import migration as mig
import vm
from test_balloon import memory_kib
from test_faults import LEAK_KIB, slow_hinting

MEM_MIB = 1024
DIMM_MIB = 512
DIMM = ["-object", "memory-backend-ram,id=mem1,size=%dM" % DIMM_MIB,
        "-device", "pc-dimm,id=dimm1,memdev=mem1"]
HOLD_MIB = 64
DIRTY_MIB = 256
FRAGMENT_MIB = 512
MIGRATIONS = 3
MAX_MIGRATIONS = 6
# Slow enough for each migration to outlast a few hotplug rounds.
BANDWIDTH_MIB = 100
HOTPLUG_LOG = "/tmp/hotplug.log"
STOP = "/tmp/hotplug.stop"
# In the guest: offline every memory block at or above 4 GiB (the DIMM; base
# memory is below), note ZONE_MOVABLE's present pages, online them again, until
# STOP exists. One line per round: "round N present P failed F".
LOOP = (
    "m=/sys/devices/system/memory; bs=$((0x$(cat $m/block_size_bytes))); "
    "blocks=$(for d in $m/memory*; do n=${d##*memory}; "
    "[ $((n * bs)) -ge $((1 << 32)) ] && echo $n; done); "
    "[ -n \"$blocks\" ] || { echo no-dimm-blocks > %(log)s; exit 1; }; r=0; "
    "while [ ! -e %(stop)s ]; do f=0; r=$((r + 1)); "
    "for n in $blocks; do echo offline > $m/memory$n/state 2>/dev/null || f=$((f + 1)); done; "
    "p=$(awk '/zone +Movable/ {z = 1} z && /present/ {print $2; exit}' /proc/zoneinfo); "
    "for n in $blocks; do echo online_movable > $m/memory$n/state 2>/dev/null; done; "
    "echo round $r present ${p:-none} failed $f >> %(log)s; done; echo done >> %(log)s"
) % dict(log=HOTPLUG_LOG, stop=STOP)


def _rounds(g):
    out = g.check("cat %s 2>/dev/null || true" % HOTPLUG_LOG)
    return [line.split() for line in out.splitlines() if line.startswith("round ")]


def test_offline_online_and_remove_while_hinting(ctx):
    with ctx.guest(mem_mib=MEM_MIB, maxmem_mib=4096, devices=DIMM, balloon={"free-page-hint": "on"},
                 append="memhp_default_state=online_movable", host="kvm-dirty-log") as g:
        mig.load_driver(g, "ours")
        total0, _ = memory_kib(g)
        assert total0 > MEM_MIB * 1024, "MemTotal %d KiB: the DIMM is not online" % total0
        mig.prepare(g, HOLD_MIB, DIRTY_MIB)
        slow_hinting(g, FRAGMENT_MIB)
        g.check("(%s) >/dev/null 2>&1 &" % LOOP)
        vm.wait_for(lambda: _rounds(g), 120, lambda: "no hotplug round: %s" % g.run(
            "cat %s" % HOTPLUG_LOG)[1], interval=0.5)

        # At least MIGRATIONS, and more (up to MAX_MIGRATIONS) until a
        # session's walk has seen a hotplug event: whether one lands between
        # two steps of a walk is a matter of timing.
        src, sessions, restarts = g, [], 0
        for i in range(MAX_MIGRATIONS):
            dst, _ = mig.migrate(src, bandwidth_mib=BANDWIDTH_MIB)
            mig.assert_clean(src, "migration %d (source)" % i, running=False)
            if src is not g:
                src.close()
            src = dst
            sessions.append(int(mig.hint_stat(src, "sessions_started")))
            restarts = int(mig.hint_stat(src, "walk_hotplug_restarts"))
            if i + 1 >= MIGRATIONS and restarts > 0:
                break
        assert restarts > 0, "no hinting session saw a hotplug event in %d migrations: sessions %s" % (
            len(sessions), sessions)
        with src:
            src.check("touch %s" % STOP)
            vm.wait_for(lambda: "done" in src.check("cat %s" % HOTPLUG_LOG), 300,
                        lambda: "the hotplug loop did not stop", interval=0.5)
            rounds = _rounds(src)
            emptied = sum(1 for r in rounds if r[3] == "0")
            assert emptied >= 2, "ZONE_MOVABLE was emptied in %d of %d rounds: %s" % (
                emptied, len(rounds), rounds[-5:])
            mig.assert_intact(src, "after offline/online rounds")
            mig.assert_clean(src, "after offline/online rounds")
            total1, free1 = memory_kib(src)
            assert total1 == total0, "MemTotal %d KiB after the rounds, %d KiB before" % (
                total1, total0)

            # Remove the DIMM, then migrate once more without it.
            src.qmp("device_del", id="dimm1")
            vm.wait_for(lambda: not src.qmp("query-memory-devices"), 120,
                        lambda: "the guest did not give the DIMM up", interval=0.5)
            src.qmp("object-del", id="mem1")
            total2, _ = memory_kib(src)
            assert total2 == total0 - DIMM_MIB * 1024, \
                "MemTotal %d KiB after removing the DIMM, %d KiB before" % (total2, total0)
            src.options = dict(src.options, devices=[])
            started = int(mig.hint_stat(src, "sessions_started"))
            last, _ = mig.migrate(src)
            with last:
                mig.assert_clean(src, "migration after removal (source)", running=False)
                mig.assert_intact(last, "after removing the DIMM")
                mig.assert_clean(last, "after removing the DIMM")
                assert int(mig.hint_stat(last, "sessions_started")) > started, \
                    "no hinting session after the DIMM went"
                _, free3 = memory_kib(last)
                ctx.note("%d hotplug rounds, ZONE_MOVABLE empty in %d, offline refused %d times; "
                       "sessions after each migration %s, walks restarted by hotplug %d; "
                       "free %d KiB before removal, %d after (DIMM %d KiB)" % (
                           len(rounds), emptied, sum(int(r[5]) for r in rounds), sessions,
                           restarts, free1, free3, DIMM_MIB * 1024))
                assert free1 - free3 <= DIMM_MIB * 1024 + LEAK_KIB, \
                    "free memory fell by %d KiB when a %d KiB DIMM went" % (
                        free1 - free3, DIMM_MIB * 1024)
