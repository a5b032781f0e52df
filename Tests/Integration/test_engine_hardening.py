"""Issue 10 and 11, server side: slow clients, the connection cap, fast failures on the wrong port."""

import socket
import time


def recv_all(sock, timeout):
    """Reads until the peer closes or `timeout` passes; returns (bytes, closed)."""
    sock.settimeout(0.2)
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def test_a_request_trickled_byte_by_byte_is_closed_by_the_idle_timeout(start_server):
    # The reproduction: (printf '99999:'; for i in $(seq 12); do sleep 1; printf a; done) | nc ...
    server = start_server("--netstring-port", "0", "--line-port", "0", "--idle-timeout", "2")
    s = socket.create_connection(("127.0.0.1", server.netstring_port))
    s.sendall(b"99999:")
    started, closed = time.monotonic(), False
    s.settimeout(0.5)
    while time.monotonic() - started < 8:
        try:
            s.sendall(b"a")
            if s.recv(1) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    elapsed = time.monotonic() - started
    assert closed and elapsed < 5, f"closed={closed} after {elapsed:.1f}s"


def test_the_request_timeout_closes_a_connection_whose_request_never_completes(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0", "--request-timeout", "1")
    s = socket.create_connection(("127.0.0.1", server.line_port))
    s.sendall(b"upper a\nupper b")
    data, closed = recv_all(s, 4)
    assert closed
    assert data == b"OK A\nERR request_timeout closing: the request was not complete 1s after it began\n"


def test_slow_clients_cannot_fill_the_connection_cap(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0", "--max-connections", "5")
    slow = []
    for _ in range(5):
        c = socket.create_connection(("127.0.0.1", server.netstring_port))
        c.sendall(b"99999:abc")
        slow.append(c)
    time.sleep(0.3)
    for attempt in range(8):
        c = socket.create_connection(("127.0.0.1", server.netstring_port))
        c.sendall(b"9:!upper.hi,")
        data, _ = recv_all(c, 1)
        c.close()
        assert data == b"3:+HI,", f"attempt {attempt}: {data!r}"
    for c in slow:
        c.close()


def test_a_netstring_sent_to_the_line_port_is_answered_at_once(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0")
    s = socket.create_connection(("127.0.0.1", server.line_port))
    started = time.monotonic()
    s.sendall(b"9:!upper.hi,")
    data, closed = recv_all(s, 2)
    assert closed and time.monotonic() - started < 2
    assert data.startswith(b"ERR bad_request this is the line port")


def test_an_over_long_extended_request_gets_too_large_then_the_close(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0", "--max-request-bytes", "100")
    s = socket.create_connection(("127.0.0.1", server.netstring_port))
    s.sendall(b"200:!upper." + b"x" * 50)
    data, closed = recv_all(s, 2)
    assert closed and data == b"47:-too_large the request is longer than 100 bytes,"
    o = socket.create_connection(("127.0.0.1", server.netstring_port))
    o.sendall(b"200:upper." + b"x" * 50)
    data, closed = recv_all(o, 2)
    assert closed and data == b"", "the original form is closed without a reply"


def test_the_line_port_announces_an_idle_close(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0", "--idle-timeout", "1")
    s = socket.create_connection(("127.0.0.1", server.line_port))
    data, closed = recv_all(s, 4)
    assert closed and data == b"ERR idle_timeout closing after 1s idle\n"
