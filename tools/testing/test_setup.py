# SPDX-License-Identifier: GPL-2.0
"""The set-up, as on a new machine: tools/testing/new-machine.sh runs setup.sh
in a minimal Debian 12 root with an empty cache, through every kernel line
of tools/testing/kernels, then builds the module and the tests' initramfs
for each kernel there. A tool that only this machine has, or a step that
assumes every kernel looks like the one it was written for, fails it.

Left out (new-machine.sh says so too): the emulating QEMU's build and the
Debian 13 root, too slow to repeat; the root of $VB_CACHE/roots is reused.
Nothing boots in the new machine."""

import os
import signal
import subprocess

import host_build


def test_setup_works_on_a_new_machine(ctx):
    p = subprocess.Popen(["bash", os.path.join(host_build.TESTING, "new-machine.sh")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out = p.communicate()[0]
    finally:
        # On a timeout, nothing of it may go on running.
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()
    assert p.returncode == 0, "new-machine.sh failed:\n" + out[-4000:]
    for line in out.splitlines():
        if line.startswith("new-machine: "):
            ctx.note(line[len("new-machine: "):])


# It does not depend on the kernel under test: it sets up all of them.
test_setup_works_on_a_new_machine.once = True
