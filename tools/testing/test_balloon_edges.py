# SPDX-License-Identifier: GPL-2.0
"""The classic balloon at its edges: a device whose free page reporting
queue is smaller than the kernel's report batch, and a device that stopped
answering while the guest keeps asking it to deflate.

The reporting queue: the kernel's page reporting core hands batches of 32
pages; 7.3's core takes a smaller capacity from the driver, older ones do
not. On every kernel the device binds; where the core can follow, reporting
runs through the small queue, and where it cannot, the log says why it is
off.

The silent device: once a deflate went unanswered for VB_ACK_TIMEOUT, the
balloon stops until the device is reset. Every later target change (and
OOM notification) must leave the balloon's pages alone, rather than take
them off the list and put them back, while compaction keeps trying to move
them: vmstat's balloon counters stay as they were and the log stays clean.
"""

import glob
import os
import time

import vm
from host_build import MIB, headers_dir
from test_balloon import assert_healthy, load
from test_device_faults import ACK_TIMEOUT_S, BALLOON_EVENTS, _stall
from test_parity import COMPACT_MEM_MIB, COMPACT_TARGET, compactable_balloon, vmstat

REPORTING = {"free-page-reporting": "on"}
# Queue numbers without free page hinting: inflate, deflate, stats, reporting.
REPORTING_QUEUE = 3
SMALL_QUEUE = 16


def _core_takes_capacity(ver):
    """Whether the kernel's page reporting core takes a batch size from the
    driver (struct page_reporting_dev_info has capacity): read in its headers."""
    common = glob.glob(os.path.join(os.path.dirname(headers_dir(ver)), "linux-headers-*-common"))
    for d in [headers_dir(ver)] + common:
        path = os.path.join(d, "include", "linux", "page_reporting.h")
        if os.path.exists(path):
            with open(path) as f:
                return "unsigned int capacity;" in f.read()
    raise AssertionError("no page_reporting.h in the headers of %s" % ver)


def _reporting_used(g):
    status = g.qmp("x-query-virtio-queue-status", path=vm.BALLOON_QOM + "/virtio-backend",
                   queue=REPORTING_QUEUE)
    return status["vring-num"], status["used-idx"]


def test_small_reporting_queue(ctx):
    capacity = _core_takes_capacity(ctx.ver)
    with ctx.guest(mem_mib=1024, balloon=REPORTING, host="small-reporting-queue") as g:
        load(ctx, g)
        size, used0 = _reporting_used(g)
        assert size == SMALL_QUEUE, "reporting queue has %d entries" % size
        dmesg = g.check("dmesg")
        bound = [line for line in dmesg.splitlines() if "bound:" in line]
        assert bound, "no binding line in the log"
        if capacity:
            assert "free page reporting on" in bound[-1], bound[-1]
            # Free memory in large blocks: the core reports it within seconds.
            g.check("memload dirty 256", timeout=300)
            vm.wait_for(lambda: _reporting_used(g)[1] > used0, 60,
                        lambda: "no report used on the %d-entry queue" % SMALL_QUEUE, interval=0.5)
            note = "reports through a %d-entry queue: %d used" % (SMALL_QUEUE, _reporting_used(g)[1])
        else:
            assert "free page reporting off" in bound[-1], bound[-1]
            why = [line for line in dmesg.splitlines() if "free page reporting off:" in line]
            assert why, "reporting is off and the log does not say why"
            note = why[0].split("] ", 1)[-1]
        g.check("rmmod virtio_balloon", timeout=120)
        assert_healthy(g)
        ctx.note(note)


test_small_reporting_queue.core = True


def test_silent_device_keeps_its_pages(ctx):
    with ctx.guest(mem_mib=COMPACT_MEM_MIB, balloon={"deflate-on-oom": "on"}, host="stalling") as g:
        load(ctx, g)
        compactable_balloon(g)
        _stall(g, True)
        full = COMPACT_MEM_MIB * MIB
        g.qmp("balloon", value=full)
        vm.wait_for(lambda: "did not acknowledge deflate" in g.check("dmesg"),
                    ACK_TIMEOUT_S + 30, lambda: "no deflate timeout in the log", interval=0.5)
        before = {name: vmstat(g, name) for name in BALLOON_EVENTS}
        pid = g.check("(while :; do echo 1 > /proc/sys/vm/compact_memory; done) "
                      ">/dev/null 2>&1 & echo $!")
        start = time.monotonic()
        for i in range(20):
            # Each target change runs the resize work against the silent device.
            g.qmp("balloon", value=COMPACT_TARGET if i % 2 else full)
            time.sleep(0.2)
        g.check("kill %s" % pid)
        after = {name: vmstat(g, name) for name in BALLOON_EVENTS}
        assert after == before, "vmstat moved while the device was silent: %s -> %s" % (before, after)
        _stall(g, False)
        g.check("rmmod virtio_balloon", timeout=120)
        assert_healthy(g)
        ctx.note("20 target changes in %.1f s under compaction, balloon counters unchanged: %s" % (
            time.monotonic() - start, after))
