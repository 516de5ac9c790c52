# SPDX-License-Identifier: GPL-2.0
"""Build and source checks, per kernel: W=1 and sparse clean, checkpatch
clean, DKMS and `make install` work, KUnit suites pass in UML."""

import glob
import os
import shutil
import subprocess
import tempfile

import vm

# Messages checkpatch --strict prints that are justified:
# - LINUX_VERSION_CODE in the compat header: the one place allowed to test the
#   kernel version (and checkpatch's "constant on the right" is about the
#   same line).
JUSTIFIED = (
    ("include/virtio_balloon_compat.h", "LINUX_VERSION_CODE should be avoided"),
    ("include/virtio_balloon_compat.h", "Comparisons should place the constant on the right"),
)


def _sources():
    return sorted(glob.glob(os.path.join(vm.REPO, "drivers/virtio/*.c")) +
                  glob.glob(os.path.join(vm.REPO, "include/*.h")))


def _kernel_source(flavour):
    """The unpacked linux-source tree of this kernel, for checkpatch."""
    d = os.path.join(vm.CACHE, "src", "linux-source-" + flavour)
    if not os.path.isdir(d):
        os.makedirs(os.path.dirname(d), exist_ok=True)
        vm.sh(["tar", "xf", "/usr/src/linux-source-%s.tar.xz" % flavour, "-C", os.path.dirname(d)])
    return d


def test_builds_without_warnings_w1_and_sparse(ctx):
    out = tempfile.mkdtemp(prefix="vb-build-")
    try:
        for name in ("Kbuild", "drivers", "include"):
            src = os.path.join(vm.REPO, name)
            (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(out, name))
        r = subprocess.run(["make", "-C", vm.headers_dir(ctx.ver), "M=" + out,
                            "W=1", "C=2", "modules"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0, "build failed:\n" + r.stdout[-3000:]
        checked = [line for line in r.stdout.splitlines() if line.strip().startswith("CHECK ")]
        assert checked, "sparse did not run (no CHECK lines)"
        noise = [line for line in r.stdout.splitlines()
                 if ("warning" in line.lower() or "error" in line.lower()) and "Skipping BTF" not in line]
        assert not noise, "W=1/sparse messages:\n" + "\n".join(noise[:30])
        ctx.note("%d files checked by sparse, no warning" % len(checked))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_checkpatch_strict_is_clean(ctx):
    script = os.path.join(_kernel_source(ctx.kernel), "scripts", "checkpatch.pl")
    files = _sources()
    r = subprocess.run(["perl", script, "--strict", "--no-tree", "--terse", "--show-types", "-f"] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bad = []
    for line in r.stdout.splitlines():
        if not any(t in line for t in ("ERROR:", "WARNING:", "CHECK:")):
            continue
        rel = os.path.relpath(line.split(":", 1)[0], vm.REPO)
        if any(rel == f and msg in line for f, msg in JUSTIFIED):
            continue
        bad.append(line.replace(vm.REPO + "/", ""))
    assert not bad, "checkpatch --strict:\n" + "\n".join(bad[:40])
    ctx.note("%d files clean (checkpatch of %s)" % (len(files), ctx.kernel))


def test_make_install_puts_module_in_updates(ctx):
    stage = tempfile.mkdtemp(prefix="vb-install-")
    work = tempfile.mkdtemp(prefix="vb-src-")
    try:
        vm.sh(["cp", "-a", vm.REPO + "/.", work])
        vm.sh(["make", "-C", work, "KDIR=" + vm.headers_dir(ctx.ver), "INSTALL_MOD_PATH=" + stage,
               "install"])
        ko = glob.glob(os.path.join(stage, "lib/modules", ctx.ver, "updates", "virtio_balloon.ko*"))
        assert ko, "no virtio_balloon.ko under updates/ after make install"
        dep = open(os.path.join(stage, "lib/modules", ctx.ver, "modules.dep")).read()
        assert "updates/virtio_balloon.ko" in dep, "depmod did not index the installed module"
        info = vm.sh(["modinfo", "-F", "version", ko[0]]).strip()
        assert info, "modinfo shows no version"
        ctx.note("installed %s, version %s" % (os.path.relpath(ko[0], stage), info))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_dkms_builds_for_the_named_kernel(ctx):
    conf = open(os.path.join(vm.REPO, "dkms.conf")).read()
    version = conf.split('PACKAGE_VERSION="')[1].split('"')[0]
    src = "/usr/src/virtio_balloon-" + version
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["dkms", "remove", "virtio_balloon/" + version, "--all"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vm.sh(sudo + ["rm", "-rf", src])
    try:
        vm.sh(sudo + ["mkdir", "-p", src])
        for name in ("Kbuild", "Makefile", "dkms.conf", "drivers", "include"):
            vm.sh(sudo + ["cp", "-a", os.path.join(vm.REPO, name), src])
        vm.sh(sudo + ["dkms", "add", "virtio_balloon/" + version])
        vm.sh(sudo + ["dkms", "build", "virtio_balloon/" + version, "-k", ctx.ver,
                      "--kernelsourcedir", vm.headers_dir(ctx.ver)])
        status = vm.sh(["dkms", "status", "virtio_balloon/" + version, "-k", ctx.ver])
        assert "built" in status, "dkms status: " + status
        ko = glob.glob("/var/lib/dkms/virtio_balloon/%s/%s/*/module/virtio_balloon.ko*" % (version, ctx.ver))
        assert ko, "dkms left no module for " + ctx.ver
        ctx.note(status.strip())
    finally:
        subprocess.run(sudo + ["dkms", "remove", "virtio_balloon/" + version, "--all"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        vm.sh(sudo + ["rm", "-rf", src])


def test_kunit_suites_pass_in_uml(ctx):
    r = subprocess.run(["bash", os.path.join(vm.TESTING, "kunit.sh"), ctx.kernel],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    summary = [line for line in r.stdout.splitlines() if "Testing complete" in line or "kunit:" in line]
    assert r.returncode == 0, "kunit.sh %s failed:\n%s" % (ctx.kernel, r.stdout[-4000:])
    for line in summary[-3:]:
        ctx.note(line.strip())
