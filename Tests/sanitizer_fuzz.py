#!/usr/bin/env python3
"""A bounded random-request pass against a running transform-server (for Tests/sanitizers.sh).

Usage: sanitizer_fuzz.py NETSTRING_PORT LINE_PORT [REQUESTS] [SECONDS]

Sends REQUESTS (default 3000) requests, at most SECONDS (default 120) in all, over many short
connections to both ports: valid requests of every transform with random Unicode text, invalid
UTF-8, unknown and malformed names, truncated and oversized netstrings, garbage, pipelined
batches, clients that vanish mid-request. Replies are read with a timeout and not checked (the
sanitizers and the server's survival are what is checked). Exits 1 if the server stops
answering a plain request afterwards.
"""

import random
import socket
import sys
import time

NAMES = [b"cummingsify", b"upper", b"title", b"reverse", b"rot13", b"wordcount", b"slowcummingsify",
         b"nosuch", b"!__init__", b"", b"UPPER", b"up.per"]
PIECES = ["a", "Z", " ", "\n", "\r\n", "\\", "Σ", "ß", "İ", "ǅ", "é", "\u0301", "🇫🇷", "👩\u200d👩",
          "\u1100\u1161\u11a8", "\ufffd", ".", ",", ":", "0"]


def text(rng, n):
    return "".join(rng.choice(PIECES) for _ in range(n)).encode()


def netstring(b):
    return str(len(b)).encode() + b":" + b + b","


def one_netstring_case(rng):
    kind = rng.randrange(8)
    body = text(rng, rng.choice([0, 1, 5, 50, 500, 5000]))
    name = rng.choice(NAMES)
    if kind == 0:
        return netstring(name + b"." + body)
    if kind == 1:
        return netstring(b"!" + name + b"." + body)
    if kind == 2:
        return b"".join(netstring(b"!" + rng.choice(NAMES) + b"." + text(rng, 20)) for _ in range(rng.randrange(1, 20)))
    if kind == 3:
        return netstring(b"!upper." + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 50))))
    if kind == 4:
        return netstring(name + b"." + body)[: rng.randrange(1, 20)]  # truncated
    if kind == 5:
        return str(rng.choice([99999, 100000, 10**12, 10**40])).encode() + b":" + body[:100]
    if kind == 6:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    return b"?list,5:?list," + netstring(b"!wordcount." + body)


def one_line_case(rng):
    kind = rng.randrange(6)
    body = text(rng, rng.choice([0, 1, 5, 50, 500])).replace(b"\n", b"\\n").replace(b"\r", b"")
    name = rng.choice(NAMES)
    if kind == 0:
        return name + b" " + body + b"\n"
    if kind == 1:
        return name + b"\n" + b"\n".join(text(rng, 10).replace(b"\n", b"") for _ in range(3)) + b"\n.\n"
    if kind == 2:
        return rng.choice([b"help\n", b"list\n", b"stats\n", b"quit\n", b"\r\n"])
    if kind == 3:
        return b"upper " + b"x" * rng.choice([100, 20000, 70000]) + b"\n"
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    return b"upper bad\\escape\n"


def exchange(port, payload, rng):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.settimeout(2)
            c.sendall(payload)
            if rng.random() < 0.1:
                return  # vanish mid-request
            c.shutdown(socket.SHUT_WR)  # half-close: the server answers what it read, then closes
            end = time.monotonic() + 2
            while time.monotonic() < end:
                if not c.recv(65536):
                    break
    except OSError:
        pass


def main():
    ns_port, line_port = int(sys.argv[1]), int(sys.argv[2])
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    rng = random.Random(10)
    deadline = time.monotonic() + seconds
    sent = 0
    while sent < requests and time.monotonic() < deadline:
        if rng.random() < 0.6:
            exchange(ns_port, one_netstring_case(rng), rng)
        else:
            exchange(line_port, one_line_case(rng), rng)
        sent += 1
    with socket.create_connection(("127.0.0.1", ns_port), timeout=10) as c:
        c.settimeout(30)
        c.sendall(b"27:cummingsify.HERE IS MY POEM,")
        reply = c.recv(100)
    print(f"sanitizer fuzz: {sent} requests sent; final reply {reply!r}")
    return 0 if reply == b"15:here is my poem," else 1


if __name__ == "__main__":
    sys.exit(main())
