# SPDX-License-Identifier: GPL-2.0
"""The guest's test shell on its second serial port."""

import base64
import os
import socket
import time

from qmp import connect_unix

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
        self.sock = connect_unix(self.path, timeout)

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
