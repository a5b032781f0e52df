"""Fixtures for the integration tests: they spawn the built binaries on 127.0.0.1.

Every process started here is stopped here, by PID; every wait is bounded.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

LISTENING = re.compile(r"listening for (netstring|line|http) requests on (\S+):(\d+)")


def bin_dir():
    d = os.environ.get("XFORM_BIN_DIR")
    if not d:
        d = subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip()
    return d


def binary(name):
    return os.path.join(bin_dir(), name)


# XFORM_TEST_REACTORS=N (Tests/run-all.sh's second pass, issue 13): every transform-server the
# tests start serves with N event loops.
TEST_REACTORS = os.environ.get("XFORM_TEST_REACTORS", "").strip()


def server_options(args):
    """transform-server's options ``args``, plus ``--reactors N`` under XFORM_TEST_REACTORS=N,
    unless they choose ``--reactors`` themselves or run a proxy (``--upstream``: one loop only)."""
    args = list(args)
    if TEST_REACTORS and "--reactors" not in args and "--upstream" not in args:
        args += ["--reactors", TEST_REACTORS]
    return args


def server_command(*args):
    """The argv of a transform-server with the options ``args`` (see ``server_options``)."""
    return [binary("transform-server"), *server_options(args)]


def loop_count():
    """How many event loops each transform-server the tests start runs (XFORM_TEST_REACTORS)."""
    return int(TEST_REACTORS) if TEST_REACTORS.isdigit() else 1


class Server:
    """A transform-server process whose stderr is collected line by line."""

    def __init__(self, *args, env=None, wait_ports=True, timeout=30.0):
        self.args = server_command(*args)
        self.lines = []
        self.cond = threading.Condition()
        self.ports = {}
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, cwd=ROOT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if wait_ports:
            want = 3 if "--http-port" in args else 2
            self.wait_for(lambda: len(self.ports) == want, timeout, "every listening line")

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                m = LISTENING.search(line)
                if m:
                    self.ports[m.group(1)] = int(m.group(3))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, predicate, timeout=30.0, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                if self.proc.poll() is not None and not self.reader.is_alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.2))
            if not predicate():
                raise AssertionError(f"timed out waiting for {what}; output so far:\n" + "\n".join(self.lines))

    def wait_for_line(self, pattern, timeout=30.0):
        rx = re.compile(pattern)
        self.wait_for(lambda: any(rx.search(l) for l in self.lines), timeout, f"a line matching {pattern!r}")

    @property
    def netstring_port(self):
        return self.ports["netstring"]

    @property
    def line_port(self):
        return self.ports["line"]

    @property
    def http_port(self):
        return self.ports["http"]

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, sig=None, timeout=30.0):
        """Sends ``sig`` (SIGTERM by default) and returns the exit status (killing the process if it hangs)."""
        # (A default of signal.SIGTERM would name the method above, not the module, in the class body.)
        self.signal(signal.SIGTERM if sig is None else sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("server did not exit within %.0f s; output:\n%s" % (timeout, self.output()))
        finally:
            self.reader.join(5)

    def output(self):
        with self.cond:
            return "\n".join(self.lines)


@pytest.fixture
def server():
    """A transform-server on ephemeral ports, stopped with SIGTERM (which must exit 0)."""
    s = Server("--netstring-port", "0", "--line-port", "0")
    yield s
    status = s.stop()
    assert status == 0, s.output()


@pytest.fixture
def start_server():
    """A factory for servers with custom arguments; all are stopped at the end."""
    started = []

    def start(*args, **kw):
        s = Server(*args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.stop(signal.SIGKILL)


def run(args, input=None, timeout=30.0, env=None):
    """Runs a command with bounded time and returns the CompletedProcess (bytes)."""
    return subprocess.run(args, input=input, capture_output=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})
