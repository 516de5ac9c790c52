#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make demo: boot a guest with the module and show it working.

Boots a 6.12 guest (--kernel 6.1 for the other) under QEMU, loads the
driver, inflates and deflates the balloon, reads the guest's statistics, then
migrates the guest twice over loopback after it wrote and freed most of its
memory: once with this driver answering QEMU's free page hint requests, once
with no balloon driver, and prints what each sent.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migration as mig  # noqa: E402
import vm  # noqa: E402
from vm import MIB  # noqa: E402

MEM_MIB = 1536


def say(text):
    print("demo: " + text, flush=True)


def migrate_once(ver, initrd, driver):
    with vm.Guest(ver, initrd, mem_mib=MEM_MIB, balloon={"free-page-hint": "on"}) as src:
        mig.load_driver(src, driver)
        mig.prepare(src, 128, 1024)
        dst, info = mig.migrate(src)
        with dst:
            mig.assert_intact(dst, "demo")
            hinted = mig.hint_stat(dst, "total_pages") if driver == "ours" else "-"
    return info, hinted


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", default="6.12", choices=("6.1", "6.12"))
    args = ap.parse_args()
    ver = vm.setup()[args.kernel]
    say("building the module for %s" % ver)
    initrd = vm.build_initramfs(ver, vm.build_module(vm.REPO, ver))
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
    for driver in ("none", "ours"):
        info, hinted = migrate_once(ver, initrd, driver)
        rows.append((driver, info["ram"]["transferred"] / MIB, info["total-time"], info.get("downtime", 0), hinted))
    print("| driver | MiB sent | total ms | downtime ms | pages hinted |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.0f | %d | %d | %s |" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
