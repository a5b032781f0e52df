"""The HTTP port (protocol-spec/http.md) driven by real clients: curl, Python's http.client,
raw sockets for pipelining and malformed input, and promtool for /metrics."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import run

CURL = shutil.which("curl")
PROMTOOL = shutil.which("promtool")


@pytest.fixture
def http_server(start_server):
    return start_server("--netstring-port", "0", "--line-port", "0", "--http-port", "0")


def request(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def raw_exchange(port, data, timeout=10):
    """Sends `data`, then reads until the server closes; returns everything read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def split_responses(data):
    """Splits concatenated HTTP/1.1 responses (all with Content-Length) into (status, headers, body)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        n = int(headers["content-length"])
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


@pytest.mark.skipif(CURL is None, reason="curl is not installed (Tests/run-all.sh installs it)")
def test_curl_posts_a_poem_file_and_lists_the_transforms(http_server, tmp_path):
    poem = tmp_path / "poem.txt"
    poem.write_bytes("HERE IS MY POEM\nÉTÉ À PARIS\n".encode())
    port = http_server.http_port
    out = run([CURL, "-sS", "--fail-with-body", "--data-binary", f"@{poem}", f"127.0.0.1:{port}/transform/cummingsify"])
    assert out.returncode == 0, out.stderr
    assert out.stdout == "here is my poem\nété à paris\n".encode()
    out = run([CURL, "-sS", "-i", f"127.0.0.1:{port}/transforms"])
    assert out.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    names = [l.split(b"\t")[0] for l in out.stdout.split(b"\r\n\r\n", 1)[1].splitlines()]
    assert b"cummingsify" in names and b"upper" in names and names == sorted(names)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_sees_typed_errors_as_status_and_header(http_server):
    port = http_server.http_port
    out = run([CURL, "-sS", "-i", "--data-binary", "x", f"127.0.0.1:{port}/transform/nope"])
    assert out.stdout.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"\r\nX-Xform-Error: unknown_transform\r\n" in out.stdout
    out = run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"127.0.0.1:{port}/healthz"])
    assert out.stdout == b"200"


def test_http_client_keeps_one_connection_for_many_requests(http_server):
    port = http_server.http_port
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.connect()
    first = c.sock
    for i in range(20):
        c.request("POST", "/transform/upper", body=f"hello {i}".encode())
        r = c.getresponse()
        assert (r.status, r.getheader("Content-Type"), r.read()) == (200, "text/plain; charset=utf-8", f"HELLO {i}".encode())
        assert c.sock is first, "the server closed a keep-alive connection"
    c.request("GET", "/readyz")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"ready\n")
    c.close()


def test_pipelined_requests_are_answered_in_order_then_close(http_server):
    port = http_server.http_port
    big = "é" * 40000  # non-ASCII and large enough to take the slower path
    reqs = (
        b"POST /transform/upper HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        + b"POST /transform/upper HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big.encode()) + big.encode()
        + b"POST /transform/nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
        + b"POST /transform/reverse HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\nstressed"
    )
    responses = split_responses(raw_exchange(port, reqs))
    assert [r[0] for r in responses] == [200, 200, 200, 404, 200]
    assert responses[0][2] == b"ABC"
    assert responses[2][2] == big.upper().encode()
    assert responses[3][1]["x-xform-error"] == "unknown_transform"
    assert responses[4][2] == b"desserts"
    assert responses[4][1]["connection"] == "close"


def test_http_1_0_closes_unless_asked_to_keep_alive(http_server):
    port = http_server.http_port
    out = raw_exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert split_responses(out)[0][:1] == (200,)
    assert b"Connection: close" in out


@pytest.mark.parametrize("data, status", [
    (b"POST /transform/upper HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 411),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400),
    (b"27:cummingsify.HERE IS MY POEM,\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Filler: " + b"f" * 9000 + b"\r\n\r\n", 431),
    (b"POST /transform/upper HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", 413),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
])
def test_malformed_requests_get_their_status_then_close(http_server, data, status):
    out = raw_exchange(http_server.http_port, data)
    responses = split_responses(out)
    assert len(responses) == 1, out
    assert responses[0][0] == status
    assert responses[0][1]["connection"] == "close"


def test_request_errors_map_to_statuses(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--http-port", "0", "--max-request-bytes", "100")
    port = s.http_port
    status, headers, body = request(port, "POST", "/transform/upper", body=b"\xff\xfe")
    assert (status, headers["x-xform-error"]) == (400, "invalid_utf8")
    status, headers, _ = request(port, "POST", "/transform/upper", body=b"x" * 101)
    assert (status, headers["x-xform-error"]) == (413, "too_large")
    status, headers, _ = request(port, "GET", "/transform/upper")
    assert status == 405 and "POST" in headers["allow"]
    status, headers, _ = request(port, "GET", "/nothing-here")
    assert (status, headers["x-xform-error"]) == (404, "not_found")
    status, headers, body = request(port, "HEAD", "/healthz")
    assert (status, body, headers["content-length"]) == (200, b"", "3")


def counter(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_transform_port_and_outcome_and_pass_promtool(http_server):
    port = http_server.http_port
    for _ in range(3):
        assert request(port, "POST", "/transform/upper", body=b"abc")[0] == 200
    assert request(port, "POST", "/transform/nope", body=b"abc")[0] == 404
    with socket.create_connection(("127.0.0.1", http_server.netstring_port), timeout=10) as s:
        s.sendall(b"10:!upper.abc,")
        assert s.recv(100) == b"4:+ABC,"
    # With several loops (XFORM_TEST_REACTORS) another loop's counters reach /metrics up to
    # 250 ms later: read until all four requests and all five connections are in.
    deadline = time.monotonic() + 10
    while True:
        status, headers, body = request(port, "GET", "/metrics")
        text = body.decode()
        if (counter(text, "xform_request_duration_seconds_count", transform="upper") >= 4
                and counter(text, "xform_connections_total", port="http") >= 5) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 200 and headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert counter(text, "xform_requests_total", transform="upper", port="http", outcome="ok") == 3
    assert counter(text, "xform_requests_total", transform="upper", port="netstring", outcome="ok") == 1
    assert counter(text, "xform_request_duration_seconds_count", transform="upper") == 4
    assert counter(text, "xform_connections_total", port="http") >= 5
    assert counter(text, "xform_connections_open", port="http") >= 1
    # Bytes by port: "10:!upper.abc," in and "4:+ABC," out on the one netstring connection.
    assert counter(text, "xform_received_bytes_total", port="netstring") == 14
    assert counter(text, "xform_sent_bytes_total", port="netstring") == 7
    assert counter(text, "xform_received_bytes_total", port="http") >= 4 * len(b"abc")
    assert counter(text, "xform_sent_bytes_total", port="http") >= 3 * len(b"ABC")
    assert counter(text, "xform_received_bytes_total", port="line") == 0
    assert re.search(r"^process_resident_memory_bytes \d+", text, re.M)
    assert re.search(r"^process_open_fds \d+", text, re.M)
    assert "\nxform_ready 1\n" in text
    if PROMTOOL:
        out = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
        assert out.returncode == 0 and out.stdout + out.stderr == b"", out.stdout + out.stderr


def test_readyz_turns_503_at_the_first_moment_of_a_drain(start_server):
    s = start_server("--netstring-port", "0", "--line-port", "0", "--http-port", "0", "--drain-delay", "2s")
    port = s.http_port
    assert request(port, "GET", "/readyz")[0] == 200
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    status, headers, body = request(port, "GET", "/readyz")
    assert (status, headers["x-xform-error"], body) == (503, "shutting_down", b"draining\n")
    assert request(port, "GET", "/healthz")[0] == 200
    # Still serving during the delay: a transform works.
    assert request(port, "POST", "/transform/upper", body=b"ok")[2] == b"OK"
    assert s.proc.wait(20) == 0
    assert time.monotonic() - t0 >= 1.9
