# SPDX-License-Identifier: GPL-2.0
"""A QMP client over the guest's UNIX socket."""

import json
import socket
import time

def connect_unix(path, timeout):
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
        self.sock = connect_unix(path, timeout)
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
