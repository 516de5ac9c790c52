# SPDX-License-Identifier: GPL-2.0
"""The guests' initramfs: busybox, the guest workloads, an /init that opens a
test shell on ttyS1, and the modules a test may load."""

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time

from host_build import CACHE, build_guest_tools, modules_dir, sh

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
