import Testing
import XformClient
import XformCore
import XformTesting

@Suite("TransformProxy in memory")
struct TransformProxyTests {
    @Test("A call sends the extended form and fires with the server's transformed text")
    func extendedCall() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "hello")
        expectNoResult(d)
        let pump = h.serveNext()
        #expect(successResult(of: d) == "HELLO")
        #expect(pump.clientTransport.writtenText == ns("!upper.hello"))
        #expect(h.reactor.connectAttempts.count == 1)
    }

    @Test("Concurrent calls are pipelined on one kept-alive connection, and later calls reuse it")
    func pipelinedAndReused() {
        let h = ProxyHarness()
        let calls = ["upper", "reverse", "upper"].enumerated().map { h.proxy.xform($1, "ab\($0)") }
        let pump = h.serveNext()
        #expect(calls.map { successResult(of: $0) } == ["AB0", "1ba", "AB2"])
        #expect(!pump.isClosed)
        let later = h.proxy.xform("upper", "again")
        pump.flush()
        #expect(successResult(of: later) == "AGAIN")
        #expect(h.reactor.connectAttempts.count == 1)
        #expect(h.proxy.connectionCount(to: h.proxy.endpoints[0]) == 1)
    }

    @Test("Past the pipeline depth a second connection is opened")
    func secondConnection() {
        let h = ProxyHarness { $0.pipelineDepth = 2 }
        let calls = (0..<3).map { h.proxy.xform("upper", "x\($0)") }
        #expect(h.pending.count == 2)
        h.serveNext()
        h.serveNext()
        #expect(calls.map { successResult(of: $0) } == ["X0", "X1", "X2"])
    }

    @Test("An unknown transform fails at once with a typed error, after exactly one request")
    func unknownTransform() {
        let h = ProxyHarness()
        let d = h.proxy.xform("nosuch", "text")
        let pump = h.serveNext()
        let e = failureResult(of: d, as: TransformProxyError.self)
        guard case .unknownTransform(let name, _)? = e else {
            Issue.record("expected unknownTransform, got \(String(describing: e))")
            return
        }
        #expect(name == "nosuch")
        h.advance(.seconds(60))
        #expect(h.reactor.connectAttempts.count == 1)
        #expect(pump.clientTransport.writtenText == ns("!nosuch.text"))
        #expect(h.retries.isEmpty)
    }

    @Test("Definitive server errors map to their cases and are not retried")
    func definitiveErrors() {
        let cases: [(String, TransformProxyError)] = [
            ("-bad_request no dot", .badRequest("no dot")),
            ("-too_large big", .tooLarge("big")),
            ("-invalid_utf8 bad", .invalidUTF8("bad")),
            ("-transform_failed boom", .transformFailed("boom")),
            ("-weird_code hm", .transformFailed("weird_code hm")),
        ]
        for (reply, expected) in cases {
            let h = ProxyHarness()
            let d = h.proxy.xform("upper", "x")
            h.pending[0].succeed(with: FakeServer.replying(ns(reply)))
            #expect(failureResult(of: d, as: TransformProxyError.self) == expected)
            h.advance(.seconds(60))
            #expect(h.reactor.connectAttempts.count == 1)
        }
    }

    @Test("An invalid transform name fails at once without connecting")
    func invalidName() {
        let h = ProxyHarness()
        for name in ["", "a.b", "two words", "tab\t"] {
            let e = failureResult(of: h.proxy.xform(name, "x"), as: TransformProxyError.self)
            guard case .badRequest? = e else {
                Issue.record("expected badRequest for \(name), got \(String(describing: e))")
                continue
            }
        }
        #expect(h.reactor.connectAttempts.isEmpty)
    }

    @Test("A refused connection is retried at the backoff's delays and succeeds once the server is up")
    func refusedThenUp() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "hi")
        h.pending[0].fail(.refused)
        #expect(h.pending.isEmpty)
        h.advance(.milliseconds(9))
        #expect(h.pending.isEmpty)
        h.advance(.milliseconds(1))
        #expect(h.pending.count == 1)
        h.pending[0].fail(.refused)
        h.advance(.milliseconds(20))
        h.serveNext()
        #expect(successResult(of: d) == "HI")
        #expect(h.retries == [.connectionRefused(h.proxy.endpoints[0]), .connectionRefused(h.proxy.endpoints[0])])
    }

    @Test("When the backoff runs out the call fails with the last transient failure")
    func exhausted() {
        let h = ProxyHarness { $0.backoff = .sequence([.zero, .milliseconds(10)]) }
        let d = h.proxy.xform("upper", "hi")
        h.pending[0].fail(.refused)
        h.advance(.milliseconds(10))
        h.pending[0].fail(.timedOut)
        let e = failureResult(of: d, as: TransformProxyError.self)
        #expect(e == .connectFailed(h.proxy.endpoints[0], reason: "connect timed out"))
        #expect(h.reactor.connectAttempts.count == 2)
    }

    @Test("A connection that dies fails only its own requests, and those are retried")
    func deadConnectionRetried() {
        let h = ProxyHarness { $0.pipelineDepth = 1 }
        let a = h.proxy.xform("upper", "a")
        let b = h.proxy.xform("upper", "b")
        let silentA = FakeServer.silent()
        let pumpA = h.pending[0].succeed(with: silentA)
        let pumpB = h.pending[0].succeed(with: FakeServer.silent())
        #expect(silentA.received == Array(ns("!upper.a").utf8))
        pumpA.serverTransport.abortConnection()
        pumpA.flush()
        expectNoResult(a)
        expectNoResult(b)
        #expect(h.retries == [.connectionLost(h.proxy.endpoints[0])])
        h.advance(.milliseconds(10))
        h.serveNext()
        #expect(successResult(of: a) == "A")
        expectNoResult(b)
        #expect(!pumpB.isClosed)
        h.proxy.close()
        pumpB.flush()
        #expect(failureResult(of: b, as: TransformProxyError.self) == .cancelled)
    }

    @Test("Two fresh connections closed without a reply mark an original-protocol server; the request is resent in the original form")
    func originalFormDetection() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "hello")
        let first = OriginalServer()
        h.pending[0].succeed(with: first).flush()
        #expect(first.requests == ["!upper.hello"])
        #expect(!h.proxy.isOriginalForm(h.proxy.endpoints[0]))
        let second = OriginalServer()
        h.pending[0].succeed(with: second).flush()
        #expect(second.requests == ["!upper.hello"])
        #expect(h.proxy.isOriginalForm(h.proxy.endpoints[0]))
        let third = OriginalServer()
        let pump = h.pending[0].succeed(with: third)
        pump.flush()
        #expect(third.requests == ["upper.hello"])
        #expect(successResult(of: d) == "HELLO")
        #expect(pump.isClosed)
        #expect(h.retries.isEmpty)
        // Listing is not possible in the original protocol.
        let listed = h.proxy.list()
        h.advance()
        let e = failureResult(of: listed, as: TransformProxyError.self)
        guard case .notSupported? = e else {
            Issue.record("expected notSupported, got \(String(describing: e))")
            return
        }
    }

    @Test("A new server killed with requests in flight is not taken for an original-protocol server")
    func killedIsNotOriginalForm() {
        let h = ProxyHarness()
        let calls = [h.proxy.xform("upper", "a"), h.proxy.xform("upper", "b")]
        // Killed after reading both requests: the connection closes cleanly, without a reply.
        h.pending[0].succeed(with: FakeServer.closing()).flush()
        // Restarted: the requests are sent again, still in the extended form.
        let pump = h.serveNext()
        #expect(pump.clientTransport.writtenText == ns("!upper.a") + ns("!upper.b"))
        #expect(calls.map { successResult(of: $0) } == ["A", "B"])
        #expect(!h.proxy.isOriginalForm(h.proxy.endpoints[0]))
        // The suspicion is cleared by the reply: one more such close is not proof either.
        pump.serverTransport.loseConnection()
        pump.flush()
        let c = h.proxy.xform("upper", "c")
        h.pending[0].succeed(with: FakeServer.closing()).flush()
        #expect(!h.proxy.isOriginalForm(h.proxy.endpoints[0]))
        h.serveNext()
        #expect(successResult(of: c) == "C")
    }

    @Test("Against an original-protocol server a close without reply is retried once, then fails with closedWithoutReply")
    func originalFormCloseWithoutReply() {
        let h = ProxyHarness()
        let d = h.proxy.xform("nosuch", "x")
        h.pending[0].succeed(with: OriginalServer()).flush()  // suspicion
        h.pending[0].succeed(with: OriginalServer()).flush()  // detection
        h.pending[0].succeed(with: OriginalServer()).flush()  // original form, closed
        h.advance(.milliseconds(10))
        h.pending[0].succeed(with: OriginalServer()).flush()  // the one retry
        #expect(failureResult(of: d, as: TransformProxyError.self) == .closedWithoutReply(h.proxy.endpoints[0]))
        h.advance(.seconds(10))
        #expect(h.reactor.connectAttempts.count == 4)
    }

    @Test("The original-form mark expires after originalFormRecheckInterval and the extended form is tried again")
    func originalFormExpires() {
        let h = ProxyHarness { $0.originalFormRecheckInterval = .seconds(5) }
        let d = h.proxy.xform("upper", "a")
        h.pending[0].succeed(with: OriginalServer()).flush()
        h.pending[0].succeed(with: OriginalServer()).flush()
        h.pending[0].succeed(with: OriginalServer()).flush()
        #expect(successResult(of: d) == "A")
        h.advance(.seconds(5))
        #expect(!h.proxy.isOriginalForm(h.proxy.endpoints[0]))
        let later = h.proxy.xform("upper", "b")
        let pump = h.serveNext()
        #expect(pump.clientTransport.writtenText == ns("!upper.b"))
        #expect(successResult(of: later) == "B")
    }

    // Issue 11 changed this: a protocol error was retried as transient; it now fails at once.
    @Test("A reply that is not a netstring (the line port's ERR) is a protocol error, not retried")
    func malformedReply() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "abc")
        let bad = h.pending[0].succeed(with: FakeServer.replying("ERR bad_request not a line request\n"))
        bad.flush()
        #expect(bad.clientTransport.aborted)
        guard case .protocolError? = failureResult(of: d, as: TransformProxyError.self) else {
            Issue.record("expected a protocol error")
            return
        }
        h.advance(.seconds(60))
        #expect(h.retries.isEmpty)
        #expect(h.reactor.connectAttempts.count == 1)
    }

    @Test("A reply that is neither '+' nor '-' is a protocol error")
    func unknownReplyShape() {
        let h = ProxyHarness { $0.backoff = .once }
        let d = h.proxy.xform("upper", "abc")
        h.pending[0].succeed(with: FakeServer.replying(ns("ABC"))).flush()
        let e = failureResult(of: d, as: TransformProxyError.self)
        guard case .protocolError(_, let detail)? = e else {
            Issue.record("expected protocolError, got \(String(describing: e))")
            return
        }
        #expect(detail.contains("neither"))
    }

    // Issue 11: was a (retried) protocol error; now a lost connection, still retried.
    @Test("A close in the middle of a reply is a lost connection, retried as transient")
    func closeMidReply() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "abcdef")
        h.pending[0].succeed(with: FakeServer.replying("7:+ABC", close: true)).flush()
        guard case .connectionLost? = h.retries.first else {
            Issue.record("expected a lost-connection retry, got \(h.retries)")
            return
        }
        h.advance(.milliseconds(10))
        h.serveNext()
        #expect(successResult(of: d) == "ABCDEF")
    }

    @Test("A shutting_down reply is retried on a new connection")
    func shuttingDownRetried() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "x")
        let first = h.pending[0].succeed(with: FakeServer.replying(ns("-shutting_down bye")))
        first.flush()
        #expect(h.retries == [.shuttingDown(h.proxy.endpoints[0])])
        #expect(first.isClosed)
        h.advance(.milliseconds(10))
        h.serveNext()
        #expect(successResult(of: d) == "X")
    }

    @Test("Cancelling a call closes its connection, and nothing fires or connects afterwards")
    func cancelInFlight() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "x")
        var fired = 0
        d.addObserver { _ in fired += 1 }
        let pump = h.pending[0].succeed(with: FakeServer.silent())
        d.cancel()
        #expect(fired == 1)
        #expect(failureResult(of: d, as: TransformProxyError.self) == .cancelled)
        #expect(pump.clientTransport.aborted)
        pump.flush()
        #expect(pump.isClosed)
        h.advance(.seconds(120))
        #expect(fired == 1)
        #expect(h.reactor.connectAttempts.count == 1)
    }

    @Test("Cancelling a call while it is connecting abandons the connect")
    func cancelConnecting() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "x")
        let attempt = h.pending[0]
        d.cancel()
        #expect(attempt.state == .failed(.cancelled))
        #expect(failureResult(of: d, as: TransformProxyError.self) == .cancelled)
    }

    @Test("Cancelling during the backoff wait cancels the retry timer")
    func cancelDuringBackoff() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "x")
        h.pending[0].fail(.refused)
        #expect(!h.reactor.clock.pendingCalls.isEmpty)
        d.cancel()
        #expect(h.reactor.clock.pendingCalls.isEmpty)
        h.advance(.seconds(10))
        #expect(h.reactor.connectAttempts.count == 1)
        #expect(failureResult(of: d, as: TransformProxyError.self) == .cancelled)
    }

    /// Calls `a` and `b` pipelined on one connection, to a server that answers only when the
    /// test writes its replies.
    func twoPipelinedCalls() -> (h: ProxyHarness, a: Deferred<String>, b: Deferred<String>, server: FakeServer, pump: IOPump) {
        let h = ProxyHarness()
        let a = h.proxy.xform("upper", "a")
        let b = h.proxy.xform("upper", "b")
        let server = FakeServer()
        return (h, a, b, server, h.pending[0].succeed(with: server))
    }

    @Test("Cancelling one of several pipelined calls keeps the connection for the others")
    func cancelOneOfMany() {
        let (_, a, b, server, pump) = twoPipelinedCalls()
        a.cancel()
        server.transport?.write(ns("+A") + ns("+B"))
        pump.flush()
        #expect(failureResult(of: a, as: TransformProxyError.self) == .cancelled)
        #expect(successResult(of: b) == "B")
        #expect(!pump.isClosed)
    }

    @Test("A connection with abandoned work takes no new calls; once its replies came it is used again")
    func abandonedWorkKeepsNewCallsOff() {
        let (h, a, b, server, pump) = twoPipelinedCalls()
        a.cancel()
        let c = h.proxy.xform("upper", "c")
        #expect(h.reactor.connectAttempts.count == 2)  // not queued behind a's abandoned reply
        server.transport?.write(ns("+A") + ns("+B"))
        pump.flush()
        #expect(successResult(of: b) == "B")
        #expect(!pump.isClosed)
        h.serveNext()
        #expect(successResult(of: c) == "C")
        _ = h.proxy.xform("upper", "d")
        #expect(h.reactor.connectAttempts.count == 2)  // both connections are clean again
    }

    @Test("When only abandoned work is left on a connection it is closed, so the server stops that work")
    func onlyAbandonedWorkLeftCloses() {
        let (_, a, b, server, pump) = twoPipelinedCalls()
        b.cancel()
        #expect(!pump.clientTransport.aborted)  // a is still waiting
        server.transport?.write(ns("+A"))
        pump.flush()
        #expect(successResult(of: a) == "A")
        #expect(pump.clientTransport.aborted)
        #expect(failureResult(of: b, as: TransformProxyError.self) == .cancelled)
    }

    @Test("A call with no reply within the timeout fails with timedOut and its connection is closed")
    func timeout() {
        let h = ProxyHarness {
            $0.timeout = .seconds(1)
            $0.backoff = .once
        }
        let d = h.proxy.xform("upper", "x")
        let pump = h.pending[0].succeed(with: FakeServer.silent())
        h.advance(.milliseconds(999))
        expectNoResult(d)
        h.advance(.milliseconds(1))
        #expect(failureResult(of: d, as: TransformProxyError.self) == .timedOut(after: .seconds(1)))
        #expect(pump.clientTransport.aborted)
    }

    @Test("On a kept-alive connection a call goes out at once, with no timer of its own")
    func fastFirstAttempt() {
        let h = ProxyHarness { $0.timeout = .seconds(1) }
        let first = h.proxy.xform("upper", "a")
        let pump = h.serveNext()
        #expect(successResult(of: first) == "A")
        let timers = h.reactor.clock.pendingCalls.count
        let calls = (0..<10).map { h.proxy.xform("upper", "x\($0)") }
        // Written without the clock running, and one timer (the connection's) watches them all.
        #expect(pump.clientTransport.writtenText.hasSuffix(ns("!upper.x9")))
        #expect(h.reactor.clock.pendingCalls.count <= timers + 1)
        pump.flush()
        #expect(calls.map { successResult(of: $0) } == (0..<10).map { "X\($0)" })
        #expect(h.retries.isEmpty)
    }

    @Test("The connection's one timer times out each call at its own deadline")
    func connectionTimerDeadlines() {
        let h = ProxyHarness {
            $0.timeout = .seconds(1)
            $0.deadline = nil
            $0.backoff = .once
        }
        let server = FakeServer.silent()
        let a = h.proxy.xform("upper", "a")
        let pump = h.pending[0].succeed(with: server)
        h.advance(.milliseconds(500))
        let b = h.proxy.xform("upper", "b")
        pump.flush()
        // a's reply comes at 0.9 s; b's never does.
        h.advance(.milliseconds(400))
        server.transport?.write(ns("+A"))
        pump.flush()
        #expect(successResult(of: a) == "A")
        h.advance(.milliseconds(599))
        expectNoResult(b)
        #expect(!pump.clientTransport.aborted)
        h.advance(.milliseconds(1))
        #expect(failureResult(of: b, as: TransformProxyError.self) == .timedOut(after: .seconds(1)))
        #expect(pump.clientTransport.aborted)
    }

    @Test("A first attempt that timed out is retried once on a new connection, as the retrying call would")
    func fastAttemptTimeoutRetried() {
        let h = ProxyHarness { $0.timeout = .seconds(1) }
        let warm = h.proxy.xform("upper", "w")
        let server = FakeServer.silent()
        let pump = h.pending[0].succeed(with: server)
        server.transport?.write(ns("+W"))
        pump.flush()
        #expect(successResult(of: warm) == "W")
        let d = h.proxy.xform("upper", "x")
        h.advance(.seconds(1))
        #expect(h.retries == [.timedOut(after: .seconds(1))])
        h.advance(.milliseconds(10))
        h.serveNext()
        #expect(successResult(of: d) == "X")
        #expect(h.reactor.connectAttempts.count == 2)
    }

    @Test("A refused endpoint moves the call, and later calls, to the next endpoint")
    func failover() {
        let a = Endpoint(host: "127.0.0.1", port: 1001)
        let b = Endpoint(host: "127.0.0.1", port: 1002)
        let h = ProxyHarness(endpoints: [a, b])
        let d = h.proxy.xform("upper", "x")
        #expect(h.pending[0].port == 1001)
        h.pending[0].fail(.refused)
        h.advance(.milliseconds(10))
        #expect(h.pending[0].port == 1002)
        h.serveNext()
        #expect(successResult(of: d) == "X")
        let later = h.proxy.xform("upper", "y")
        #expect(h.reactor.connectAttempts.count == 2)  // reused the connection to b
        h.reactor.connectAttempts[1].pump?.flush()
        #expect(successResult(of: later) == "Y")
    }

    @Test("Racing two endpoints: the first reply wins and the loser is cancelled")
    func race() {
        let a = Endpoint(host: "127.0.0.1", port: 1001)
        let b = Endpoint(host: "127.0.0.1", port: 1002)
        let h = ProxyHarness(endpoints: [a, b]) { $0.race = true }
        let d = h.proxy.xform("upper", "x")
        #expect(h.pending.map(\.port) == [1001, 1002])
        let loser = h.pending[0]
        h.pending[1].succeed(with: h.netstringServer())
        #expect(successResult(of: d) == "X")
        #expect(loser.state == .failed(.cancelled))
    }

    @Test("Racing: when both fail, a definitive failure wins over a transient one")
    func raceBothFail() {
        let a = Endpoint(host: "127.0.0.1", port: 1001)
        let b = Endpoint(host: "127.0.0.1", port: 1002)
        let h = ProxyHarness(endpoints: [a, b]) { $0.race = true }
        let d = h.proxy.xform("nosuch", "x")
        h.pending[0].fail(.refused)
        h.pending[0].succeed(with: h.netstringServer())
        let e = failureResult(of: d, as: TransformProxyError.self)
        guard case .unknownTransform? = e else {
            Issue.record("expected unknownTransform, got \(String(describing: e))")
            return
        }
    }

    @Test("list returns the server's transform names")
    func listNames() {
        let h = ProxyHarness()
        let d = h.proxy.list()
        let pump = h.serveNext()
        let names = successResult(of: d) ?? []
        #expect(names.contains("cummingsify"))
        #expect(names.contains("upper"))
        #expect(names == names.sorted())
        #expect(pump.clientTransport.writtenText == ns("?list"))
    }

    @Test("An unknown host fails at once")
    func unknownHost() {
        let h = ProxyHarness()
        let d = h.proxy.xform("upper", "x")
        h.pending[0].fail(.unknownHost("nowhere"))
        #expect(failureResult(of: d, as: TransformProxyError.self) == .unknownHost(h.proxy.endpoints[0]))
        h.advance(.seconds(1))
        #expect(h.reactor.connectAttempts.count == 1)
    }

    @Test("Calls after close fail with cancelled without connecting")
    func afterClose() {
        let h = ProxyHarness()
        h.proxy.close()
        #expect(failureResult(of: h.proxy.xform("upper", "x"), as: TransformProxyError.self) == .cancelled)
        #expect(h.reactor.connectAttempts.isEmpty)
    }
}

@Suite("TransformProxy over the line protocol")
struct LineProxyTests {
    @Test("Texts with newlines, tabs and backslashes round-trip through escaped single-line requests")
    func roundTrip() {
        let h = ProxyHarness { $0.wire = .line }
        let text = "line one\nline\ttwo \\ end\r\n"
        let d = h.proxy.xform("upper", text)
        let e = h.proxy.xform("reverse", "")
        let pump = h.pending[0].succeed(with: h.lineServer())
        #expect(successResult(of: d) == text.uppercased())
        #expect(successResult(of: e) == "")
        #expect(pump.clientTransport.writtenText.hasPrefix("upper line one\\nline\\ttwo \\\\ end\\r\\n\n"))
    }

    @Test("ERR replies become typed errors, and list reads the OK block")
    func errorsAndList() {
        let h = ProxyHarness { $0.wire = .line }
        let bad = h.proxy.xform("nosuch", "x")
        let names = h.proxy.list()
        h.pending[0].succeed(with: h.lineServer())
        let e = failureResult(of: bad, as: TransformProxyError.self)
        guard case .unknownTransform(let name, _)? = e else {
            Issue.record("expected unknownTransform, got \(String(describing: e))")
            return
        }
        #expect(name == "nosuch")
        #expect(successResult(of: names)?.contains("upper") == true)
    }

    // Issue 11: was a protocol error; a close mid-reply is now a lost connection (retried).
    @Test("A reply line cut short by a close is a lost connection")
    func cutShort() {
        let h = ProxyHarness {
            $0.wire = .line
            $0.backoff = .once
        }
        let d = h.proxy.xform("upper", "x")
        h.pending[0].succeed(with: FakeServer.replying("OK X", close: true)).flush()
        guard case .connectionLost? = failureResult(of: d, as: TransformProxyError.self) else {
            Issue.record("expected connectionLost")
            return
        }
    }
}
