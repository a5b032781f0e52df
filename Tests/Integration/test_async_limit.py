"""--max-concurrent-async: the line port's stats show the queue, SIGHUP resizes it from --config."""

import signal
import socket
import time


def line_stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"stats\n")
        buf = b""
        while not buf.endswith(b"\n.\n"):
            chunk = s.recv(65536)
            assert chunk, "closed before the end of the stats block: %r" % buf
            buf += chunk
    return dict(l.split(" ", 1) for l in buf.decode().splitlines() if l.startswith("async_"))


def wait_for_limit(s, want, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        got = line_stats(s.line_port)
        if got.get("async_limit") == want or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_stats_show_the_async_queue_and_sighup_resizes_it_from_the_config(tmp_path, start_server):
    config = tmp_path / "xform.conf"
    config.write_text("max-concurrent-async = 3\n")
    s = start_server("--netstring-port", "0", "--line-port", "0", "--config", str(config))
    assert line_stats(s.line_port) == {"async_pending": "0", "async_underway": "0", "async_limit": "3"}

    config.write_text("max-concurrent-async = 7\n")
    s.signal(signal.SIGHUP)
    s.wait_for_line(r"max-concurrent-async changed from 3 to 7", 20)
    assert wait_for_limit(s, "7")["async_limit"] == "7"

    config.write_text("max-concurrent-async = -1\n")
    s.signal(signal.SIGHUP)
    s.wait_for_line(r"could not re-read the configuration \(keeping max-concurrent-async 7\)", 20)
    assert line_stats(s.line_port)["async_limit"] == "7"
    assert s.proc.poll() is None
    assert s.stop() == 0


def test_the_default_limit_is_twice_the_thread_pool(start_server):
    import os
    s = start_server("--netstring-port", "0", "--line-port", "0")
    assert line_stats(s.line_port)["async_limit"] == str(2 * max(2, os.cpu_count()))
    assert s.stop() == 0


def timed_slow_batch(port, n):
    payload = b"".join(b"%d:!slowcummingsify.X%d," % (len(b"!slowcummingsify.X%d" % i), i) for i in range(n))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        started = time.monotonic()
        s.sendall(payload)
        buf = b""
        while buf.count(b",") < n:
            chunk = s.recv(65536)
            assert chunk, "closed early: %r" % buf
            buf += chunk
        return time.monotonic() - started, buf


def test_a_limit_of_one_runs_asynchronous_transforms_one_after_another(start_server):
    bounded = start_server("--netstring-port", "0", "--line-port", "0", "--max-concurrent-async", "1")
    took, replies = timed_slow_batch(bounded.netstring_port, 3)
    assert replies == b"3:+x0,3:+x1,3:+x2,"
    assert took >= 0.29, "three 100 ms jobs, one at a time: %.3f s" % took
    unbounded = start_server("--netstring-port", "0", "--line-port", "0", "--max-concurrent-async", "0")
    took, replies = timed_slow_batch(unbounded.netstring_port, 3)
    assert replies == b"3:+x0,3:+x1,3:+x2,"
    assert took < 0.29, "0 is unbounded: the three run together: %.3f s" % took
    assert bounded.stop() == 0 and unbounded.stop() == 0
