# SPDX-License-Identifier: GPL-2.0
"""Live migration between two QEMU processes on loopback, and the guest
workload that makes it meaningful: memory written and freed (so that free
pages hold data worth skipping), a data set verified continuously, and a
sampler of the guest's lowest free memory."""

import re
import socket
import time

import vm
from host_build import MIB

HOLD_STATUS = "/tmp/hold.status"
HOLD_LOG = "/tmp/hold.log"
FRAGMENT_LOG = "/tmp/fragment.log"
LOWFREE = "/tmp/lowfree"


# The hinted guest that most migration tests start from: MEM_MIB of memory,
# a verified data set of HOLD_MIB, and DIRTY_MIB written and freed before
# the migration.
MEM_MIB = 1536
HOLD_MIB = 128
DIRTY_MIB = 1024
HINT = {"free-page-hint": "on"}
PARAMS = "/sys/module/virtio_balloon/parameters/"


def hinted_guest(ctx, driver="ours", params="", **options):
    """Boot a guest of that shape with @options (vm.Guest's; balloon=HINT
    unless given), load @driver (with module parameters @params), hold the
    data set and free the dirtied memory."""
    g = ctx.guest(**{"mem_mib": MEM_MIB, "balloon": HINT, **options})
    try:
        load_driver(g, driver, params)
        prepare(g, HOLD_MIB, DIRTY_MIB)
    except BaseException:
        g.close()
        raise
    return g


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_driver(g, driver, params=""):
    """driver: "ours", "intree" or "none"; @params: module parameters of ours."""
    if driver == "ours":
        g.check(("modprobe virtio_balloon " + params).strip())
    elif driver == "intree":
        g.check("insmod /lib/modules/$(uname -r)/kernel/drivers/virtio/virtio_balloon.ko")


def hold(g, mib):
    """Start the data set: memload holding @mib in the guest and verifying
    it over and over; return its pid once a pass verified it."""
    pid = g.check("memload hold %d %s >%s 2>&1 & echo $!" % (mib, HOLD_STATUS, HOLD_LOG))
    vm.wait_for(lambda: hold_passes(g)[0] >= 1, 120, lambda: "data set never verified: %s" % (
        g.run("cat %s %s" % (HOLD_STATUS, HOLD_LOG))[1]), interval=0.5)
    return pid


def fragment(g, mib, every=2):
    """Start memload fragment (@mib written, one page in @every freed, the
    rest held); return its pid once the free pages are in place."""
    pid = g.check("memload fragment %d %d >%s 2>&1 & echo $!" % (mib, every, FRAGMENT_LOG))
    vm.wait_for(lambda: g.run("test -s %s" % FRAGMENT_LOG)[0] == 0, 120,
                lambda: "memload fragment is silent", interval=0.5)
    out = g.check("cat %s" % FRAGMENT_LOG)
    assert out == "fragmented", "memload fragment: " + out
    return pid


def prepare(g, hold_mib, dirty_mib):
    """Start the verified data set and the sampler, then write and free
    @dirty_mib so that most free pages hold non-zero data."""
    hold(g, hold_mib)
    g.check("memload dirty %d" % dirty_mib, timeout=300)
    g.check("memload lowfree %s >/dev/null 2>&1 &" % LOWFREE)
    vm.wait_for(lambda: g.run("test -s %s" % LOWFREE)[0] == 0, 30, lambda: "no free memory sample",
                interval=0.2)


def hold_passes(g):
    """(passes, errors) of the verified data set."""
    rc, out = g.run("cat %s" % HOLD_STATUS)
    m = re.search(r"passes (\d+) errors (\d+)", out) if rc == 0 else None
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def lowfree_reset(g):
    g.check("touch %s.reset; sleep 0.1" % LOWFREE)


def lowfree_kib(g):
    """(lowest MemFree since the last reset, current MemFree), KiB."""
    out = g.check("cat %s" % LOWFREE)
    m = re.search(r"min (\d+) last (\d+)", out)
    return int(m.group(1)), int(m.group(2))


def hint_stat(g, name):
    return g.check("cat /sys/bus/virtio/devices/virtio0/free_page_hint/%s" % name)


def start(src, bandwidth_mib=1250, downtime_ms=300):
    """Start a destination like @src and migrate to it; returns the destination."""
    port = free_port()
    log_dir = "%s-migrated-%d" % (src.log_dir.rstrip("/"), port)
    dst = vm.Guest(**dict(src.options, incoming="tcp:127.0.0.1:%d" % port, log_dir=log_dir))
    try:
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": bandwidth_mib * MIB,
                                                 "downtime-limit": downtime_ms})
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
    except BaseException:
        dst.close()
        raise
    return dst


def wait(src, timeout=600, sample=None):
    """Poll query-migrate until it ends; return its last answer.

    @sample, if given, is called at every poll (e.g. to watch the guest)."""
    deadline = time.monotonic() + timeout
    while True:
        info = src.qmp.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        assert time.monotonic() < deadline, "migration still %s after %ds" % (info.get("status"), timeout)
        if sample:
            sample(info)
        time.sleep(0.02)


def migrate(src, bandwidth_mib=1250, downtime_ms=300, during=None):
    """Migrate @src to a new QEMU process; return (destination, query-migrate).

    @during, if given, is called once the migration has started (to act on
    the guest while it migrates)."""
    dst = start(src, bandwidth_mib, downtime_ms)
    try:
        if during:
            during()
        info = finish(src, dst)
    except BaseException:
        dst.close()
        raise
    return dst, info


def finish(src, dst):
    """Let the migration from @src to @dst (from start()) complete and attach
    to the running destination; return query-migrate."""
    info = wait(src)
    assert info["status"] == "completed", "migration %s: %s" % (info["status"], info.get("error-desc"))
    vm.wait_for(lambda: dst.qmp.cmd("query-status")["status"] == "running", 30,
                lambda: "destination is %s" % dst.qmp.cmd("query-status")["status"])
    dst.attach_shell()
    return info


def assert_intact(g, what):
    """The data set keeps verifying, without a single error."""
    p0, e0 = hold_passes(g)
    vm.wait_for(lambda: hold_passes(g)[0] >= p0 + 2, 120,
                lambda: "%s: data set stuck at %s passes" % (what, hold_passes(g)), interval=0.5)
    passes, errors = hold_passes(g)
    assert errors == 0, "%s: data set has %d bad words after %d passes:\n%s" % (
        what, errors, passes, g.run("cat %s" % HOLD_LOG)[1])


def assert_clean(g, what, running=True):
    """No problem in the kernel log. A source that migrated away is paused:
    only what its console printed can be read."""
    if running:
        problems = g.dmesg_problems()
    else:
        problems = [line for line in g.console_text().splitlines() if vm.PROBLEM_RE.search(line)]
    assert not problems, "%s: kernel log shows problems:\n%s" % (what, "\n".join(problems[:20]))


# Left free when the guest writes its free memory before a discarding run.
RUN_SPARE_MIB = 96


def discarding_run(g, before_run=None):
    """A free page hinting run on a host that discards what it is hinted,
    started and ended (DONE) as Firecracker's API does, outside any
    migration, after @g wrote and freed nearly all its free memory (so that
    the host holds it). @before_run(g), if given, runs just before the free
    memory is measured. Returns the run's seconds, the host's resident
    memory before and after it (bytes), and the guest's free memory before
    and lowest during it (KiB)."""
    g.check("memload dirty %d" % (g.meminfo()["MemFree"] // 1024 - RUN_SPARE_MIB), timeout=300)
    if before_run:
        before_run(g)
    free_kib = g.meminfo()["MemFree"]
    resident = g.resident_bytes()
    lowfree_reset(g)
    started = time.monotonic()
    g.hint_run(True)
    vm.wait_for(lambda: not g.hint_run_waiting(), 120,
                lambda: "the guest never ended the hinting run", interval=0.2)
    seconds = time.monotonic() - started
    after = g.resident_bytes()
    lowest_kib = lowfree_kib(g)[0]
    g.hint_run(False)
    return {"seconds": seconds, "resident_before": resident, "resident_after": after,
            "free_kib": free_kib, "lowest_kib": lowest_kib}

