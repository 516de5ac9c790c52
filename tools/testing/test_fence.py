# SPDX-License-Identifier: GPL-2.0
"""The dirty-log fence on the memory layouts users run, and what it costs a
guest that never migrates.

On QEMU with KVM a walked hint is safe only if its chunk's dirty log was
cleared before the walk read it: only the fence's probes may make the first
clear of a chunk in a round. The emulating QEMU (build-qemu.sh,
kvm-dirty-log) prints every hint that does; each must be a probe the driver
took (it logs them with dynamic debug). Chunks are counted per RAM block in
block offsets, so the layouts are those where blocks sit at addresses that
are not whole GiB: NUMA nodes with their own backends, DIMMs,
max-ram-below-4g. Each also runs the allocating, verifying guest of
test_hosts.py.

A guest that is not migrating holds no probe: after the migration the
destination gives them back (QEMU says DONE), and runtime 1 GiB huge pages
are granted as often as with the in-tree driver."""

import re

import migration as mig
import vm
from host_build import MIB
from test_hosts import migrate_while_growing

FIRST_CLEAR_RE = re.compile(r"kvm-dirty-log emulation: hint (0x[0-9a-f]+)\+(0x[0-9a-f]+) made the first clear")
# The hint work says how many passes each session walked (dev_dbg).
PASSES_RE = re.compile(r"(\d+) passes, first hints")
PROBE_RE = re.compile(r"fence probe at pfn (0x[0-9a-f]+)")


def _numa(sizes_mib):
    """-object/-numa arguments for one memory-backend-ram node per size."""
    args = []
    for i, size in enumerate(sizes_mib):
        args += ["-object", "memory-backend-ram,id=node%d,size=%dM" % (i, size),
                 "-numa", "node,nodeid=%d,memdev=node%d" % (i, i)]
    return args


def _dimms(sizes_mib):
    args = []
    for i, size in enumerate(sizes_mib):
        args += ["-object", "memory-backend-ram,id=dimm%d,size=%dM" % (i, size),
                 "-device", "pc-dimm,id=dimm%d,memdev=dimm%d" % (i, i)]
    return args


# name: vm.Guest options. Each puts a RAM block at an address that is not a
# whole number of GiB away from its chunks (but the flat q35, the control).
LAYOUTS = {
    "numa2-q35": dict(machine="q35", mem_mib=3072, devices=_numa([1536, 1536])),
    "numa3-pc": dict(machine="pc", mem_mib=4096, devices=_numa([1280, 1280, 1536])),
    "dimm2-q35": dict(machine="q35", mem_mib=2048, maxmem_mib=4096, devices=_dimms([512, 512]),
                      append="memhp_default_state=online"),
    "flat6g-q35": dict(machine="q35", mem_mib=6144),
    "lowmem2560-pc": dict(machine="pc,max-ram-below-4g=2560M", mem_mib=4096),
}


def test_only_probes_make_first_clears(ctx, layout):
    options = dict(LAYOUTS[layout])
    append = options.pop("append", "")
    src, dst, info = migrate_while_growing(ctx, "kvm-dirty-log", "ours", append=append,
                                           params="dyndbg=+p", **options)
    with src, dst:
        windows = int(mig.hint_stat(dst, "fence_windows"))
        pages = int(mig.hint_stat(dst, "total_pages"))
        assert pages > 0, "no page hinted"
        assert int(mig.hint_stat(dst, "fences_applied")) > 0, "no fence applied"
        dmesg = dst.check("dmesg")
        probes = {int(p, 16) for p in PROBE_RE.findall(dmesg)}
        passes = [int(n) for n in PASSES_RE.findall(dmesg)]
        assert probes, "the driver logged no probe"
        firsts = FIRST_CLEAR_RE.findall(src._log("qemu.log"))
        assert firsts, "no hint made a first clear: the emulation saw no fence"
        bad = ["%s+%s" % (gpa, size) for gpa, size in firsts
               if int(size, 16) != 4096 or int(gpa, 16) >> 12 not in probes]
        assert not bad, "%d hints that are not probes made the first clear of their chunk: %s" % (
            len(bad), ", ".join(bad[:10]))
        # QEMU said DONE when the migration ended: no probe is held since.
        vm.wait_for(lambda: mig.hint_stat(dst, "fence_probes") == "0", 30,
                    lambda: "%s probes still held after the migration" % mig.hint_stat(dst, "fence_probes"))
        ctx.note("%d MiB sent, %d MiB hinted; %d windows (smallest %s KiB), %d probes, %d first clears by probes; "
                 "%d sessions, walked in up to %d passes" % (
                     info["ram"]["transferred"] // MIB, pages * 4096 // MIB, windows,
                     mig.hint_stat(dst, "fence_window_min_kib"), len(probes), len(firsts),
                     len(passes), max(passes, default=0)))


test_only_probes_make_first_clears.cases = {name: {"layout": name} for name in LAYOUTS}

GIGANTIC = "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
GIGANTIC_ASKED = 8


def _gigantic_granted(ctx, driver):
    """1 GiB huge pages granted at runtime with @driver loaded, hinting on.

    10 GiB on q35: 8 GiB of ZONE_NORMAL, most of it untouched after boot, so
    that the count shows what the driver holds rather than where the boot's
    unmovable allocations happened to land (on a 6 GiB pc guest either
    driver got 1 or 2 of 5, from run to run)."""
    with ctx.guest(machine="q35", mem_mib=10240, devices=["-cpu", "max"], balloon=mig.HINT) as g:
        mig.load_driver(g, driver)
        if driver == "ours":
            vm.wait_for(lambda: mig.hint_stat(g, "status").startswith("on"), 30,
                        lambda: "hinting is %s" % mig.hint_stat(g, "status"))
        g.check("echo %d > %s" % (GIGANTIC_ASKED, GIGANTIC), timeout=300)
        return int(g.check("cat " + GIGANTIC))


def test_gigantic_pages_as_with_intree(ctx):
    intree = _gigantic_granted(ctx, "intree")
    ours = _gigantic_granted(ctx, "ours")
    assert intree > 0, "the in-tree driver's guest got no 1 GiB page: the test shows nothing"
    assert ours >= intree, "1 GiB pages granted: ours %d, in-tree %d" % (ours, intree)
    ctx.note("1 GiB pages granted of %d asked: ours %d, in-tree %d" % (GIGANTIC_ASKED, ours, intree))
