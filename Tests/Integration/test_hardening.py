"""Issue 10 §4 and §5, issue 11's failed rotation: log floods, rotation bursts, listener drain.

Every process is started through the fixtures (stopped by PID); every loop is bounded.
"""

import os
import re
import signal
import socket
import time

from conftest import loop_count
from test_daemon import file_server, ports_in, read, wait_until


def request(port, payload=b"27:cummingsify.HERE IS MY POEM,", timeout=10.0):
    """One original-form request; returns (reply bytes, seconds taken)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(payload)
        chunks = []
        while True:
            b = c.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks), time.monotonic() - start


def test_refused_connections_are_summarised_not_logged_one_by_one(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--max-connections", "1")
    holder = socket.create_connection(("127.0.0.1", s.netstring_port), timeout=10)
    try:
        # The holder completes a request, so it cannot be evicted to make room (issue 10 §1).
        holder.sendall(b"8:!upper.a,")
        assert holder.recv(16) == b"2:+A,"
        for _ in range(600):
            with socket.create_connection(("127.0.0.1", s.netstring_port), timeout=10) as c:
                c.settimeout(10)
                assert c.recv(16) == b""  # refused: closed without a reply
    finally:
        holder.close()
    assert s.stop() == 0
    out = s.output()
    # The first refusal is logged in full, the other 599 in one summary line (written at the
    # latest when the port stops): per event loop, each with its own log summary.
    full = out.count("refusing netstring connection")
    assert 1 <= full <= loop_count(), out
    summarised = [int(n) for n in re.findall(r"refused (\d+) netstring connections in the last 10 s", out)]
    assert len(summarised) <= loop_count() and sum(summarised) == 600 - full, out
    assert len(out.splitlines()) < 40, out


def test_a_burst_of_sigusr1_neither_stalls_requests_nor_piles_up_files(tmp_path, start_server):
    s, log = file_server(start_server, tmp_path, "--log-max-files", "3")
    port = ports_in(read(log))["netstring"]
    slowest = 0.0
    deadline = time.monotonic() + 1.0
    sent = 0
    while sent < 1000 and time.monotonic() < deadline + 1.0:
        for _ in range(50):
            s.signal(signal.SIGUSR1)
            sent += 1
        reply, took = request(port)
        assert reply == b"15:here is my poem,"
        slowest = max(slowest, took)
    assert sent == 1000
    wait_until(lambda: "merged into this rotation" in read(log), 20, "the merged rotation")
    assert s.proc.poll() is None
    assert slowest < 0.5, f"a request took {slowest:.3f} s during the SIGUSR1 burst"
    rotated = sorted(p for p in os.listdir(tmp_path) if p.startswith("ts.log."))
    # One rotation a second at most: a few files, never one per signal, and never beyond the maximum.
    assert 1 <= len(rotated) <= 3 and set(rotated) <= {"ts.log.1", "ts.log.2", "ts.log.3"}, rotated
    assert s.stop() == 0


def test_a_failed_rotation_is_reported_in_the_log_and_logging_goes_on(tmp_path, start_server):
    s, log = file_server(start_server, tmp_path)
    os.mkdir(f"{log}.1")  # renaming the live file onto a directory fails (EISDIR)
    s.signal(signal.SIGUSR1)
    wait_until(lambda: "could not rotate the log file" in read(log), 20, "the rotation failure in the log")
    text = read(log)
    assert "log file rotated" not in text
    assert "Is a directory" in text
    s.signal(signal.SIGUSR2)  # logging goes on, in the same file
    wait_until(lambda: "stats: uptime_seconds" in read(log), 20, "the stats report after the failure")
    assert s.stop() == 0
