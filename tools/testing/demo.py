#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make demo: boot a guest with the module and show it working.

Boots a guest of the newest kernel of tools/testing/kernels (--kernel LABEL
for another) under QEMU, loads the driver, inflates and deflates the
balloon, reads the guest's statistics, then migrates the guest three times
over loopback after it wrote and freed most of its memory: with no balloon
driver, with the kernel's own virtio_balloon (which answers QEMU's free page
hint requests by allocating the free memory), and with this driver, and
prints what each sent and how much memory the guest kept free.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host_build  # noqa: E402
import initramfs  # noqa: E402
import migration as mig  # noqa: E402
import vm  # noqa: E402
from host_build import MIB  # noqa: E402

MEM_MIB = 1536


def say(text):
    print("demo: " + text, flush=True)


def migrate_once(ver, initrd, driver):
    with vm.Guest(ver, initrd, mem_mib=MEM_MIB, balloon={"free-page-hint": "on"}) as src:
        mig.load_driver(src, driver)
        mig.prepare(src, 128, 1024)
        before = mig.lowfree_kib(src)[1]
        mig.lowfree_reset(src)
        dst, info = mig.migrate(src)
        with dst:
            # Sampled on the source, then on the destination: the lowest
            # free memory of the whole migration.
            low = mig.lowfree_kib(dst)[0]
            mig.assert_intact(dst, "demo")
            hinted = mig.hint_stat(dst, "total_pages") if driver == "ours" else "-"
    return info, hinted, 100.0 * low / before


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", metavar="LABEL",
                    help="a kernel of tools/testing/kernels (6.1, 6.12, ...; default: the newest)")
    args = ap.parse_args()
    kernels = host_build.setup()
    label = args.kernel or list(kernels)[-1]
    if label not in kernels:
        ap.error("--kernel: no kernel %s (there are: %s)" % (label, " ".join(kernels)))
    ver = kernels[label].ver
    say("building the module for %s" % ver)
    initrd = initramfs.build_initramfs(ver, host_build.build_module(host_build.REPO, ver))
    with vm.Guest(ver, initrd, mem_mib=1024, balloon={"free-page-hint": "on"}) as g:
        say("guest booted in %.1fs; loading virtio_balloon" % g.boot_seconds)
        g.check("modprobe virtio_balloon")
        print(g.check("dmesg | grep virtio_balloon | tail -2"))
        print(g.check("grep MemTotal /proc/meminfo"))
        t = g.set_balloon(512 * MIB)
        say("balloon inflated to 512 MiB in %.2fs:" % t)
        print(g.check("grep MemTotal /proc/meminfo"))
        t = g.set_balloon(1024 * MIB)
        say("deflated in %.2fs:" % t)
        print(g.check("grep MemTotal /proc/meminfo"))
        g.qmp.cmd("qom-set", path=vm.BALLOON_QOM, property="guest-stats-polling-interval", value=1)
        vm.wait_for(lambda: g.qmp.cmd("qom-get", path=vm.BALLOON_QOM, property="guest-stats")["stats"]
                    .get("stat-total-memory", -1) > 0, 30, lambda: "no statistics")
        stats = g.qmp.cmd("qom-get", path=vm.BALLOON_QOM, property="guest-stats")["stats"]
        say("statistics the host sees: " + ", ".join(
            "%s=%d" % (k[5:], v) for k, v in sorted(stats.items()) if v >= 0))
        print(g.check("grep . /sys/module/virtio_balloon/parameters/*"))
    say("live migration of a %d MiB guest that wrote and freed 1024 MiB, 1250 MiB/s" % MEM_MIB)
    rows = []
    for driver in ("none", "intree", "ours"):
        info, hinted, free_pct = migrate_once(ver, initrd, driver)
        rows.append((driver, info["ram"]["transferred"] / MIB, info["total-time"], info.get("downtime", 0),
                     free_pct, hinted))
    print("| driver | MiB sent | total ms | downtime ms | lowest free during migration | pages hinted |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.0f | %d | %d | %.0f%% | %s |" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
