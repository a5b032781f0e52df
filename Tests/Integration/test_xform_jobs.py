"""xform with many files: -j/--jobs bounds the requests in flight (through the dispatch queue),
and --progress forces the progress line (built on the Deferred list observer) onto a pipe.

The server is an in-process fake that counts requests in flight: received and not yet answered.
It reads each connection continuously, so a pipelined request is counted the moment it arrives,
and answers in order after a delay. Every wait is bounded.
"""

import os
import pty
import select
import socket
import subprocess
import threading
import time

from test_client_faults import ROOT, binary, xform


class CountingServer:
    """An extended-netstring transform server (upper only) that records the most requests in flight."""

    def __init__(self, delay=0.2):
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        pending = []
        cond = threading.Condition()
        done = [False]

        def reader():
            buf = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    with cond:
                        done[0] = True
                        cond.notify()
                    return
                buf += data
                while True:
                    i = buf.find(b":")
                    if i <= 0:
                        break
                    n = int(buf[:i])
                    if len(buf) < i + 2 + n:
                        break
                    payload, buf = buf[i + 1:i + 1 + n], buf[i + 2 + n:]
                    with cond:
                        if payload[:1] == b"!":
                            with self.lock:
                                self.in_flight += 1
                                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                        pending.append(payload)
                        cond.notify()

        threading.Thread(target=reader, daemon=True).start()
        while True:
            with cond:
                while not pending and not done[0]:
                    cond.wait(1.0)
                if not pending:
                    conn.close()
                    return
                payload = pending.pop(0)
            if payload == b"?list":
                reply = b"+upper"
            else:
                time.sleep(self.delay)
                name, _, text = payload[1:].decode().partition(".")
                reply = b"+" + text.upper().encode()
                with self.lock:
                    self.in_flight -= 1
            try:
                conn.sendall(str(len(reply)).encode() + b":" + reply + b",")
            except OSError:
                return

    def close(self):
        self.closing = True
        self.sock.close()


def files(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / ("f%d" % i)
        p.write_text("file %d " % i)
        paths.append(str(p))
    return paths


def test_jobs_bounds_the_requests_in_flight(tmp_path):
    server = CountingServer(delay=0.2)
    try:
        r = xform("-j", "2", "-p", str(server.port), "upper", *files(tmp_path, 6))
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"".join(b"FILE %d " % i for i in range(6))
        assert server.max_in_flight == 2
        assert r.stderr == b""  # a pipe: no progress line by default
    finally:
        server.close()


def test_by_default_eight_files_are_in_flight_at_once(tmp_path):
    server = CountingServer(delay=0.3)
    try:
        r = xform("-p", str(server.port), "upper", *files(tmp_path, 10))
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"".join(b"FILE %d " % i for i in range(10))
        assert server.max_in_flight == 8
    finally:
        server.close()


def test_progress_forced_onto_a_pipe_counts_done_and_failed(tmp_path):
    server = CountingServer(delay=0.05)
    try:
        paths = files(tmp_path, 3)
        missing = str(tmp_path / "missing")
        r = xform("--progress", "-j", "1", "-p", str(server.port), "upper", paths[0], missing, paths[1], paths[2])
        assert r.returncode == 66
        assert r.stdout == b"FILE 0 FILE 1 FILE 2 "
        lines = r.stderr.decode().splitlines()
        progress = [l for l in lines if " done, " in l]
        # One line per event on a pipe: the start, the unreadable file at once, then each reply.
        assert progress == ["0/4 done, 0 failed", "1/4 done, 1 failed", "2/4 done, 1 failed",
                            "3/4 done, 1 failed", "4/4 done, 1 failed"]
        assert lines[-1] == "xform: cannot read '%s': No such file or directory" % missing
    finally:
        server.close()


def test_no_progress_and_jobs_validation(tmp_path):
    server = CountingServer(delay=0.0)
    try:
        r = xform("--no-progress", "-p", str(server.port), "upper", *files(tmp_path, 2))
        assert (r.returncode, r.stderr) == (0, b"")
        bad = xform("-j", "0", "upper")
        assert bad.returncode == 64
        assert bad.stderr.decode().startswith("Error: The value '0' is invalid for '--jobs <n>'")
        both = xform("--progress", "--no-progress", "upper")
        assert both.returncode == 64
    finally:
        server.close()


def test_progress_is_shown_by_default_on_a_terminal_in_place(tmp_path):
    server = CountingServer(delay=0.05)
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([binary("xform"), "-p", str(server.port), "upper", *files(tmp_path, 3)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, timeout=30)
        os.close(slave)
        slave = None
        err = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        assert proc.returncode == 0
        assert proc.stdout == b"FILE 0 FILE 1 FILE 2 "
        # Rewritten in place (carriage return, erase line), ended by one newline.
        assert err.startswith(b"\r\x1b[K0/3 done, 0 failed")
        assert err.endswith(b"\r\x1b[K3/3 done, 0 failed\r\n")
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
        server.close()
