#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run make check's tests: the build checks and KUnit (test_static.py), and
the end-to-end tests in QEMU guests (every other test_*.py).

    python3 tools/testing/run.py [--kernel LABEL|all] [-k TEXT]... [--module ours|intree]
                                   [--repeat N] [--list]

Tests are the functions test_*(ctx) of the test_*.py files beside this one,
run once per kernel of tools/testing/kernels (LABEL is its 6.1, 6.12, ...),
each with a Context. On a kernel whose line says "core", only the tests
whose function has `core = True` run. A test whose function has a `cases`
attribute ({label: kwargs}) runs once per case, as name[label], and gets the
kwargs. A test whose function has `once = True` does not depend on the
kernel: it runs once, with the first kernel of the run. A test passes when
it returns and fails with what it raised. Guest logs are kept in
$VB_CACHE/logs/run-*/. The last line of the output is "N passed, N failed";
the exit status is 1 if any test failed.
"""

import argparse
import glob
import importlib
import os
import shutil
import signal
import statistics
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host_build  # noqa: E402
import initramfs  # noqa: E402
import reaper  # noqa: E402
import vm  # noqa: E402

TEST_TIMEOUT = 600
KEEP_RUNS = 10


class Kernel:
    """One guest kernel and the initramfs the tests boot it with."""

    def __init__(self, info, module):
        self.flavour, self.ver, self.module = info.label, info.ver, module
        self.info = info
        self._initrd = None
        self._error = None

    def initrd(self):
        """Build (once) the module if it is ours, and the initramfs. A failed
        build fails every test of this kernel with the same short message."""
        if self._error:
            raise self._error
        if self._initrd is None:
            try:
                ko = host_build.build_module(host_build.REPO, self.ver) if self.module == "ours" else None
                self._initrd = initramfs.build_initramfs(self.ver, ko)
            except Exception as e:
                self._error = e
                raise
        return self._initrd


class Context:
    """What a test gets: one kernel, the driver under test, fresh guests."""

    def __init__(self, kernel, log_dir, report):
        self.kernel = kernel.flavour
        self.ver = kernel.ver
        self.module = kernel.module
        self.intree_ko = "/lib/modules/%s/kernel/drivers/virtio/virtio_balloon.ko" % kernel.ver
        self.log_dir = log_dir
        self.guests = []
        self.notes = []
        self._kernel = kernel
        self._report = report

    def guest(self, **options):
        """Boot a fresh guest (vm.Guest options); it is killed when the test ends.

        A boot where QEMU itself exits is tried again, twice at most, and
        noted: QEMU 10.0 under TCG was seen to abort now and then while the
        guest enumerated PCI, long before anything of the project ran."""
        log_dir = os.path.join(self.log_dir, "guest%d" % len(self.guests))
        for attempt in range(3):
            try:
                g = vm.Guest(self.ver, self._kernel.initrd(), log_dir=log_dir, **options)
                break
            except vm.BootError as e:
                if attempt == 2:
                    raise
                self.note("boot retried: " + str(e).replace("\n", "\n    "))
        self.guests.append(g)
        self._report.boots.append(g.boot_seconds)
        return g

    def note(self, text):
        """A line printed under the test's result (a measured value)."""
        self.notes.append(text)

    def timing(self, driver, inflate, deflate):
        """A row of the inflate/deflate table printed at the end of the run."""
        self._report.timings.append((self.kernel, driver, inflate, deflate))

    def close(self):
        """Kill every guest of the test, also those it started without guest()
        (migration destinations) and forgot to close."""
        reaper.close_all()


class Report:
    def __init__(self):
        self.passed = self.failed = 0
        self.boots = []
        self.timings = []


def discover(selected):
    """[(name, function, kwargs)] of the tests whose name contains a -k text."""
    tests = []
    for path in sorted(glob.glob(os.path.join(host_build.TESTING, "test_*.py"))):
        mod = importlib.import_module(os.path.basename(path)[:-3])
        fns = [f for n, f in vars(mod).items() if n.startswith("test_") and callable(f)]
        for fn in sorted(fns, key=lambda f: f.__code__.co_firstlineno):
            base = "%s.%s" % (mod.__name__, fn.__name__)
            cases = getattr(fn, "cases", {None: {}})
            for label, kwargs in cases.items():
                name = base if label is None else "%s[%s]" % (base, label)
                if not selected or any(s in name for s in selected):
                    tests.append((name, fn, kwargs))
    return tests


def _on_alarm(signum, frame):
    raise TimeoutError("test did not finish in %ds" % TEST_TIMEOUT)


def run_one(name, fn, kwargs, kernel, run_dir, report):
    label = "%s [%s]" % (name, kernel.flavour)
    safe = name.replace("/", "_").replace("[", "-").replace("]", "")
    ctx = Context(kernel, os.path.join(run_dir, kernel.flavour, safe), report)
    start = time.monotonic()
    signal.alarm(TEST_TIMEOUT)
    try:
        fn(ctx, **kwargs)
    except Exception as e:  # a failed assertion, a broken guest, a failed build
        report.failed += 1
        msg = str(e) or type(e).__name__
        if not isinstance(e, (AssertionError, TimeoutError, ConnectionError)):
            msg = "%s: %s\n%s" % (type(e).__name__, msg, traceback.format_exc(limit=-3))
        print("FAIL %s (%.1fs)\n    %s" % (label, time.monotonic() - start,
                                          msg.strip().replace("\n", "\n    ")))
        if ctx.guests:
            print("    logs: " + ctx.log_dir)
    else:
        report.passed += 1
        print("PASS %s (%.1fs)" % (label, time.monotonic() - start))
    finally:
        signal.alarm(0)
        ctx.close()
    for n in ctx.notes:
        print("    " + n)
    sys.stdout.flush()


def print_summary(report, elapsed):
    if report.timings:
        print("\ninflate/deflate of half the guest memory (seconds, median of the rounds):")
        w = max(len("kernel"), *(len(k) for k, _, _, _ in report.timings))
        print("  %-*s %-8s %9s %9s" % (w, "kernel", "driver", "inflate", "deflate"))
        for k, d, i, f in report.timings:
            print("  %-*s %-8s %9.3f %9.3f" % (w, k, d, i, f))
    if report.boots:
        print("guest boots: %d, median %.1fs, max %.1fs" % (
            len(report.boots), statistics.median(report.boots), max(report.boots)))
    print("total time %.0fs" % elapsed)


def new_run_dir():
    """A log directory for this run. Runs beyond the last KEEP_RUNS are
    removed once they are an hour old (another run may still be writing)."""
    logs = os.path.join(host_build.CACHE, "logs")
    old = sorted(glob.glob(os.path.join(logs, "run-*")))
    for d in old[:max(0, len(old) - KEEP_RUNS + 1)]:
        if time.time() - os.path.getmtime(d) > 3600:
            shutil.rmtree(d, ignore_errors=True)
    d = os.path.join(logs, time.strftime("run-%Y%m%d-%H%M%S-") + str(os.getpid()))
    os.makedirs(d)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", default="all", metavar="LABEL",
                    help="one kernel of tools/testing/kernels (6.1, 6.12, ...) or all")
    ap.add_argument("-k", action="append", default=[], metavar="TEXT",
                    help="run only tests whose name contains TEXT (repeatable)")
    ap.add_argument("--module", default="ours", choices=("ours", "intree"),
                    help="driver under test: the project's module, or the kernel's own")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run each selected test N times in a row (to count rare failures)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()

    tests = discover(args.k)
    if args.list:
        for name, _, _ in tests:
            print(name)
        return 0
    signal.signal(signal.SIGALRM, _on_alarm)
    kernels = host_build.setup()
    if args.kernel != "all" and args.kernel not in kernels:
        ap.error("--kernel: no kernel %s (there are: %s)" % (args.kernel, " ".join(kernels)))
    labels = list(kernels) if args.kernel == "all" else [args.kernel]
    run_dir = new_run_dir()
    print("module under test: %s; logs: %s" % (args.module, run_dir), flush=True)
    report = Report()
    start = time.monotonic()
    interrupted = False
    try:
        for label in labels:
            kernel = Kernel(kernels[label], args.module)
            print("kernel %s: %s, %s tests" % (label, kernel.ver, kernels[label].tests), flush=True)
            for name, fn, kwargs in tests:
                if getattr(fn, "once", False):
                    if label != labels[0]:
                        continue
                elif kernels[label].tests == "core" and not getattr(fn, "core", False):
                    continue
                for _ in range(args.repeat):
                    run_one(name, fn, kwargs, kernel, run_dir, report)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted")
    print_summary(report, time.monotonic() - start)
    print("%d passed, %d failed" % (report.passed, report.failed))
    if interrupted:
        return 130
    return 1 if report.failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
