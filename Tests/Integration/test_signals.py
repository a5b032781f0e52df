"""transform-server and signals: graceful stop with requests in flight, the forced second
signal, the shutdown deadline, harmless signals under load, and SIGUSR2 statistics.

Only 127.0.0.1; every wait and loop is bounded; every process started here is stopped here.
"""

import re
import select
import signal
import socket
import threading
import time

import pytest

import xform_client
from xform_client import netstring


def read_netstring(sock, buf):
    """One netstring payload from ``sock`` (bytes), using and updating ``buf``."""
    while True:
        colon = buf.find(b":")
        if colon > 0:
            n = int(buf[:colon])
            if len(buf) >= colon + 1 + n + 1:
                payload = bytes(buf[colon + 1:colon + 1 + n])
                assert buf[colon + 1 + n:colon + 2 + n] == b","
                del buf[:colon + 2 + n]
                return payload
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete reply; buffered {bytes(buf[:40])!r}")
        buf.extend(chunk)


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    return s


def test_sigterm_during_100_in_flight_requests_answers_them_all_then_exits_0(tmp_path, start_server):
    pidfile = tmp_path / "ts.pid"
    s = start_server("--netstring-port", "0", "--line-port", "0", "--pidfile", str(pidfile))
    socks = [connect(s.netstring_port) for _ in range(100)]
    bufs = [bytearray() for _ in socks]
    try:
        # A round trip on each connection first, so the server has accepted all of them: the
        # slow requests below then reach sockets it already watches, before the signal.
        for i, c in enumerate(socks):
            c.sendall(netstring(f"!upper.c{i}".encode()))
        for i, c in enumerate(socks):
            assert read_netstring(c, bufs[i]) == f"+C{i}".encode()
        # slowcummingsify answers 100 ms later: all 100 are in flight when SIGTERM arrives.
        for i, c in enumerate(socks):
            c.sendall(netstring(f"!slowcummingsify.POEM NUMBER {i}".encode()))
        answered_early, _, _ = select.select(socks, [], [], 0)
        s.signal(signal.SIGTERM)
        # (Sending takes a few ms, the answers 100 ms: normally none is answered yet.)
        assert len(answered_early) < len(socks), "every request finished before SIGTERM; nothing was in flight"
        for i, c in enumerate(socks):
            assert read_netstring(c, bufs[i]) == f"+poem number {i}".encode()
        # Then the server closes each drained connection.
        for i, c in enumerate(socks):
            assert c.recv(1) == b"", f"connection {i} stayed open"
    finally:
        for c in socks:
            c.close()
    assert s.proc.wait(30) == 0, s.output()
    s.reader.join(5)  # the last lines ("stopped") may still be in the pipe
    assert not pidfile.exists()
    out = s.output()
    assert "received SIGTERM; stopping gracefully" in out
    # One drain line per event loop (XFORM_TEST_REACTORS): together they held all 100.
    drained = [int(n) for n in re.findall(r"shutting down: draining (\d+) connection\(s\)", out)]
    assert sum(drained) == 100, out
    assert out.rstrip().endswith("stopped")


def test_sigint_stops_gracefully_too(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0")
    assert s.stop(signal.SIGINT) == 0
    assert "received SIGINT; stopping gracefully" in s.output()


def stuck_reply_client(port, size=16 * 1024 * 1024):
    """A connection whose 16 MiB reply cannot be delivered: the client reads one chunk, then
    stops reading, so the drain cannot finish."""
    c = connect(port, rcvbuf=8192)
    c.sendall(netstring(b"!upper." + b"a" * size))
    assert c.recv(16)  # the reply has started: the request is no longer just buffered
    return c


def test_second_sigterm_forces_the_exit_at_once(tmp_path, start_server):
    pidfile = tmp_path / "ts.pid"
    s = start_server("--netstring-port", "0", "--line-port", "0", "--max-request-bytes", "20000000",
                     "--shutdown-timeout", "60s", "--pidfile", str(pidfile))
    c = stuck_reply_client(s.netstring_port)
    try:
        s.signal(signal.SIGTERM)
        s.wait_for_line(r"shutting down: draining 1 connection\(s\)", 30)
        assert s.proc.poll() is None  # still draining: the reply cannot be sent
        started = time.monotonic()
        s.signal(signal.SIGTERM)
        assert s.proc.wait(30) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 10
    finally:
        c.close()
    s.reader.join(5)
    assert "received SIGTERM again while stopping; exiting at once" in s.output()
    assert not pidfile.exists()


def test_shutdown_deadline_closes_what_is_left_and_exits_0(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--max-request-bytes", "20000000",
                     "--shutdown-timeout", "500ms")
    c = stuck_reply_client(s.netstring_port)
    try:
        started = time.monotonic()
        s.signal(signal.SIGTERM)
        assert s.proc.wait(30) == 0
        assert time.monotonic() - started >= 0.4
    finally:
        c.close()
    s.reader.join(5)
    assert "shutdown deadline (500ms) expired with 1 connection(s) still open; closing them" in s.output()


def test_harmless_signals_during_load_change_nothing(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0")
    results = {}
    errors = []

    def worker(k):
        try:
            with xform_client.NetstringClient(port=s.netstring_port, timeout=30) as c:
                for i in range(30):
                    name = "slowcummingsify" if i % 10 == 0 else "upper"
                    results[(k, i)] = (name, c.xform(name, f"Load {k} {i}"))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    rounds = 0
    while any(t.is_alive() for t in threads) and rounds < 500:
        for sig in (signal.SIGCHLD, signal.SIGWINCH, signal.SIGCONT):
            s.signal(sig)
        rounds += 1
        time.sleep(0.002)
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert rounds > 0
    assert len(results) == 300
    for (k, i), (name, reply) in results.items():
        assert reply == (f"load {k} {i}" if name == "slowcummingsify" else f"LOAD {k} {i}")
    assert s.proc.poll() is None
    assert xform_client.xform_original("upper", "still here", port=s.netstring_port) == "STILL HERE"
    assert s.stop() == 0


def test_sigusr2_logs_the_statistics(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0")
    with xform_client.NetstringClient(port=s.netstring_port) as c:
        assert c.xform("upper", "a") == "A"
        assert c.xform("upper", "b") == "B"
    # With several loops (XFORM_TEST_REACTORS) another loop's counters reach the report up to
    # 250 ms later: ask again until they have.
    for attempt in range(40):
        s.signal(signal.SIGUSR2)
        try:
            s.wait_for_line(r"stats: requests upper ok=2", 20 if attempt == 39 else 0.5)
            break
        except AssertionError:
            if attempt == 39:
                raise
    out = s.output()
    assert "stats: uptime_seconds" in out
    assert "stats: connections_total netstring 1" in out
    assert s.proc.poll() is None
    assert s.stop() == 0
