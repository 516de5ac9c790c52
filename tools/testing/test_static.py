# SPDX-License-Identifier: GPL-2.0
"""Build and source checks, per kernel: W=1 and sparse clean, checkpatch
clean, DKMS and `make install` work, KUnit suites pass in UML."""

import glob
import os
import shutil
import subprocess
import tempfile

import host_build

# Messages checkpatch --strict prints that are justified:
# - LINUX_VERSION_CODE in the compat header: the one place allowed to test the
#   kernel version (and checkpatch's "constant on the right" is about the
#   same line).
JUSTIFIED = (
    ("include/virtio_balloon_compat.h", "LINUX_VERSION_CODE should be avoided"),
    ("include/virtio_balloon_compat.h", "Comparisons should place the constant on the right"),
)


def _sources():
    return sorted(glob.glob(os.path.join(host_build.REPO, "drivers/virtio/*.c")) +
                  glob.glob(os.path.join(host_build.REPO, "include/*.h")))


def _kernel_scripts(ver):
    """A directory with the scripts/ of this kernel's source, for checkpatch."""
    d = os.path.join(host_build.CACHE, "src", ver)
    if not os.path.isdir(d):
        os.makedirs(d + ".tmp", exist_ok=True)
        host_build.sh(["tar", "xf", host_build.KERNELS[ver].source, "-C", d + ".tmp", "--strip-components=1",
               "--wildcards", "*/scripts/*"])
        os.rename(d + ".tmp", d)
    return d


# What Debian's sparse (0.6.4, the newest in every suite here) lacks for the
# headers of newer kernels (7.3): __typeof_unqual__, and __builtin_strlen()
# of a literal as a constant (MODULE_INFO's static_assert). Both are given
# to sparse alone, as the nearest it understands; the compiler is untouched.
SPARSE_SHIMS = "CF=-D__typeof_unqual__=__typeof__ '-D__builtin_strlen(s)=(sizeof(s)-1)'"


def _make_checked(ver, out, extra=()):
    cmd = ["make", "-C", host_build.headers_dir(ver), "M=" + out, "W=1", "C=2"] + list(extra) + ["modules"]
    return subprocess.run(host_build.in_build_env(ver, cmd, out), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


def test_builds_without_warnings_w1_and_sparse(ctx):
    out = tempfile.mkdtemp(prefix="vb-build-")
    try:
        for name in ("Kbuild", "drivers", "include"):
            src = os.path.join(host_build.REPO, name)
            (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(out, name))
        r = _make_checked(ctx.ver, out)
        if "is not available or not up to date" in r.stdout:
            # kbuild's scripts/checker-valid.sh refused the sparse.
            ctx.note("sparse too old for these headers: run with " + SPARSE_SHIMS)
            r = _make_checked(ctx.ver, out, [SPARSE_SHIMS])
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
    script = os.path.join(_kernel_scripts(ctx.ver), "scripts", "checkpatch.pl")
    files = _sources()
    r = subprocess.run(["perl", script, "--strict", "--no-tree", "--terse", "--show-types", "-f"] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bad = []
    for line in r.stdout.splitlines():
        if not any(t in line for t in ("ERROR:", "WARNING:", "CHECK:")):
            continue
        rel = os.path.relpath(line.split(":", 1)[0], host_build.REPO)
        if any(rel == f and msg in line for f, msg in JUSTIFIED):
            continue
        bad.append(line.replace(host_build.REPO + "/", ""))
    assert not bad, "checkpatch --strict:\n" + "\n".join(bad[:40])
    ctx.note("%d files clean (checkpatch of %s)" % (len(files), ctx.kernel))


def test_make_install_puts_module_in_updates(ctx):
    stage = tempfile.mkdtemp(prefix="vb-install-")
    work = tempfile.mkdtemp(prefix="vb-src-")
    try:
        host_build.sh(["cp", "-a", host_build.REPO + "/.", work])
        host_build.sh(host_build.in_build_env(ctx.ver, ["make", "-C", work, "KDIR=" + host_build.headers_dir(ctx.ver),
                                        "INSTALL_MOD_PATH=" + stage, "install"]))
        ko = glob.glob(os.path.join(stage, "lib/modules", ctx.ver, "updates", "virtio_balloon.ko*"))
        assert ko, "no virtio_balloon.ko under updates/ after make install"
        dep = open(os.path.join(stage, "lib/modules", ctx.ver, "modules.dep")).read()
        assert "updates/virtio_balloon.ko" in dep, "depmod did not index the installed module"
        info = host_build.sh(["modinfo", "-F", "version", ko[0]]).strip()
        assert info, "modinfo shows no version"
        ctx.note("installed %s, version %s" % (os.path.relpath(ko[0], stage), info))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_dkms_builds_for_the_named_kernel(ctx):
    """DKMS of the machine, or of the kernel's Debian root (Debian 13's DKMS
    for its kernels): there /usr/src and /var/lib/dkms are the root's."""
    conf = open(os.path.join(host_build.REPO, "dkms.conf")).read()
    version = conf.split('PACKAGE_VERSION="')[1].split('"')[0]
    src = "/usr/src/virtio_balloon-" + version
    root = host_build.KERNELS[ctx.ver].root or "/"
    sudo = [] if os.geteuid() == 0 else ["sudo"]

    def run(cmd, check=True):
        cmd = host_build.in_build_env(ctx.ver, cmd)
        if not check:
            return subprocess.run(sudo + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return host_build.sh(sudo + cmd)

    run(["dkms", "remove", "virtio_balloon/" + version, "--all"], check=False)
    run(["rm", "-rf", src])
    try:
        run(["mkdir", "-p", src])
        for name in ("Kbuild", "Makefile", "dkms.conf", "drivers", "include"):
            run(["cp", "-a", os.path.join(host_build.REPO, name), src])
        run(["dkms", "add", "virtio_balloon/" + version])
        run(["dkms", "build", "virtio_balloon/" + version, "-k", ctx.ver,
             "--kernelsourcedir", host_build.headers_dir(ctx.ver)])
        status = run(["dkms", "status", "virtio_balloon/" + version, "-k", ctx.ver])
        assert "built" in status, "dkms status: " + status
        ko = glob.glob(os.path.join(root, "var/lib/dkms/virtio_balloon/%s/%s/*/module/virtio_balloon.ko*"
                                    % (version, ctx.ver)))
        assert ko, "dkms left no module for " + ctx.ver
        ctx.note(status.strip() + ("" if root == "/" else " (DKMS of %s)" % root))
    finally:
        run(["dkms", "remove", "virtio_balloon/" + version, "--all"], check=False)
        run(["rm", "-rf", src])


def test_kunit_suites_pass_in_uml(ctx):
    r = subprocess.run(["bash", os.path.join(host_build.TESTING, "kunit.sh"), ctx.kernel],
                       stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    summary = [line for line in r.stdout.splitlines() if "Testing complete" in line or "kunit:" in line]
    assert r.returncode == 0, "kunit.sh %s failed:\n%s" % (ctx.kernel, r.stdout[-4000:])
    for line in summary[-3:]:
        ctx.note(line.strip())

# Run on every kernel, also those whose line in tools/testing/kernels says "core".
test_builds_without_warnings_w1_and_sparse.core = True
test_checkpatch_strict_is_clean.core = True
test_make_install_puts_module_in_updates.core = True
test_dkms_builds_for_the_named_kernel.core = True
test_kunit_suites_pass_in_uml.core = True
