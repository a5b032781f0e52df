#!/usr/bin/env python3
"""The Twisted Introduction's transform server (server 1.0 style), for interop tests.

It speaks only the original protocol: one netstring ``name.poem`` in, one
netstring out, then the server closes; any failure (no ``.``, no such
transform, the transform raising) closes the connection without a reply.
Only methods named ``xform_*`` on the factory can be reached. The interop
tests run the xform CLI and the Swift client against it, so the client's
original-protocol fallback is checked against the real thing.

Usage: twisted_server.py [PORT]    (0 or nothing: any free port)
Prints "Serving transforms on 127.0.0.1:PORT" once listening.
"""

import sys

from twisted.internet import reactor
from twisted.internet.protocol import ServerFactory
from twisted.protocols.basic import NetstringReceiver


class TransformService:
    def cummingsify(self, poem):
        return poem.lower()


class TransformProtocol(NetstringReceiver):
    def stringReceived(self, request):
        if b"." not in request:  # bad request
            self.transport.loseConnection()
            return
        try:
            xform_name, poem = request.decode("utf8").split(".", 1)
        except UnicodeDecodeError:
            self.transport.loseConnection()
            return
        self.xformRequestReceived(xform_name, poem)

    def xformRequestReceived(self, xform_name, poem):
        new_poem = self.factory.transform(xform_name, poem)
        if new_poem is not None:
            self.sendString(new_poem.encode("utf8"))
        self.transport.loseConnection()


class TransformFactory(ServerFactory):
    protocol = TransformProtocol

    def __init__(self, service):
        self.service = service

    def transform(self, xform_name, poem):
        thunk = getattr(self, "xform_%s" % (xform_name,), None)
        if thunk is None:  # no such transform
            return None
        try:
            return thunk(poem)
        except Exception:
            return None  # transform failed

    def xform_cummingsify(self, poem):
        return self.service.cummingsify(poem)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    factory = TransformFactory(TransformService())
    listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
    print("Serving transforms on 127.0.0.1:%d" % listening.getHost().port, flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
