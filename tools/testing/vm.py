# SPDX-License-Identifier: GPL-2.0
"""QEMU guests for the virtio_balloon tests: kernels, module, initramfs, QMP, shell.

Standard library only. Every QEMU process started here is killed when the
harness exits, however it exits (normal exit, exception, Ctrl-C, SIGTERM,
SIGHUP, and even SIGKILL of the harness through PR_SET_PDEATHSIG).
"""

import atexit
import base64
import ctypes
import filecmp
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TESTING = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(TESTING))
CACHE = os.environ.get("VB_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "virtio-balloon")
MIB = 1 << 20
BALLOON_QOM = "/machine/peripheral/balloon0"

# Kernel log lines that mean the guest is not healthy.
PROBLEM_RE = re.compile(
    r"WARNING:|BUG:|Oops|Call Trace|general protection|memory corruption|KASAN|UBSAN|"
    r"Bad page|list_(add|del) corruption|refcount_t:|soft lockup|hung_task|"
    r"blocked for more than|rcu.*stall|Kernel panic|Out of memory|oom-kill")

_live = set()


def close_all():
    """Kill every guest still running."""
    for g in list(_live):
        g.close()


def _on_signal(signum, frame):
    close_all()
    raise SystemExit(128 + signum)


atexit.register(close_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child before exec: QEMU gets SIGKILL if the harness dies,
    # even by SIGKILL, when no Python cleanup can run.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def sh(cmd, **kw):
    """Run a host command; raise with the tail of its output on failure."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stdout[-4000:]))
    return r.stdout


_script_outputs = {}


def _script_once(name):
    """The standard output of tools/testing/@name, run once per process;
    its progress goes to stderr, through to the user."""
    if name not in _script_outputs:
        _script_outputs[name] = subprocess.run(["bash", os.path.join(TESTING, name)],
                                               stdout=subprocess.PIPE, check=True, text=True).stdout
    return _script_outputs[name]


class KernelInfo:
    """A kernel of tools/testing/kernels, as setup.sh resolved it."""

    def __init__(self, label, ver, root, tests, source):
        self.label, self.ver, self.tests, self.source = label, ver, tests, source
        # The Debian root its modules are built in, or None for this machine.
        self.root = None if root == "host" else root


# Guest kernel version -> KernelInfo, filled by setup().
KERNELS = {}


def setup():
    """Run setup.sh once per process; return {label: KernelInfo}, oldest first."""
    out = _script_once("setup.sh")
    kernels = {}
    for line in out.splitlines():
        if line.strip():
            k = KernelInfo(*line.split())
            kernels[k.label] = KERNELS[k.ver] = k
    return kernels


def in_build_env(ver, cmd, cwd="/"):
    """@cmd as it must run to build for kernel @ver: as is, or inside the
    Debian root whose compiler built that kernel (tools/testing/in-root.sh)."""
    if not KERNELS:
        setup()
    root = KERNELS[ver].root
    if root is None:
        return cmd
    return ["bash", os.path.join(TESTING, "in-root.sh"), root, cwd] + cmd


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
}
# Where Debian's qemu-system-data, seabios and ipxe-qemu keep the firmware.
FIRMWARE_DIRS = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")


def emulating_qemu():
    """The QEMU with the host emulation switches, built once into the cache."""
    return _script_once("build-qemu.sh").strip().splitlines()[-1]


def kernel_dir(ver):
    """Where setup.sh unpacked the guest kernel package."""
    return os.path.join(CACHE, "kernels", ver)


def headers_dir(ver):
    """The kernel headers (KDIR) setup.sh unpacked for guest kernel @ver."""
    return os.path.join(CACHE, "headers", ver, "usr", "src", "linux-headers-" + ver)


def modules_dir(ver):
    return os.path.join(kernel_dir(ver), "lib", "modules", ver)


def vmlinuz(ver):
    return os.path.join(kernel_dir(ver), "boot", "vmlinuz-" + ver)


MODULE_SOURCES = ("Kbuild", "drivers", "include")


def _clone_dir(kind, repo):
    """$CACHE/@kind/<id>, this clone's (worktree's) own directory there.

    Each one records the clone's path in "origin"; the directories of
    clones that no longer exist (CI's, removed worktrees) are deleted here,
    so the cache does not grow by one directory per clone ever made.
    """
    repo = os.path.realpath(repo)
    top = os.path.join(CACHE, kind)
    out = os.path.join(top, hashlib.sha256(repo.encode()).hexdigest()[:12])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "origin"), "w") as f:
        f.write(repo + "\n")
    for name in os.listdir(top):
        try:
            with open(os.path.join(top, name, "origin")) as f:
                origin = f.read().strip()
        except OSError:
            continue  # not a clone's directory, or one being set up
        if not os.path.isdir(origin):
            shutil.rmtree(os.path.join(top, name), ignore_errors=True)
    return out


def build_module(repo, ver):
    """Build the project's module for @ver in $CACHE/build/; return the .ko path.

    The sources are copied so that the user's tree gets no objects, and
    neither the two kernels' builds nor those of two clones (worktrees) of
    the project overwrite each other. The copy is refreshed on every call
    (stale files removed) and make rebuilds what changed.
    """
    out = os.path.join(_clone_dir("build", repo), ver)
    os.makedirs(out, exist_ok=True)
    for name in MODULE_SOURCES:
        src, dst = os.path.join(repo, name), os.path.join(out, name)
        if os.path.isdir(src):
            _sync_tree(src, dst)
        else:
            shutil.copy2(src, dst)
    log = os.path.join(out, "build.log")
    with open(log, "w") as f:
        r = subprocess.run(in_build_env(ver, ["make", "-C", headers_dir(ver), "M=" + out, "modules"]),
                           stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if r.returncode:
        with open(log) as f:
            errors = [line for line in f if "error" in line.lower()]
        raise RuntimeError("the module does not build for %s (%s):\n%s" % (
            ver, log, "".join(errors[:10])))
    return os.path.join(out, "virtio_balloon.ko")


def _sync_tree(src, dst):
    # Copy sources only (not objects a build in the repo left behind) and drop
    # sources deleted from the repo, so that the copy builds what the repo has.
    def is_source(name):
        return not re.search(r"\.(o|ko|mod|mod\.c|cmd|order|symvers)$", name)

    for root, dirs, files in os.walk(dst):
        rel = os.path.relpath(root, dst)
        for f in files:
            if is_source(f) and not os.path.exists(os.path.join(src, rel, f)):
                os.unlink(os.path.join(root, f))
    for root, dirs, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(target, exist_ok=True)
        for f in files:
            if is_source(f):
                a, b = os.path.join(root, f), os.path.join(target, f)
                if not os.path.exists(b) or not filecmp.cmp(a, b, shallow=False):
                    shutil.copy2(a, b)


def _module_paths(ver):
    paths = {}
    for root, _, files in os.walk(os.path.join(modules_dir(ver), "kernel")):
        for f in files:
            m = re.match(r"(.*)\.ko(\.xz|\.zst)?$", f)
            if m:
                paths[m.group(1).replace("-", "_")] = os.path.join(root, f)
    return paths


def _with_dependencies(paths, names):
    """@names and every module they depend on, dependencies first."""
    order = []

    def add(name):
        if name in order:
            return
        deps = sh(["modinfo", "-F", "depends", paths[name]]).strip()
        for d in filter(None, deps.split(",")):
            add(d.replace("-", "_"))
        order.append(name)

    for n in names:
        add(n)
    return order


def transport_modules(ver):
    """Modules /init must load for virtio over PCI: none where it is built in (6.12)."""
    with open(os.path.join(modules_dir(ver), "modules.builtin")) as f:
        if "/virtio_pci.ko" in f.read():
            return []
    return ["virtio_pci"]


def build_guest_tools():
    """Build every tools/testing/guest/*.c as a static program for the guest
    (workloads for the tests); return their paths. Rebuilt when the source
    is newer than the program. One directory per clone: two worktrees
    with different workloads must not overwrite each other's programs."""
    src_dir = os.path.join(TESTING, "guest")
    out_dir = _clone_dir("bin", REPO)
    programs = []
    for name in sorted(os.listdir(src_dir)):
        if not name.endswith(".c"):
            continue
        src = os.path.join(src_dir, name)
        out = os.path.join(out_dir, name[:-2])
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            sh(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out + ".tmp", src])
            os.rename(out + ".tmp", out)
        programs.append(out)
    return programs


INIT = r"""#!/bin/sh
# The balloon module is never loaded here: the tests decide when and which.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for m in $(cat /etc/boot-modules); do
	modprobe $m || echo "init: cannot load $m" >/dev/kmsg
done
echo "init: test shell on ttyS1" >/dev/kmsg
# The test shell reads a script from ttyS1 (not interactive: no prompt, no
# line editing) and writes to it; raw mode, no echo, no \n -> \r\n.
while true; do
	stty -F /dev/ttyS1 raw -echo
	setsid sh /dev/ttyS1 </dev/null >/dev/ttyS1 2>&1
done &
while true; do sleep 3600; done
"""


def _stage_initramfs(root, ver, ours_ko):
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
    for path in sh(["/bin/busybox", "--list-full"]).split():
        link = os.path.join(root, path)
        if not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("/bin/busybox", link)
    for program in build_guest_tools():
        shutil.copy2(program, os.path.join(root, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, "init"), "w") as f:
        f.write(INIT)
    os.chmod(os.path.join(root, "init"), 0o755)

    boot = transport_modules(ver)
    with open(os.path.join(root, "etc", "boot-modules"), "w") as f:
        f.write("".join(m + "\n" for m in boot))
    src = modules_dir(ver)
    dst = os.path.join(root, "lib", "modules", ver)
    paths = _module_paths(ver)
    for name in _with_dependencies(paths, boot + ["virtio_balloon"]):
        rel = os.path.relpath(paths[name], src)
        out = os.path.join(dst, re.sub(r"\.(xz|zst)$", "", rel))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if rel.endswith((".xz", ".zst")):
            tool = "xz" if rel.endswith(".xz") else "zstd"
            with open(out, "wb") as f:
                subprocess.run([tool, "-dc", paths[name]], stdout=f, check=True)
        else:
            shutil.copy2(paths[name], out)
    if ours_ko:
        os.makedirs(os.path.join(dst, "updates"))
        shutil.copy2(ours_ko, os.path.join(dst, "updates", "virtio_balloon.ko"))
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        shutil.copy2(os.path.join(src, name), dst)
    sh(["depmod", "-b", root, ver])


def _tree_digest(root):
    h = hashlib.sha256()
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(top, f)
            h.update(os.path.relpath(p, root).encode() + b"\0")
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            else:
                with open(p, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()[:16]


def build_initramfs(ver, ours_ko=None):
    """Return a cpio.gz for @ver: busybox, the guest tools, /init, the virtio
    modules, the in-tree virtio_balloon.ko at its usual path and, if given,
    @ours_ko in updates/ (where depmod makes modprobe prefer it).

    Cached in $CACHE/initramfs/ by the hash of its contents; images unused
    for a day are removed (every build of the module makes a new one).
    """
    cache = os.path.join(CACHE, "initramfs")
    os.makedirs(cache, exist_ok=True)
    for old in os.listdir(cache):
        path = os.path.join(cache, old)
        if old.endswith(".cpio.gz") and time.time() - os.path.getmtime(path) > 86400:
            os.unlink(path)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = os.path.join(tmp, "root")
        _stage_initramfs(root, ver, ours_ko)
        out = os.path.join(cache, "%s-%s.cpio.gz" % (ver, _tree_digest(root)))
        if not os.path.exists(out):
            files = sh(["find", ".", "-mindepth", "1"], cwd=root).split("\n")
            listing = "\n".join(sorted(filter(None, files))) + "\n"
            cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "--reproducible",
                                   "-R", "0:0"], cwd=root, input=listing.encode(),
                                  stdout=subprocess.PIPE, check=True).stdout
            with open(out + ".tmp", "wb") as raw, \
                    gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as f:
                f.write(cpio)
            os.rename(out + ".tmp", out)
        os.utime(out)
    return out


def _connect_unix(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise TimeoutError("cannot connect to %s in %ds" % (path, timeout))
            time.sleep(0.05)


class QMP:
    """A minimal QMP client. Events that arrive while waiting for a reply are
    kept, in order, in self.events. @gone() explains a lost connection."""

    def __init__(self, path, gone, timeout=30):
        self.gone = gone
        self.sock = _connect_unix(path, timeout)
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rw")
        self.events = []
        # QEMU 10.0 can emit an event (RESUME, as the guest starts) on a
        # socket that was just accepted before it writes the greeting there.
        greeting = self._read()
        while "event" in greeting:
            self.events.append(greeting)
            greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError("not a QMP greeting: %s" % greeting)
        self.cmd("qmp_capabilities")

    def _read(self):
        try:
            line = self.file.readline()
        except ConnectionError:
            line = ""
        if not line:
            raise ConnectionError("QMP connection lost: " + self.gone())
        return json.loads(line)

    def cmd(self, name, **args):
        """Execute @name; return its "return" value, raise on "error"."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        try:
            self.file.write(json.dumps(msg) + "\n")
            self.file.flush()
        except ConnectionError:
            raise ConnectionError("QMP connection lost: " + self.gone()) from None
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise RuntimeError("QMP %s %s: %s" % (name, args, r["error"]))
            elif "return" in r:
                return r["return"]

    __call__ = cmd  # guest.qmp("query-balloon") reads as guest.qmp.cmd(...)

    def close(self):
        self.sock.close()


class Shell:
    """Commands run by the guest's shell on ttyS1, framed by markers.

    The markers appear in the command as @@B\\tag so that they only match
    what the guest prints (@@Btag), even if the guest echoed its input, and
    they use no quotes: a quote lost in input garbled at boot would otherwise
    leave the shell waiting for its pair forever. @gone() explains a lost
    connection.
    """

    def __init__(self, path, gone):
        self.path = path
        self.gone = gone
        self.sock = None
        self.buf = b""
        self.seq = 0

    def connect(self, timeout=30):
        """(Re)connect to the socket, for example after a migration."""
        self.close()
        self.buf = b""
        self.sock = _connect_unix(self.path, timeout)

    def _tag(self):
        self.seq += 1
        return "%d_%d" % (os.getpid(), self.seq)

    def _send(self, text):
        self.sock.settimeout(30)
        try:
            self.sock.sendall(text.encode())
        except ConnectionError:
            raise ConnectionError("guest shell lost: " + self.gone()) from None

    def _read_until(self, marker, deadline):
        """Consume the buffer up to the end of the line holding @marker;
        None if it did not come before @deadline."""
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                j = self.buf.find(b"\n", i)
                if j >= 0:
                    out, self.buf = self.buf[:j], self.buf[j + 1:]
                    return out
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionError:
                chunk = b""
            if not chunk:
                raise ConnectionError("guest shell lost: " + self.gone())
            self.buf += chunk

    def run(self, cmd, timeout=60):
        """Run @cmd (stdin /dev/null, stderr into the output); return (status, output).

        The command travels base64-encoded and is eval'ed in a subshell, so
        that whatever it holds (unbalanced quotes, here-documents, long lines,
        exit) the line the shell parses is well-formed and an error, even a
        syntax error (which makes a non-interactive shell exit), is only a
        status. Hence no state (cd, variables) carries over between commands.
        """
        tag = self._tag()
        begin, end = "@@B" + tag, "@@E" + tag
        b64 = base64.b64encode(cmd.encode()).decode()
        self._send('echo @@B\\%s; (eval "$(echo %s | base64 -d)") </dev/null 2>&1; echo @@E\\%s $?\n'
                   % (tag, b64, tag))
        deadline = time.monotonic() + timeout
        if self._read_until(begin.encode(), deadline) is None or \
                (out := self._read_until(end.encode(), deadline)) is None:
            raise TimeoutError("guest command did not finish in %ds: %s" % (timeout, cmd))
        text = out.decode(errors="replace")
        body, _, status = text.rpartition(end)
        return int(status), body.rstrip("\n")

    def wait_ready(self, timeout):
        """Probe until the shell answers; input sent before /init started it
        may arrive garbled, which the shell reports as errors we skip."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tag = self._tag()
            self._send("\necho @@R\\%s\n" % tag)
            if self._read_until(("@@R" + tag).encode(), min(deadline, time.monotonic() + 0.3)):
                self.buf = b""
                return
        raise TimeoutError("guest shell not ready in %ds" % timeout)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


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
    kernel arguments. @host: None for Debian's QEMU, or a key of HOSTS for
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
                 maxmem_mib=None):
        self.options = dict(ver=ver, initrd=initrd, mem_mib=mem_mib, smp=smp,
                            balloon=balloon, append=append, log_dir=log_dir,
                            devices=list(devices), host=host, maxmem_mib=maxmem_mib)
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
                                             preexec_fn=_die_with_parent)
            except OSError:
                shutil.rmtree(self.sock_dir, ignore_errors=True)
                raise
        _live.add(self)
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
            "-accel", accel, "-machine", "q35",
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
        if self not in _live:
            return
        _live.discard(self)
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
