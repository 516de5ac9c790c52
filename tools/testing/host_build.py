# SPDX-License-Identifier: GPL-2.0
"""What the harness builds on this machine: the kernels of tools/testing/kernels
(setup.sh), the module for one of them (in its Debian root when it has one),
the guest workloads, and the emulating QEMU (build-qemu.sh); the paths of the
cache they live in."""

import filecmp
import hashlib
import os
import re
import shutil
import subprocess

TESTING = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(TESTING))
CACHE = os.environ.get("VB_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "virtio-balloon")
MIB = 1 << 20


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
