#!/usr/bin/env python3
"""The Twisted Introduction's transform client (client 6.0 style), for interop tests.

It is the book's ``TransformClientProtocol``/``TransformProxy`` on Twisted's
``NetstringReceiver``: it sends ``name.text`` as one netstring on connect,
prints the reply netstring it gets, and closes. It knows nothing of the
extended form, so it checks that transform-server still speaks the original
protocol byte for byte.

Usage: twisted_client.py PORT NAME [TEXT...]   (TEXT defaults to standard input)
Prints the transformed text; exits 1 if the server closed without a reply.
"""

import sys

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory
from twisted.protocols.basic import NetstringReceiver


class TransformClientProtocol(NetstringReceiver):
    def connectionMade(self):
        self.sendRequest(self.factory.xform_name, self.factory.poem)

    def sendRequest(self, xform_name, poem):
        self.sendString((xform_name + "." + poem).encode("utf8"))

    def stringReceived(self, s):
        self.transport.loseConnection()
        self.poemReceived(s.decode("utf8"))

    def poemReceived(self, poem):
        self.factory.handlePoem(poem)


class TransformClientFactory(ClientFactory):
    protocol = TransformClientProtocol

    def __init__(self, xform_name, poem):
        self.xform_name = xform_name
        self.poem = poem
        self.deferred = defer.Deferred()

    def handlePoem(self, poem):
        d, self.deferred = self.deferred, None
        d.callback(poem)

    def clientConnectionLost(self, _, reason):
        if self.deferred is not None:
            d, self.deferred = self.deferred, None
            d.errback(reason)

    clientConnectionFailed = clientConnectionLost


class TransformProxy:
    """I proxy requests to a transformation service."""

    def __init__(self, host, port):
        self.host = host
        self.port = port

    def xform(self, xform_name, poem):
        factory = TransformClientFactory(xform_name, poem)
        reactor.connectTCP(self.host, self.port, factory)
        return factory.deferred


def main():
    port, name = int(sys.argv[1]), sys.argv[2]
    poem = " ".join(sys.argv[3:]) if len(sys.argv) > 3 else sys.stdin.read()
    status = {"code": 0}

    def got(poem):
        sys.stdout.write(poem)

    def failed(err):
        sys.stderr.write("transform failed: %s\n" % (err.getErrorMessage(),))
        status["code"] = 1

    d = TransformProxy("127.0.0.1", port).xform(name, poem)
    d.addCallbacks(got, failed)
    d.addBoth(lambda _: reactor.stop())
    def give_up():
        status["code"] = 2
        sys.stderr.write("no reply within 30 s\n")
        reactor.stop()

    reactor.callLater(30, give_up)  # never hang a test run
    reactor.run()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
