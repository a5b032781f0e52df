"""Robustness of the built server against misbehaving clients (bounded in bytes and time)."""

import socket
import struct
import time

import xform_client


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_never_reads_its_replies_cannot_grow_server_memory(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0", "--max-request-bytes", "200000")
    before = rss_kib(server.proc.pid)
    payload = b"!cummingsify." + b"X" * 60_000
    request = str(len(payload)).encode() + b":" + payload + b","
    hog = socket.create_connection(("127.0.0.1", server.netstring_port))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.setblocking(False)
    sent, offset, deadline = 0, 0, time.monotonic() + 10
    stalled_since = None
    # Send up to 200 MB of requests without reading a byte; the server must stop reading from us,
    # so after the socket buffers fill, sending stalls for good (we give up after 2 s of stall).
    while sent < 200_000_000 and time.monotonic() < deadline:
        try:
            n = hog.send(request[offset:])
            sent += n
            offset = (offset + n) % len(request)
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 2:
                break
            time.sleep(0.01)
    grown = rss_kib(server.proc.pid) - before
    assert sent < 200_000_000, "the server kept reading from a client that reads nothing"
    assert grown < 64 * 1024, f"server memory grew by {grown} KiB"
    # Other clients are still served while the hog is stuck.
    assert xform_client.xform_original("upper", "others fine", port=server.netstring_port) == "OTHERS FINE"
    hog.close()


def test_clients_vanishing_mid_request_or_mid_reply_do_not_affect_others(start_server):
    server = start_server("--netstring-port", "0", "--line-port", "0")
    port = server.netstring_port
    with xform_client.NetstringClient(port=port) as steady:
        for i in range(20):
            # Half a request, then a reset.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"30:!cummingsify.HALF")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            # A slow request, then gone before the reply.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"18:!slowcummingsify.X,")
            s.close()
            # A big reply, abandoned part-way.
            s = socket.create_connection(("127.0.0.1", port))
            body = b"!upper." + b"y" * 90_000
            s.sendall(str(len(body)).encode() + b":" + body + b",")
            s.recv(100)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            assert steady.xform("reverse", f"round {i}") == f"round {i}"[::-1]
    assert server.proc.poll() is None, server.output()
