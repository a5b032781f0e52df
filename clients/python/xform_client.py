#!/usr/bin/env python3
"""A synchronous xform client using only the Python standard library.

It speaks both ports of transform-server (see protocol-spec/):

- the netstring port, in the extended form (keep-alive, typed errors) or, with
  ``original=True``, in the original one-request-per-connection form of the
  Twisted Introduction's server;
- the line port (single-line requests with escapes).

Usage as a program::

    xform_client.py [--host H] [--port P] [--line] [--original] NAME [TEXT]

TEXT defaults to standard input. The transformed text goes to standard output;
errors go to standard error with exit status 1.
"""

import argparse
import socket
import sys


class TransformError(Exception):
    """The server answered with a typed error (``code`` is e.g. ``unknown_transform``)."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ProtocolError(Exception):
    """The server's reply was malformed, or the connection closed before a reply."""


def _read_netstring(sock, buf, max_length=100_000_000):
    """Reads one netstring from ``sock``; ``buf`` is a bytearray of bytes already read."""
    while True:
        colon = buf.find(b":")
        if colon != -1:
            digits = bytes(buf[:colon])
            if not digits.isdigit() or (len(digits) > 1 and digits[0:1] == b"0"):
                raise ProtocolError(f"malformed netstring length {digits!r}")
            length = int(digits)
            if length > max_length:
                raise ProtocolError(f"reply of {length} bytes is too long")
            end = colon + 1 + length
            if len(buf) >= end + 1:
                if buf[end:end + 1] != b",":
                    raise ProtocolError("netstring is missing its ','")
                payload = bytes(buf[colon + 1:end])
                del buf[:end + 1]
                return payload
        elif len(buf) > 10:
            raise ProtocolError("malformed netstring length")
        chunk = sock.recv(65536)
        if not chunk:
            raise ProtocolError("connection closed before a complete reply")
        buf.extend(chunk)


def netstring(payload):
    """Frames ``payload`` (bytes) as a netstring."""
    return str(len(payload)).encode() + b":" + payload + b","


class NetstringClient:
    """A keep-alive client for the netstring port's extended form."""

    def __init__(self, host="127.0.0.1", port=10001, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = bytearray()

    def xform(self, name, text):
        """Returns ``text`` transformed by ``name``; raises TransformError or ProtocolError."""
        self.sock.sendall(netstring(b"!" + name.encode() + b"." + text.encode()))
        reply = _read_netstring(self.sock, self.buf)
        return _decode_extended(reply)

    def list(self):
        """Returns the names of the server's transforms."""
        self.sock.sendall(netstring(b"?list"))
        return _decode_extended(_read_netstring(self.sock, self.buf)).split("\n")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _decode_extended(reply):
    if reply[:1] == b"+":
        return reply[1:].decode("utf-8")
    if reply[:1] == b"-":
        code, _, message = reply[1:].decode("utf-8", "replace").partition(" ")
        raise TransformError(code, message)
    raise ProtocolError(f"reply starts with neither '+' nor '-': {reply[:20]!r}")


def xform_original(name, text, host="127.0.0.1", port=10001, timeout=10.0):
    """One request in the original form: the reply, then the server closes.

    A close without a reply (the original's only error signal) raises ProtocolError.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(netstring(name.encode() + b"." + text.encode()))
        return _read_netstring(sock, bytearray()).decode("utf-8")


def _escape(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _unescape(text):
    out, i = [], 0
    table = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class LineClient:
    """A keep-alive client for the line port (single-line requests)."""

    def __init__(self, host="127.0.0.1", port=10002, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def xform(self, name, text):
        """Returns ``text`` transformed by ``name``; raises TransformError or ProtocolError."""
        self.sock.sendall(name.encode() + b" " + _escape(text).encode() + b"\n")
        line = self.file.readline()
        if not line.endswith(b"\n"):
            raise ProtocolError("connection closed before a complete reply")
        line = line[:-1].decode("utf-8")
        if line.startswith("OK "):
            return _unescape(line[3:])
        if line.startswith("ERR "):
            code, _, message = line[4:].partition(" ")
            raise TransformError(code, message)
        raise ProtocolError(f"unexpected reply {line[:40]!r}")

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Transform text with an xform server.")
    parser.add_argument("name", help="the transform, e.g. cummingsify")
    parser.add_argument("text", nargs="?", help="the text (default: standard input)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--line", action="store_true", help="use the line port")
    parser.add_argument("--original", action="store_true",
                        help="use the original one-shot netstring form")
    args = parser.parse_args(argv)
    text = args.text if args.text is not None else sys.stdin.read()
    try:
        if args.line:
            with LineClient(args.host, args.port or 10002) as c:
                out = c.xform(args.name, text)
        elif args.original:
            out = xform_original(args.name, text, args.host, args.port or 10001)
        else:
            with NetstringClient(args.host, args.port or 10001) as c:
                out = c.xform(args.name, text)
    except (TransformError, ProtocolError, OSError) as e:
        print(f"xform_client: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
