"""Issue 11, what a new user trips over: fast, clear failures of the xform client; the daemon
under its own name; directories created; the embedding example is in Tests/example-smoke.sh.

The misbehaving servers are small Python socket servers in this process (ScriptedServer), so
each can be produced on purpose; timing bounds are generous ("fails within 2 s").
Every process is stopped by PID; every wait is bounded.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from conftest import ROOT, Server, binary, run, server_command
from test_client_faults import free_port


def xform(*args, input=b"", timeout=30):
    started = time.monotonic()
    r = subprocess.run([binary("xform"), *args], input=input, capture_output=True, timeout=timeout, cwd=ROOT)
    r.elapsed = time.monotonic() - started
    return r


def netstring(b):
    return str(len(b)).encode() + b":" + b + b","


def netstrings(buf):
    """Splits complete netstrings off buf: (payloads, rest)."""
    out = []
    while True:
        i = buf.find(b":")
        if i <= 0 or not buf[:i].isdigit():
            return out, buf
        n = int(buf[:i])
        if len(buf) < i + n + 2:
            return out, buf
        out.append(buf[i + 1:i + 1 + n])
        buf = buf[i + 2 + n:]


class ScriptedServer:
    """A TCP server on 127.0.0.1 whose `respond(payload) -> bytes or None` answers each netstring
    request (None: say nothing). With `raw`, `respond` gets each chunk of bytes instead."""

    def __init__(self, respond, raw=False):
        self.respond, self.raw = respond, raw
        self.requests, self.connections = [], 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.open = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self.raw:
                self.requests.append(data)
                reply = self.respond(data)
                if reply:
                    conn.sendall(reply)
                continue
            buf += data
            payloads, buf = netstrings(buf)
            for p in payloads:
                self.requests.append(p)
                reply = self.respond(p)
                if reply is not None:
                    conn.sendall(reply)

    def close(self):
        self.sock.close()
        for c in self.open:
            try:
                c.close()
            except OSError:
                pass


def extended(transforms=None, limits=None):
    """A respond() for an extended-form server with `transforms` and, optionally, ?limits."""
    transforms = transforms or {"upper": str.upper, "reverse": lambda s: s[::-1]}

    def respond(p):
        if p == b"?limits":
            if limits is None:
                return netstring(b"-bad_request unknown query (try ?list)")
            return netstring(b"+max_request_bytes=%d\n" % limits)
        name, _, text = p[1:].decode().partition(".")
        if name not in transforms:
            return netstring(("-unknown_transform no transform named '%s'" % name).encode())
        return netstring(b"+" + transforms[name](text).encode())
    return respond


# --- a reply that is not a netstring fails at once ------------------------------------------------

def test_a_netstring_client_pointed_at_a_line_port_fails_fast_with_a_protocol_error():
    # What the line port answers (engine side of issue 11) to a netstring-looking first line;
    # the client alone must turn it into a protocol error, not retried.
    line_port = ScriptedServer(lambda data: b"ERR bad_request this is the line port\n", raw=True)
    try:
        r = xform("-p", str(line_port.port), "upper", input=b"hello")
        assert r.returncode == 76, r.stderr
        assert r.elapsed < 2.0
        assert r.stderr.decode().startswith(f"xform: protocol error from 127.0.0.1:{line_port.port}")
        assert line_port.connections == 1
    finally:
        line_port.close()


def test_the_real_line_port_never_keeps_the_netstring_client_past_its_deadline(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0")
    r = xform("-p", str(server.line_port), "--deadline", "2s", "upper", input=b"hello", timeout=20)
    # 76 once the line port answers ERR at once; 75 (no reply in time) before that.
    assert r.returncode in (75, 76), r.stderr
    assert r.elapsed < 5.0
    assert r.stdout == b""


# --- deadline, timeouts, retries -----------------------------------------------------------------

def test_retries_against_a_refusing_port_stop_at_the_deadline():
    port = free_port()
    r = xform("-p", str(port), "--retries", "1000", "--deadline", "1s", "upper", input=b"x")
    assert r.returncode == 69, r.stderr
    assert r.elapsed < 3.0
    assert r.stderr.decode().endswith("connection refused\n")


def test_a_timeout_is_retried_once_then_fails_with_75():
    silent = ScriptedServer(lambda p: None)
    try:
        r = xform("-p", str(silent.port), "-t", "0.5", "upper", input=b"x")
        assert r.returncode == 75, r.stderr
        assert 0.9 < r.elapsed < 4.0
        assert silent.connections == 2
        assert "no reply from the server within 500ms" in r.stderr.decode()
    finally:
        silent.close()


def test_retry_timeouts_0_gives_up_at_the_first_timeout():
    silent = ScriptedServer(lambda p: None)
    try:
        r = xform("-p", str(silent.port), "-t", "0.5", "--retry-timeouts", "0", "upper", input=b"x")
        assert r.returncode == 75, r.stderr
        assert r.elapsed < 2.0
        assert silent.connections == 1
    finally:
        silent.close()


def test_verbose_prints_each_failed_attempt_and_its_delay():
    port = free_port()
    r = xform("-v", "-p", str(port), "--retries", "2", "upper", input=b"x")
    assert r.returncode == 69
    lines = r.stderr.decode().splitlines()
    assert lines[0] == f"xform: attempt 1 failed: connection refused by 127.0.0.1:{port}; retrying in 10ms"
    assert lines[1] == f"xform: attempt 2 failed: connection refused by 127.0.0.1:{port}; retrying in 20ms"
    assert len(lines) == 3


def test_without_verbose_one_line_says_the_server_is_not_answering_after_a_second():
    port = free_port()
    r = xform("-p", str(port), "--deadline", "2.5s", "upper", input=b"x")
    assert r.returncode == 69
    assert r.elapsed < 5.0
    lines = r.stderr.decode().splitlines()
    assert lines == ["xform: server not answering, retrying… (-v shows each attempt)",
                     f"xform: cannot reach the server at 127.0.0.1:{port}: connection refused"]


def test_a_quick_failure_prints_no_retry_notice():
    port = free_port()
    r = xform("-p", str(port), "--retries", "3", "upper", input=b"x")
    assert r.stderr.decode() == f"xform: cannot reach the server at 127.0.0.1:{port}: connection refused\n"


def test_version():
    r = xform("--version")
    assert (r.returncode, r.stdout) == (0, b"xform 1.0.0\n")


# --- limits -------------------------------------------------------------------------------------

def test_a_text_over_the_announced_limit_is_refused_locally_with_65_without_retries(tmp_path):
    server = ScriptedServer(extended(limits=100))
    try:
        big = tmp_path / "big"
        big.write_text("a" * 94)      # "!upper." + 94 = 101 bytes > 100
        small = tmp_path / "small"
        small.write_text("a" * 93)    # exactly 100: fits
        r = xform("-p", str(server.port), "upper", str(small), str(big))
        assert r.returncode == 65, r.stderr
        assert r.elapsed < 2.0
        assert r.stdout == b"A" * 93
        assert r.stderr.decode().startswith(f"xform: {big}: the input is too large for the server:")
        assert server.requests == [b"?limits", b"!upper." + b"a" * 93]
    finally:
        server.close()


def test_a_server_without_limits_is_sent_the_text_as_before():
    server = ScriptedServer(extended(limits=None))
    try:
        r = xform("-p", str(server.port), "upper", input=b"a" * 500)
        assert (r.returncode, r.stdout) == (0, b"A" * 500), r.stderr
        assert server.requests[0] == b"?limits"
    finally:
        server.close()


# --- output ---------------------------------------------------------------------------------------

def test_a_closed_pipe_ends_quietly_with_status_0(tmp_path):
    server = ScriptedServer(extended())
    try:
        big = tmp_path / "big"
        big.write_text("abc\n" * 250_000)   # 1 MB of output: more than a pipe holds
        script = f'"{binary("xform")}" -p {server.port} --deadline 20s upper "{big}" 2>"{tmp_path}/err" | head -c 4; ' \
                 'echo " ${PIPESTATUS[0]}"'
        r = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30)
        assert r.stdout == b"ABC\n 0\n"
        assert (tmp_path / "err").read_bytes() == b""
    finally:
        server.close()


def test_output_dir_writes_each_result_under_its_base_name_and_names_a_failing_file(tmp_path):
    server = ScriptedServer(extended())
    try:
        (tmp_path / "in").mkdir()
        a, b = tmp_path / "in" / "a.txt", tmp_path / "in" / "b.txt"
        a.write_text("first")
        b.write_text("second")
        out = tmp_path / "out"
        out.mkdir()
        missing = tmp_path / "in" / "missing.txt"
        r = xform("-p", str(server.port), "-o", str(out), "upper", str(a), str(missing), str(b))
        assert r.returncode == 66
        assert r.stdout == b""
        assert (out / "a.txt").read_text() == "FIRST"
        assert (out / "b.txt").read_text() == "SECOND"
        assert not (out / "missing.txt").exists()
        assert str(missing) in r.stderr.decode()
    finally:
        server.close()


def test_output_dir_that_cannot_be_written_is_reported_per_file_with_73(tmp_path):
    server = ScriptedServer(extended())
    try:
        a = tmp_path / "a.txt"
        a.write_text("x")
        r = xform("-p", str(server.port), "-o", str(tmp_path / "nope"), "upper", str(a))
        assert r.returncode == 73
        assert r.stderr.decode().startswith(f"xform: {a}: cannot write '{tmp_path / 'nope' / 'a.txt'}'")
    finally:
        server.close()


def test_output_dir_needs_files_and_distinct_base_names(tmp_path):
    assert xform("-o", str(tmp_path), "upper").returncode == 64
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    r = xform("-o", str(tmp_path), "upper", str(tmp_path / "x" / "f"), str(tmp_path / "y" / "f"))
    assert r.returncode == 64
    assert b"two files have the base name 'f'" in r.stderr


# --- daemon ---------------------------------------------------------------------------------------

def wait_gone(pid, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1].startswith("Z"):
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_the_daemon_runs_under_its_own_name_and_creates_its_directories(tmp_path):
    rundir = tmp_path / "run" / "xform"
    pidfile = tmp_path / "pids" / "deep" / "ts.pid"
    logfile = tmp_path / "logs" / "ts.log"
    out = run(server_command("--daemon", "--netstring-port", "0", "--line-port", "0",
               "--rundir", str(rundir), "--pidfile", str(pidfile), "--logfile", str(logfile)), timeout=30)
    assert out.returncode == 0, out.stderr
    pid = int(pidfile.read_text())
    try:
        assert out.stdout.decode() == \
            f"transform-server: started in the background (pid {pid}), logging to {logfile}\n"
        assert rundir.is_dir() and logfile.exists()
        assert os.path.realpath(f"/proc/{pid}/cwd") == str(rundir)
        with open(f"/proc/{pid}/comm") as f:
            # The kernel keeps 15 characters of the name (it was "exe" with /proc/self/exe).
            assert f.read().strip() == "transform-server"[:15]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert argv[0] == binary("transform-server").encode()
        assert not any(b"daemon-child-status" in a for a in argv)
        found = subprocess.run(["pgrep", "-f", "transform-server"], capture_output=True, text=True, timeout=10)
        assert str(pid) in found.stdout.split()
        if shutil.which("pidof"):
            found = subprocess.run(["pidof", "transform-server"], capture_output=True, text=True, timeout=10)
            assert str(pid) in found.stdout.split()
    finally:
        os.kill(pid, signal.SIGTERM)
        assert wait_gone(pid), "daemon did not stop"


def test_a_missing_rundir_is_created_in_the_foreground_too(tmp_path):
    rundir = tmp_path / "a" / "b"
    s = Server("--netstring-port", "0", "--line-port", "0", "--rundir", str(rundir))
    try:
        assert os.path.realpath(f"/proc/{s.proc.pid}/cwd") == str(rundir)
    finally:
        assert s.stop() == 0, s.output()


def test_a_rundir_that_cannot_be_created_is_refused_with_73(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run(server_command("--netstring-port", "0", "--line-port", "0",
             "--rundir", str(blocker / "sub")), timeout=30)
    assert r.returncode == 73
    assert f"cannot create the directory {blocker / 'sub'}".encode() in r.stderr
