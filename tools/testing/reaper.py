# SPDX-License-Identifier: GPL-2.0
"""The process reaper: every QEMU the harness starts is killed when the
harness exits, however it exits (normal exit, exception, Ctrl-C, SIGTERM,
SIGHUP, and even SIGKILL of the harness through PR_SET_PDEATHSIG).

Guests register in `live` while they run; close_all() closes them all.
"""

import atexit
import ctypes
import signal

live = set()


def close_all():
    """Kill every guest still running."""
    for g in list(live):
        g.close()


def _on_signal(signum, frame):
    close_all()
    raise SystemExit(128 + signum)


atexit.register(close_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    # Runs in the child before exec: QEMU gets SIGKILL if the harness dies,
    # even by SIGKILL, when no Python cleanup can run.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
