"""transform-server --upstream: the caching proxy (issue 12) with real processes.

Every process is started by the fixtures (conftest.Server) and stopped by PID; every wait is
bounded.
"""

import signal
import socket
import struct
import threading
import time

import pytest

from test_robustness import rss_kib
from test_twisted_server_interop import twisted_server  # noqa: F401 - a fixture
import xform_client


def upstream_args(*servers):
    args = []
    for s in servers:
        args += ["--upstream", f"127.0.0.1:{s.netstring_port}"]
    return args


def start_proxy(start_server, *extra):
    """A proxy on ephemeral ports; waits until its first upstream list is known (or given)."""
    return start_server("--netstring-port", "0", "--line-port", "0", *extra)


def stats(port):
    """The line port's `stats` report as {key: value text}."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"stats\n")
        f = s.makefile("rb")
        assert f.readline() == b"OK\n"
        out = {}
        while True:
            line = f.readline().decode().rstrip("\n")
            if line == ".":
                return out
            key, _, value = line.partition(" ")
            out.setdefault(key, value)
            if key == "requests":
                out["requests " + value.split(" ")[0]] = value


def figure(port, name):
    return float(stats(port)[name])


def stats_with(port, key, timeout=10):
    """`stats(port)` once it has `key`: with several loops (XFORM_TEST_REACTORS), another
    loop's counters reach the report up to 250 ms after they change."""
    deadline = time.monotonic() + timeout
    seen = stats(port)
    while key not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = stats(port)
    return seen


def test_proxy_serves_both_protocols_and_caches(start_server):
    upstream = start_server("--netstring-port", "0", "--line-port", "0")
    proxy = start_proxy(start_server, *upstream_args(upstream))
    with xform_client.NetstringClient(port=proxy.netstring_port) as c:
        assert c.xform("cummingsify", "HERE IS MY POEM") == "here is my poem"
        assert c.xform("cummingsify", "HERE IS MY POEM") == "here is my poem"
        assert "slowcummingsify" in c.list()
        with pytest.raises(xform_client.TransformError) as e:
            c.xform("nosuch", "x")
        assert e.value.code == "unknown_transform"
    assert xform_client.xform_original("upper", "σίσυφος", port=proxy.netstring_port) == "ΣΊΣΥΦΟΣ"
    with xform_client.LineClient(port=proxy.line_port) as c:
        assert c.xform("reverse", "a\nb") == "b\na"
    assert figure(proxy.line_port, "cache_hits") >= 1
    assert figure(proxy.line_port, "cache_misses") >= 3
    # The upstream saw the cummingsify request once.
    seen = stats_with(upstream.line_port, "requests cummingsify")
    assert seen.get("requests cummingsify") == "cummingsify ok=1", sorted(seen.items())


def test_unreachable_upstream_gives_upstream_unavailable(start_server):
    upstream = start_server("--netstring-port", "0", "--line-port", "0")
    proxy = start_proxy(start_server, *upstream_args(upstream), "--upstream-transforms", "upper")
    assert upstream.stop() == 0
    outcomes = {}

    def extended():
        with xform_client.NetstringClient(port=proxy.netstring_port, timeout=30) as c:
            try:
                c.xform("upper", "x")
            except xform_client.TransformError as e:
                outcomes["extended"] = e.code

    def line():
        with xform_client.LineClient(port=proxy.line_port, timeout=30) as c:
            try:
                c.xform("upper", "y")
            except xform_client.TransformError as e:
                outcomes["line"] = e.code

    def original():
        try:
            xform_client.xform_original("upper", "z", port=proxy.netstring_port, timeout=30)
        except xform_client.ProtocolError:
            outcomes["original"] = "closed without a reply"

    # Each waits out the retries (about 5 s); run them side by side.
    threads = [threading.Thread(target=f) for f in (extended, line, original)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes == {"extended": "upstream_unavailable", "line": "upstream_unavailable",
                        "original": "closed without a reply"}
    assert figure(proxy.line_port, "upstream_0_failures") >= 10


def test_one_of_two_upstreams_sigkilled_under_load_fails_no_request(start_server):
    a = start_server("--netstring-port", "0", "--line-port", "0")
    b = start_server("--netstring-port", "0", "--line-port", "0")
    # No cache: every request goes upstream.
    proxy = start_proxy(start_server, *upstream_args(a, b), "--cache-bytes", "0")
    errors = []
    done = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + 30

    def client(n):
        try:
            with xform_client.NetstringClient(port=proxy.netstring_port, timeout=30) as c:
                for i in range(300):
                    text = f"CLIENT {n} REQUEST {i}"
                    assert c.xform("cummingsify", text) == text.lower()
                    with lock:
                        done[0] += 1
                    if time.monotonic() > stop_at:
                        return
        except Exception as e:  # noqa: BLE001 - any failure is the test's failure
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while done[0] < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    a.stop(signal.SIGKILL)
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert done[0] == 8 * 300
    assert figure(b.line_port, "uptime_seconds") >= 0
    assert stats_with(b.line_port, "requests cummingsify")["requests cummingsify"].startswith("cummingsify ok=")


def test_proxy_in_front_of_the_books_twisted_server(start_server, twisted_server):
    proxy = start_proxy(start_server, "--upstream", f"127.0.0.1:{twisted_server}",
                        "--upstream-transforms", "cummingsify")
    with xform_client.NetstringClient(port=proxy.netstring_port) as c:
        assert c.xform("cummingsify", "HERE IS MY POEM") == "here is my poem"
        assert c.list() == ["cummingsify"]
        with pytest.raises(xform_client.TransformError) as e:
            c.xform("upper", "x")
        assert e.value.code == "unknown_transform"
    assert xform_client.xform_original("cummingsify", "ΣΊΣΥΦΟΣ", port=proxy.netstring_port) == "σίσυφος"
    with xform_client.LineClient(port=proxy.line_port) as c:
        assert c.xform("cummingsify", "HERE IS MY POEM") == "here is my poem"
    assert figure(proxy.line_port, "cache_hits") >= 1


def hang_up_after(port, text, delay):
    """Sends one extended slowcummingsify request and resets the connection after `delay`."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(xform_client.netstring(b"!slowcummingsify." + text.encode()))
    time.sleep(delay)
    # An abortive close (RST): the client is gone. (An orderly close is a half-close, after
    # which the protocol still owes the reply.)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_clients_hanging_up_cancel_the_upstream_work(start_server):
    upstream = start_server("--netstring-port", "0", "--line-port", "0")
    proxy = start_proxy(start_server, *upstream_args(upstream), "--log-level", "debug")
    # Warm up (first list, one connection), then take the base figures.
    with xform_client.NetstringClient(port=proxy.netstring_port) as c:
        assert c.xform("cummingsify", "WARM") == "warm"
    base_rss = rss_kib(proxy.proc.pid)
    threads = [threading.Thread(target=hang_up_after, args=(proxy.netstring_port, f"POEM {i}", 0.02))
               for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    time.sleep(0.5)  # well past slowcummingsify's 100 ms
    assert figure(proxy.line_port, "upstream_cancellations") == 50
    assert figure(proxy.line_port, "upstream_in_flight") == 0
    # The upstream never finished the work: no slowcummingsify reply counted.
    assert "requests slowcummingsify" not in stats(upstream.line_port)
    proxy.wait_for_line(r"Canceling slowcummingsify upstream call\.")
    assert rss_kib(proxy.proc.pid) <= base_rss + 2048


def test_cache_memory_stays_within_cache_bytes(start_server):
    upstream = start_server("--netstring-port", "0", "--line-port", "0")
    cache = 2 * 1024 * 1024
    proxy = start_proxy(start_server, *upstream_args(upstream), "--cache-bytes", str(cache))
    size = 50_000
    with xform_client.NetstringClient(port=proxy.netstring_port, timeout=30) as c:
        assert c.xform("upper", "warm") == "WARM"
        base_rss = rss_kib(proxy.proc.pid)
        total = 0
        i = 0
        while total < 10 * cache:
            text = (f"{i:08d}" * (size // 8))[:size]
            assert c.xform("upper", text) == text
            total += size
            i += 1
    held = figure(proxy.line_port, "cache_bytes")
    assert held <= cache
    assert figure(proxy.line_port, "cache_evictions") > 0
    # The bound plus a fixed overhead (buffers, allocator slack): 8 MiB.
    assert rss_kib(proxy.proc.pid) - base_rss <= cache // 1024 + 8 * 1024
