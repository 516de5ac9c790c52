# SPDX-License-Identifier: GPL-2.0
"""QEMU guests for the virtio_balloon tests: a guest's lifecycle, from boot to
kill, and what a test asks of it (commands, QMP, the balloon, its kernel log).

Standard library only. What a guest is made of comes from host_build.py (the
kernel, the module, QEMU) and initramfs.py; it talks through qmp.py and
serial_shell.py; reaper.py kills it whatever happens to the harness.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import reaper
from host_build import MIB, emulating_qemu, vmlinuz
from qmp import QMP
from serial_shell import Shell

BALLOON_QOM = "/machine/peripheral/balloon0"
# Kernel log lines that mean a kernel is not healthy: tools/testing/problem-patterns,
# which kunit.sh reads too.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "problem-patterns")) as _f:
    PROBLEM_RE = re.compile("|".join(
        line.rstrip("\n") for line in _f if line.strip() and not line.startswith("#")))

# Hosts the emulating QEMU (build-qemu.sh) can act like, and the switch in
# its environment that makes it do so; {sock_dir} is the guest's own socket
# directory.
HOSTS = {
    "kvm-dirty-log": ("QEMU_TEST_KVM_DIRTY_LOG", "1"),
    "discard": ("QEMU_TEST_DISCARD_HINTS", "1"),
    # Inflate and deflate messages go unanswered while Guest.stall_file exists.
    "stalling": ("QEMU_TEST_BALLOON_STALL", "{sock_dir}/stall"),
    # A free page queue with fewer entries than a hint element's ranges.
    "small-free-page-queue": ("QEMU_TEST_FREE_PAGE_VQ_SIZE", "16"),
    # A reporting queue with fewer entries than the kernel's batch (32).
    "small-reporting-queue": ("QEMU_TEST_REPORTING_VQ_SIZE", "16"),
    # Offers feature bit 6 with free page hinting, as e2b's Firecracker does.
    "wait-on-ack": ("QEMU_TEST_OFFER_WAIT_ON_ACK", "1"),
}
# Where Debian's qemu-system-data, seabios and ipxe-qemu keep the firmware.
FIRMWARE_DIRS = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")


class BootError(ConnectionError):
    """QEMU exited before the guest's shell answered: nothing the tests load
    was running yet (/init loads no balloon driver), so a retry is fair."""


class Guest:
    """One QEMU process running a test guest: run()/check() a shell command,
    qmp(name, **args) a QMP command.

    @balloon: virtio-balloon-pci properties, e.g. {"free-page-hint": "on"}
    (an iothread is added when free page hinting is on, unless the
    properties name one), or False for a guest without a balloon.
    @devices: extra QEMU arguments, e.g. ["-device", "pcie-root-port,..."]
    for a slot to hot-plug a balloon into. A test that hot-plugs a balloon
    sets self.options["balloon"] to its properties (bus included) so that
    a migration destination starts with the device cold-plugged where the
    source has it. @append: extra
    kernel arguments. @machine: QEMU's -machine value (type and properties,
    "pc,max-ram-below-4g=2560M"). @host: None for Debian's QEMU, or a key of HOSTS for
    the emulating QEMU acting like that host. @incoming: "tcp:127.0.0.1:PORT" starts a migration
    destination: it has no running guest yet, so the shell is not waited for;
    call attach_shell() once the migration completed. The constructor's
    arguments are kept in self.options so that a destination with the same
    device set is Guest(**dict(src.options, incoming=...)).

    Logs (console.log: the kernel console; qemu.log: the command line and
    QEMU's messages) go to @log_dir, or to log_dir-1, -2... when a guest
    already wrote there (a migration destination started from options);
    without @log_dir they are removed with the sockets by close().
    """

    def __init__(self, ver, initrd, mem_mib=1024, smp=2, balloon=None, append="",
                 incoming=None, log_dir=None, boot_timeout=120, devices=(), host=None,
                 maxmem_mib=None, machine="q35"):
        self.options = dict(ver=ver, initrd=initrd, mem_mib=mem_mib, smp=smp,
                            balloon=balloon, append=append, log_dir=log_dir,
                            devices=list(devices), host=host, maxmem_mib=maxmem_mib,
                            machine=machine)
        self.machine = machine
        self.ver, self.mem_mib, self.maxmem_mib = ver, mem_mib, maxmem_mib
        self.sock_dir = tempfile.mkdtemp(prefix="vb-")
        self.stall_file = os.path.join(self.sock_dir, "stall")
        self.log_dir = _unused_dir(log_dir) if log_dir else self.sock_dir
        self.console = os.path.join(self.log_dir, "console.log")
        self.qmp = None
        self.shell = Shell(os.path.join(self.sock_dir, "shell.sock"), self._gone)
        self.argv = self._argv(initrd, smp, balloon, append, incoming, devices, host)
        env = dict(os.environ)
        for switch, _ in HOSTS.values():
            env.pop(switch, None)
        prefix = ""
        if host:
            name, value = HOSTS[host]
            env[name] = value.format(sock_dir=self.sock_dir)
            prefix = "%s=%s " % (name, env[name])
        with open(os.path.join(self.log_dir, "qemu.log"), "w") as qlog:
            qlog.write(prefix + " ".join(self.argv) + "\n")
            qlog.flush()
            try:
                self.proc = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL, stdout=qlog,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             preexec_fn=reaper.die_with_parent)
            except OSError:
                shutil.rmtree(self.sock_dir, ignore_errors=True)
                raise
        reaper.live.add(self)
        start = time.monotonic()
        try:
            self.qmp = QMP(os.path.join(self.sock_dir, "qmp.sock"), self._gone)
            if not incoming:
                self.attach_shell(boot_timeout)
        except ConnectionError as e:
            self.close()
            raise BootError(str(e)) from None
        except BaseException:
            self.close()
            raise
        self.boot_seconds = time.monotonic() - start

    def _argv(self, initrd, smp, balloon, append, incoming, devices, host):
        accel = "kvm" if os.environ.get("VB_KVM") == "1" else "tcg"
        extra = []
        if balloon is not False:
            balloon = balloon or {}
            dev = "virtio-balloon-pci,id=balloon0"
            if balloon.get("free-page-hint") == "on" and "iothread" not in balloon:
                extra = ["-object", "iothread,id=io0"]
                dev += ",iothread=io0"
            dev += "".join(",%s=%s" % kv for kv in balloon.items())
            extra += ["-device", dev]
        qemu = ["qemu-system-x86_64"]
        if host:
            qemu = [emulating_qemu()]
            for d in FIRMWARE_DIRS:
                qemu += ["-L", d]
        argv = qemu + [
            "-accel", accel, "-machine", self.machine,
            "-m", "%dM" % self.mem_mib + (",slots=4,maxmem=%dM" % self.maxmem_mib
                                          if self.maxmem_mib else ""),
            "-smp", str(smp),
            "-nographic", "-nodefaults", "-no-reboot",
            "-kernel", vmlinuz(self.ver), "-initrd", initrd,
            "-append", ("console=ttyS0 panic=-1 " + append).strip(),
            "-serial", "file:" + self.console,
            "-chardev", "socket,id=shell,path=%s/shell.sock,server=on,wait=off" % self.sock_dir,
            "-serial", "chardev:shell",
            "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % self.sock_dir,
        ] + list(devices) + extra
        if incoming:
            argv += ["-incoming", incoming]
        return argv

    def _gone(self):
        """Why a connection to QEMU was lost: its exit status and messages,
        the console's problem lines and last lines (a kernel panic exits QEMU:
        panic=-1, -no-reboot)."""
        try:
            status = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = "none, still running"
        console = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1bc|\r", "", self.console_text()).splitlines()
        parts = ["QEMU exit status %s" % status]
        parts += self._log("qemu.log").splitlines()[1:][-5:]
        parts += [line for line in console if PROBLEM_RE.search(line)][:10]
        parts += ["console ends:"] + console[-3:]
        return "\n".join(parts)

    def attach_shell(self, timeout=60):
        """Connect to the guest's shell and wait until it answers."""
        self.shell.connect()
        self.shell.wait_ready(timeout)

    def run(self, cmd, timeout=60):
        """Run @cmd in the guest; return (exit status, output)."""
        return self.shell.run(cmd, timeout)

    def check(self, cmd, timeout=60):
        """Run @cmd in the guest; return its output, raise if it fails."""
        status, out = self.shell.run(cmd, timeout)
        if status:
            raise AssertionError("guest command failed (status %d): %s\n%s" % (status, cmd, out))
        return out

    def meminfo(self):
        """/proc/meminfo of the guest, values in KiB."""
        out = self.check("cat /proc/meminfo")
        return {k: int(v.split()[0]) for k, v in
                (line.split(":", 1) for line in out.splitlines() if ":" in line)}

    def _log(self, name):
        try:
            with open(os.path.join(self.log_dir, name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def console_text(self):
        """What the kernel printed on its console (ttyS0)."""
        return self._log("console.log")

    def dmesg_problems(self):
        """Lines of the console log and of dmesg that show an unhealthy kernel.

        The console log also has what a crash printed after the shell died;
        dmesg also has messages below the console's log level.
        """
        lines = self.console_text().splitlines()
        if self.proc.poll() is None:
            try:
                lines += self.check("dmesg", timeout=30).splitlines()
            except (TimeoutError, ConnectionError, AssertionError) as e:
                lines.append("BUG: dmesg unavailable: %s" % e)
        seen, problems = set(), []
        for line in lines:
            key = re.sub(r"^\[\s*[\d.]+\]\s*", "", line.strip())
            if PROBLEM_RE.search(key) and key not in seen:
                seen.add(key)
                problems.append(line.strip())
        return problems

    def hint_run(self, run):
        """Start (True) a free page hinting run without a migration, or end
        it with DONE (False), as Firecracker's hinting API does (the
        emulating QEMU's x-test-hint-run)."""
        self.qmp("qom-set", path=BALLOON_QOM + "/virtio-backend", property="x-test-hint-run",
                 value=run)

    def hint_run_waiting(self):
        """Whether the run waits for the guest: the device has seen neither
        the guest's STOP marker nor DONE."""
        return self.qmp("qom-get", path=BALLOON_QOM + "/virtio-backend",
                        property="x-test-hint-run")

    def resident_bytes(self):
        """How much memory the QEMU process holds on the host (VmRSS)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("QEMU has no VmRSS: it exited")

    def balloon_actual(self):
        """What query-balloon reports: guest memory in bytes, balloon excluded."""
        return self.qmp("query-balloon")["actual"]

    def set_balloon(self, target_bytes, timeout=120):
        """Ask for @target_bytes of guest memory; return the seconds until
        query-balloon reports it."""
        start = time.monotonic()
        self.qmp("balloon", value=target_bytes)
        wait_for(lambda: self.balloon_actual() == target_bytes, timeout, lambda: (
            "balloon actual %d MiB, target %d MiB" % (self.balloon_actual() // MIB,
                                                       target_bytes // MIB)))
        return time.monotonic() - start

    def close(self):
        """Kill QEMU and remove the sockets; the logs stay in log_dir."""
        if self not in reaper.live:
            return
        reaper.live.discard(self)
        if self.qmp:
            self.qmp.close()
        self.shell.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _unused_dir(base):
    path, n = base, 0
    while True:
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            n += 1
            path = "%s-%d" % (base, n)


def wait_for(predicate, timeout, describe, interval=0.02):
    """Poll @predicate until it is true; on timeout raise AssertionError with
    describe() (what was last measured)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("after %ss: %s" % (timeout, describe()))
        time.sleep(interval)
