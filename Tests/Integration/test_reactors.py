"""transform-server --reactors N (issue 13, "All cores"): N event loops, each accepting on its
own SO_REUSEPORT socket per port; stats sum every loop; TERM drains every loop.

Only 127.0.0.1; every wait and loop is bounded; every process started here is stopped here.
"""

import fcntl
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

import xform_client
from xform_client import netstring

from conftest import run, binary
from test_daemon import spawn
from test_signals import connect, read_netstring


def ask_line_port(port, text, end):
    """Sends one line-port request on a new connection; returns the reply up to ``end``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(text.encode() + b"\n")
        buf = b""
        while not buf.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode()


def line_request(port, text):
    return ask_line_port(port, text, b"\n").strip()


def stats(port):
    """The `stats` block of the line port, as a list of lines."""
    lines = ask_line_port(port, "stats", b"\n.\n").splitlines()
    assert lines[0] == "OK", lines
    return lines[1:-1]


def wait_for_stats(port, predicate, timeout=10.0):
    """Polls `stats` until ``predicate(lines)``: other loops publish their counters every 250 ms."""
    deadline = time.monotonic() + timeout
    while True:
        lines = stats(port)
        if predicate(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def per_loop(lines):
    return {int(m.group(1)): int(m.group(2))
            for m in (re.match(r"loop_connections_total (\d+) (\d+)$", l) for l in lines) if m}


def test_two_loops_serve_every_port_spread_connections_and_sum_their_counters(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--http-port", "0", "--reactors", "2")
    s.wait_for_line(r"serving with 2 event loops")
    for i in range(30):
        assert line_request(s.line_port, f"upper l{i}") == f"OK L{i}"
        with xform_client.NetstringClient(port=s.netstring_port) as c:
            assert c.xform("upper", f"n{i}") == f"N{i}"
    req = urllib.request.Request(f"http://127.0.0.1:{s.http_port}/transform/upper", data=b"h", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.read() == b"H"
    # 61 connections: 30 line, 30 netstring, 1 http (the stats connection adds one line more).
    lines = wait_for_stats(s.line_port, lambda ls: "requests upper ok=61" in ls and sum(per_loop(ls).values()) >= 62)
    assert "requests upper ok=61" in lines, lines
    assert "connections_total netstring 30" in lines, lines
    loops = per_loop(lines)
    assert sorted(loops) == [0, 1], lines
    # The kernel spreads connections across the two SO_REUSEPORT sockets (by a hash of the
    # client port): with 62 connections, both loops take some.
    assert all(n > 0 for n in loops.values()), lines
    totals = sum(int(l.split()[2]) for l in lines if l.startswith("connections_total "))
    assert sum(loops.values()) == totals, lines
    # /metrics sums the loops too: 61 upper requests over the three ports.
    with urllib.request.urlopen(f"http://127.0.0.1:{s.http_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    upper = sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
                if l.startswith('xform_requests_total{transform="upper"') and 'outcome="ok"' in l)
    assert upper == 61, metrics
    assert metrics.count("\nprocess_cpu_seconds_total") <= 1, metrics
    s.signal(signal.SIGUSR2)
    s.wait_for_line(r"stats: requests upper ok=61", 20)
    s.wait_for_line(r"stats: loop_connections_total 1 \d+", 20)
    assert s.stop() == 0, s.output()


def test_sigterm_with_two_loops_drains_requests_in_flight_on_every_loop(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--reactors", "2")
    socks = [connect(s.netstring_port) for _ in range(40)]
    bufs = [bytearray() for _ in socks]
    try:
        for i, c in enumerate(socks):
            c.sendall(netstring(f"!upper.c{i}".encode()))
        for i, c in enumerate(socks):
            assert read_netstring(c, bufs[i]) == f"+C{i}".encode()
        # slowcummingsify answers 100 ms later: they are in flight when SIGTERM arrives.
        for i, c in enumerate(socks):
            c.sendall(netstring(f"!slowcummingsify.POEM NUMBER {i}".encode()))
        s.signal(signal.SIGTERM)
        for i, c in enumerate(socks):
            assert read_netstring(c, bufs[i]) == f"+poem number {i}".encode()
        for i, c in enumerate(socks):
            assert c.recv(1) == b"", f"connection {i} stayed open"
    finally:
        for c in socks:
            c.close()
    assert s.proc.wait(30) == 0, s.output()
    s.reader.join(5)  # the last lines ("stopped") may still be in the pipe
    out = s.output()
    drained = [int(n) for n in re.findall(r"shutting down: draining (\d+) connection\(s\)", out)]
    # One drain per loop; together they held all 40 connections.
    assert len(drained) == 2 and sum(drained) == 40, out
    assert out.rstrip().endswith("stopped")


def test_reactors_auto_starts_one_loop_per_core_and_serves(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--reactors", "auto")
    with xform_client.NetstringClient(port=s.netstring_port) as c:
        assert c.xform("upper", "a") == "A"
    assert line_request(s.line_port, "upper b") == "OK B"
    cores = os.cpu_count() or 1
    if cores > 1:
        s.wait_for_line(rf"serving with {cores} event loops")
    assert s.stop() == 0, s.output()


def test_an_invalid_reactor_count_is_a_usage_error():
    r = run([binary("transform-server"), "--netstring-port", "0", "--line-port", "0", "--reactors", "0"])
    assert r.returncode == 64, r
    assert b"--reactors" in r.stderr and b"expected auto or a count from 1 to 256" in r.stderr, r.stderr


def test_two_loops_share_the_sockets_passed_by_systemd_answer_on_both_and_stop_cleanly():
    listeners = [socket.socket(), socket.socket()]
    for l in listeners:
        l.bind(("127.0.0.1", 0))
        l.listen(128)
    nport, lport = (l.getsockname()[1] for l in listeners)
    # Above fd 10 first, so placing them at 3 and 4 in the child cannot overwrite one another.
    high = [fcntl.fcntl(l.fileno(), fcntl.F_DUPFD, 10) for l in listeners]

    def place():
        os.dup2(high[0], 3)
        os.dup2(high[1], 4)

    # As systemd does: fds 3 and 4, named, and LISTEN_PID the server's own pid (sh execs it). The
    # ports given on the command line are unusable (1): it must serve on the passed sockets.
    s = spawn(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=netstring:line exec "$@"', "sh",
               binary("transform-server"), "--netstring-port", "1", "--line-port", "1", "--reactors", "2"],
              preexec_fn=place, pass_fds=(3, 4))
    try:
        for fd in high:
            os.close(fd)
        for l in listeners:
            l.close()  # the server holds the only copies now: its stop closes them
        s.wait_for(lambda: len(s.ports) == 2, 30, "both listening lines")
        assert s.ports == {"netstring": nport, "line": lport}, s.output()
        s.wait_for_line(r"serving with 2 event loops \(sharing the sockets passed by systemd\)")
        # Bursts of concurrent connections, each with a request in flight on the thread pool:
        # a loop busy accepting leaves the next wake-up to the other (EPOLLEXCLUSIVE).
        socks = []
        for burst in range(10):
            batch = [connect(nport) for _ in range(20)]
            for i, c in enumerate(batch):
                c.sendall(netstring(f"!slowcummingsify.BURST {burst} NUMBER {i}".encode()))
            socks += batch
            if all(n > 0 for n in per_loop(wait_for_stats(lport, lambda ls: True)).values()):
                break
        bufs = [bytearray() for _ in socks]
        for i, c in enumerate(socks):
            assert read_netstring(c, bufs[i]).startswith(b"+burst "), i
        assert line_request(lport, "upper via systemd") == "OK VIA SYSTEMD"
        lines = wait_for_stats(lport, lambda ls: sum(per_loop(ls).values()) >= len(socks) + 2)
        loops = per_loop(lines)
        assert sorted(loops) == [0, 1] and sum(loops.values()) >= len(socks) + 2, lines
        assert all(n > 0 for n in loops.values()), lines
        # Graceful stop: both loops stop accepting on the shared sockets and drain.
        for i, c in enumerate(socks[:5]):
            c.sendall(netstring(f"!slowcummingsify.LAST {i}".encode()))
        s.signal(signal.SIGTERM)
        for i, c in enumerate(socks[:5]):
            assert read_netstring(c, bufs[i]) == f"+last {i}".encode()
        for c in socks:
            assert c.recv(1) == b""
            c.close()
        assert s.proc.wait(30) == 0, s.output()
        s.reader.join(5)  # the last lines ("stopped") may still be in the pipe
        assert s.output().rstrip().endswith("stopped")
        for port in (nport, lport):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


def test_sighup_reloads_the_async_limit_on_every_loop(tmp_path, start_server):
    config = tmp_path / "xform.conf"
    config.write_text("max-concurrent-async = 3\n")
    s = start_server("--netstring-port", "0", "--line-port", "0", "--config", str(config), "--reactors", "2")
    # The limit is the process's: split 2 + 1 between the loops, summed in `stats`.
    lines = wait_for_stats(s.line_port, lambda ls: "async_limit 3" in ls)
    assert "async_limit 3" in lines, lines
    config.write_text("max-concurrent-async = 8\n")
    s.signal(signal.SIGHUP)
    s.wait_for_line(r"max-concurrent-async changed from 3 to 8", 20)
    # 4 + 4: had only the first loop taken it, the sum would be 4 + 1.
    lines = wait_for_stats(s.line_port, lambda ls: "async_limit 8" in ls)
    assert "async_limit 8" in lines, lines
    assert s.stop() == 0, s.output()
