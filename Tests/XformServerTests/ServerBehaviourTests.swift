import Testing
import XformCore
import XformServer
import XformTesting
import XformTransforms

@Suite("Transform server behaviour, in memory")
struct ServerBehaviourTests {
    @Test("Pipelined extended requests are answered in order even when an early one is asynchronous")
    func pipelinedOrderWithAsync() {
        let h = Harness()
        let (_, t) = h.netstring()
        t.receive(ns("!slowcummingsify.FIRST") + ns("!upper.second") + ns("!reverse.ab"))
        #expect(t.value().isEmpty, "nothing may overtake the slow first reply")
        h.clock.advance(by: .milliseconds(100))
        #expect(t.string() == "6:+first,7:+SECOND,3:+ba,")
        #expect(!t.disconnecting)
    }

    @Test("An asynchronous request in the original form gets its reply, then the close")
    func originalAsync() {
        let h = Harness()
        let (_, t) = h.netstring()
        t.receive(ns("slowcummingsify.HELLO"))
        #expect(!t.disconnecting)
        #expect(t.readingPaused, "the original form takes no more requests after its read")
        h.clock.advance(by: .milliseconds(100))
        #expect(t.string() == "5:hello,")
        #expect(t.disconnecting)
    }

    @Test("A transform remembered from an earlier connection is not reached once it is unregistered")
    func recentTransformFollowsTheRegistry() throws {
        let h = Harness()
        try h.service.register(Transform(name: "shout", summary: "test-only", body: .synchronous { $0 + "!" }))
        let (_, first) = h.netstring()
        first.receive(ns("!shout.hi"))
        #expect(first.string() == "4:+hi!,")
        let (_, second) = h.netstring()
        second.receive(ns("!shout.again"))
        #expect(second.string() == "7:+again!,", "a new connection finds the transform the port used last")
        #expect(h.service.unregister("shout"))
        let (_, third) = h.netstring()
        third.receive(ns("!shout.no"))
        #expect(third.string() == "45:-unknown_transform no transform named 'shout',")
        try h.service.register(Transform(name: "shout", summary: "test-only", body: .synchronous { $0 + "?" }))
        let (_, fourth) = h.netstring()
        fourth.receive(ns("!shout.new"))
        #expect(fourth.string() == "5:+new?,", "the registry's new transform, not the remembered one")
    }

    @Test("Both ports reach the same TransformService instance")
    func sharedServiceInstance() throws {
        let h = Harness()
        try h.service.register(
            Transform(name: "shout", summary: "test-only", body: .synchronous { $0 + "!" }))
        let (_, nt) = h.netstring()
        nt.receive(ns("!shout.hi"))
        #expect(nt.string() == "4:+hi!,")
        let (_, lt) = h.line()
        lt.receive("shout hey\n")
        #expect(lt.string() == "OK hey!\n")
        #expect(h.state.stats.requests["shout"]?["ok"] == 2)
    }

    @Test(
        "Names outside the registry reach nothing, in either form",
        arguments: [
            "transform", "__init__", "xform_cummingsify", "cummingsify ", "../cummingsify", "",
            String(repeating: "a", count: 10_000), "CUMMINGSIFY", "Cummingsify", "\u{0441}ummingsify",
            "ｃｕｍｍｉｎｇｓｉｆｙ", "cummingsify\u{200B}", "stats", "list",
        ])
    func guardedDispatch(name: String) {
        let h = Harness(limits: { var l = ServerLimits(); l.maxRequestBytes = 20_000; return l }())
        let (_, ext) = h.netstring()
        ext.receive(ns("!" + name + ".text"))
        // A well-formed name that is not registered is unknown; one outside the grammar is a bad request.
        let code = TransformName.isValid(name) ? ":-unknown_transform" : ":-bad_request"
        #expect(ext.string().contains(code))
        #expect(!ext.disconnecting)
        let (_, orig) = h.netstring()
        orig.receive(ns(name + ".text"))
        #expect(orig.value().isEmpty, "the original form answers an unknown name with a bare close")
        #expect(orig.disconnecting)
    }

    @Test("Graceful shutdown: in-flight requests finish, new ones are refused, idle connections close at once")
    func gracefulShutdown() {
        let h = Harness()
        let (_, busy) = h.netstring()
        let (_, idle) = h.netstring()
        let (_, lineBusy) = h.line()
        busy.receive(ns("!slowcummingsify.WORK"))
        lineBusy.receive("slowcummingsify LINE WORK\n")
        let drained = h.state.beginShutdown()
        #expect(idle.disconnecting, "an idle connection closes at once")
        expectNoResult(drained)
        busy.receive(ns("!upper.late") + ns("upper.original"))
        lineBusy.receive("upper late\n")
        h.clock.advance(by: .milliseconds(100))
        #expect(busy.string() == "5:+work,42:-shutting_down the server is shutting down,")
        #expect(lineBusy.string() == "OK line work\nERR shutting_down the server is shutting down\n")
        #expect(busy.disconnecting && lineBusy.disconnecting)
        #expect(successResult(of: drained) != nil)
        #expect(h.state.connectionCount == 0)
    }

    @Test("A connection lost mid-request cancels its asynchronous transform")
    func lostConnectionCancelsWork() {
        let h = Harness()
        let (_, t) = h.netstring()
        t.receive(ns("!slowcummingsify.X"))
        #expect(h.clock.pendingCalls.count >= 1)
        t.deliverConnectionLost(.lost(errno: 104))
        #expect(!h.clock.pendingCalls.contains { $0.isActive && $0.deadline == .milliseconds(100) })
        h.clock.advance(by: .seconds(1))
        #expect(t.value().isEmpty)
        #expect(h.state.connectionCount == 0)
    }

    @Test("An idle connection is closed after the idle timeout, an active one is not")
    func idleTimeout() {
        var limits = ServerLimits()
        limits.idleTimeout = .seconds(10)
        let h = Harness(limits: limits)
        let (_, quiet) = h.netstring()
        let (_, chatty) = h.line()
        for _ in 0..<4 {
            h.clock.advance(by: .seconds(4))
            chatty.receive("upper x\n")
        }
        #expect(quiet.disconnecting)
        #expect(!chatty.disconnecting)
        h.clock.advance(by: .seconds(10))
        #expect(chatty.disconnecting)
    }

    @Test("Connections beyond the limit are refused and counted")
    func connectionLimit() {
        var limits = ServerLimits()
        limits.maxConnections = 2
        let h = Harness(limits: limits)
        // Both have completed a request, so neither may be evicted to make room (issue 10).
        for _ in 0..<2 { h.netstring().1.receive(ns("!upper.a")) }
        #expect(h.netstringPort.buildProtocol(peer: SocketAddress(host: "127.0.0.1", port: 1)) == nil)
        #expect(h.state.stats.refusedConnections == 1)
        #expect(h.linePort.buildProtocol(
            peer: SocketAddress(host: "127.0.0.1", port: 1)) != nil, "the limit is per port")
    }

    @Test("An over-long line is an error and the connection survives")
    func overLongLine() {
        var limits = ServerLimits()
        limits.maxLineLength = 32
        let h = Harness(limits: limits)
        let (_, t) = h.line()
        t.receive("upper " + String(repeating: "x", count: 100) + "\nupper ok\n")
        #expect(t.string() == "ERR too_large the line is longer than 32 bytes\nOK OK\n")
        #expect(!t.disconnecting)
    }

    @Test("A block over the request limit is refused once its end is read; the connection survives")
    func blockTooLarge() {
        var limits = ServerLimits()
        limits.maxRequestBytes = 10
        let h = Harness(limits: limits)
        let (_, t) = h.line()
        t.receive("upper\n123456\n789012\n.\nupper fine\n")
        #expect(t.string() == "ERR too_large the text is longer than 10 bytes\nOK FINE\n")
    }

    @Test("An unterminated block at EOF is a bad request, then the connection closes")
    func unterminatedBlock() {
        let h = Harness()
        let (_, t) = h.line()
        t.receive("upper\nabc\n")
        t.receiveEOF()
        #expect(t.string() == "ERR bad_request the block was not ended by a line with a single '.'\n")
        #expect(t.disconnecting)
    }

    @Test("help, list and stats answer blocks")
    func lineCommands() {
        let h = Harness()
        let (_, t) = h.line()
        t.receive("upper a\nstats\n")
        let stats = t.string()
        #expect(stats.contains("requests upper ok=1"))
        #expect(stats.hasSuffix("\n.\n"))
        t.clear()
        t.receive("help\n")
        #expect(t.string().contains("cummingsify"))
        #expect(t.string().hasPrefix("OK\n"))
    }

    @Test("Too many waiting requests pause delivery until replies drain")
    func pendingLimit() {
        var limits = ServerLimits()
        limits.maxPendingPerConnection = 2
        let h = Harness(limits: limits)
        let (p, t) = h.netstring()
        t.receive(ns("!slowcummingsify.A") + ns("!slowcummingsify.B") + ns("!upper.c"))
        #expect(p.isDeliveryPaused)
        h.clock.advance(by: .milliseconds(100))
        #expect(t.string() == "2:+a,2:+b,2:+C,")
        #expect(!p.isDeliveryPaused)
    }

    @Test("Large inputs run through the thread pool runner and still answer in order")
    func offloadedInput() {
        var limits = ServerLimits()
        limits.offloadThreshold = 8
        limits.asciiInlineLimit = 8
        let pool = InlineThreadPool()
        let h = Harness(limits: limits)
        let state = ServerState(
            backend: h.service, clock: h.clock, threadPool: pool, limits: limits)
        let t = StringTransport(deliversConnectionLost: true)
        t.connect(NetstringTransformProtocol(state: state, peer: t.peer))
        t.receive(ns("!upper.this text is long") + ns("!upper.short"))
        #expect(pool.jobs.count == 1)
        #expect(t.value().isEmpty)
        pool.runAll()
        #expect(t.string() == "18:+THIS TEXT IS LONG,6:+SHORT,")
    }

    @Test("Random bytes never crash either protocol, and every connection ends cleanly", arguments: 0..<20)
    func fuzz(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        let h = Harness()
        let alphabet = Array("0123456789:,.!?upercmingsfy \n\r\\.".utf8) + [0xff, 0xc3]
        for lineProtocol in [false, true] {
            let t = lineProtocol ? h.line().1 : h.netstring().1
            for _ in 0..<50 where !t.disconnecting {
                let chunk = (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                t.receive(chunk)
            }
            h.clock.advance(by: .seconds(1))
            t.deliverConnectionLost(.done)
        }
        #expect(h.state.connectionCount == 0)
    }
}

/// A thread pool that queues work until the test runs it (deterministic offload tests).
final class InlineThreadPool: ThreadPoolRunner {
    var jobs: [() -> Void] = []

    func deferToThread<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) -> Deferred<Value> {
        let d = Deferred<Value>()
        jobs.append { try? d.fire(Result { try work() }) }
        return d
    }

    func runAll() {
        while !jobs.isEmpty { jobs.removeFirst()() }
    }
}

/// A small seeded generator for reproducible fuzzing.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Issue 10 and 11: server-side fixes")
struct ServerHardeningTests {
    @Test("An invalid name (!__init__.HI) is a bad_request on both ports, as netstring.md's table says")
    func invalidNameIsBadRequest() {
        let h = Harness()
        let (_, n) = h.netstring()
        n.receive(ns("!__init__.HI"))
        #expect(n.string() == "51:-bad_request the name is not a valid transform name,")
        let (_, l) = h.line()
        l.receive(Array("__init__ HI\n".utf8))
        #expect(l.string() == "ERR bad_request the name is not a valid transform name\n")
    }
}

extension ServerHardeningTests {
    @Test("Issue 10: a request trickled a byte at a time is closed by the idle timeout (no complete request), not kept for ever")
    func slowRequestIdle() {
        var limits = ServerLimits()
        limits.idleTimeout = .seconds(5)
        let h = Harness(limits: limits)
        let (_, t) = h.netstring()
        t.receive(Array("99999:".utf8))
        for _ in 0..<4 {
            h.clock.advance(by: .seconds(1))
            t.receive(Array("a".utf8))
        }
        #expect(!t.disconnecting)
        h.clock.advance(by: .seconds(1))
        #expect(t.disconnecting, "no complete request for 5 s")
        #expect(t.value().isEmpty)
    }

    @Test("Issue 10: a request must be complete --request-timeout after its first byte, however busy the connection")
    func requestTimeout() {
        var limits = ServerLimits()
        limits.idleTimeout = .seconds(100)
        limits.requestTimeout = .seconds(3)
        let h = Harness(limits: limits)
        let (_, t) = h.line()
        t.receive(Array("upper a\n".utf8))
        h.clock.advance(by: .seconds(2))
        t.receive(Array("upper b".utf8))  // no newline yet: a request in progress
        h.clock.advance(by: .seconds(2))
        t.receive(Array("b".utf8))
        #expect(!t.disconnecting)
        h.clock.advance(by: .seconds(1))
        #expect(t.disconnecting)
        #expect(t.string() == "OK A\nERR request_timeout closing: the request was not complete 3s after it began\n")
    }

    @Test("Issue 11: the line port announces an idle close")
    func lineIdleNotice() {
        var limits = ServerLimits()
        limits.idleTimeout = .seconds(120)
        let h = Harness(limits: limits)
        let (_, t) = h.line()
        h.clock.advance(by: .seconds(119))
        #expect(!t.disconnecting)
        h.clock.advance(by: .seconds(1))
        #expect(t.string() == "ERR idle_timeout closing after 120s idle\n")
        #expect(t.disconnecting)
    }

    @Test("Issue 11: stats counts requests that reached no transform (malformed, unknown, too long)")
    func statsCountsRejected() {
        var limits = ServerLimits()
        limits.maxLineLength = 16
        let h = Harness(limits: limits)
        let (_, t) = h.line()
        t.receive(Array("nosuch x\nupper a\\q\n__x y\nupper 0123456789abcdef0123\nstats\n".utf8))
        #expect(t.string().contains("requests_rejected bad_request=2 too_large=1 unknown_transform=1\n"))
    }

    @Test("Issue 11: ?limits states the longest payload, name included, and the longest line")
    func limitsQuery() {
        let h = Harness()
        let (_, t) = h.netstring()
        t.receive(ns("?limits"))
        #expect(t.value() == ns("+max_request_bytes=99999\nmax_line_length=16384\n"))
        #expect(!t.disconnecting)
    }

    @Test("Issue 11: an over-long request whose first payload byte is '!' gets -too_large; drip-fed too")
    func overLongPeek() {
        for drip in [false, true] {
            let h = Harness()
            let (_, t) = h.netstring()
            let bytes = Array("100000:!upper.aaaa".utf8)
            if drip { for b in bytes where !t.disconnecting { t.receive([b]) } } else { t.receive(bytes) }
            #expect(t.string() == "49:-too_large the request is longer than 99999 bytes,")
            #expect(t.disconnecting)
            let (_, o) = h.netstring()
            o.receive(Array("100000:upper.aaaa".utf8))
            #expect(o.value().isEmpty)
            #expect(o.disconnecting)
        }
    }
}

extension ServerHardeningTests {
    @Test("Issue 10: at the limit, the oldest connection that never completed a request makes room; working ones stay")
    func evictionAtTheLimit() {
        var limits = ServerLimits()
        limits.maxConnections = 3
        let h = Harness(limits: limits)
        let (_, worker) = h.netstring()
        worker.receive(ns("!upper.a"))
        let (_, slow1) = h.netstring()
        slow1.receive(Array("99999:".utf8))
        h.clock.advance(by: .seconds(1))
        let (_, slow2) = h.netstring()
        let newcomer = h.netstringPort.buildProtocol(peer: SocketAddress(host: "127.0.0.1", port: 9))
        #expect(newcomer != nil, "a legitimate client gets in")
        #expect(slow1.disconnecting, "the oldest one that never completed a request was closed")
        #expect(!slow2.disconnecting)
        #expect(!worker.disconnecting)
        #expect(h.state.stats.evictedConnections == 1)
    }
}

extension ServerHardeningTests {
    @Test("Issue 10: a client that never reads its replies cannot pin unbounded memory: pending work per connection is bounded")
    func pendingBytesPerConnection() {
        var limits = ServerLimits()
        limits.offloadThreshold = 8
        limits.asciiInlineLimit = 8
        limits.maxPendingBytesPerConnection = 100
        let pool = InlineThreadPool()
        let state = ServerState(backend: TransformService(), clock: ManualClock(), threadPool: pool, limits: limits)
        let t = StringTransport(deliversConnectionLost: true)
        let p = NetstringTransformProtocol(state: state, peer: t.peer)
        t.connect(p)
        let request = ns("!upper." + String(repeating: "x", count: 40))
        t.receive(request + request + request + request)
        #expect(pool.jobs.count == 3, "delivery paused once 100 bytes of input were pending")
        #expect(state.pendingBytes == 120)
        pool.runAll()
        #expect(state.pendingBytes == 0)
        #expect(t.string().components(separatedBy: "+XXXX").count == 5, "all four answered once the work drained")
    }

    @Test("Issue 10: over the server's budget, the connection holding the most stops being read; released once it drains")
    func globalBudget() {
        var limits = ServerLimits()
        limits.offloadThreshold = 8
        limits.asciiInlineLimit = 8
        limits.maxPendingBytesTotal = 100
        let pool = InlineThreadPool()
        let state = ServerState(backend: TransformService(), clock: ManualClock(), threadPool: pool, limits: limits)
        let heavy = StringTransport(deliversConnectionLost: true)
        heavy.connect(NetstringTransformProtocol(state: state, peer: heavy.peer))
        let light = StringTransport(deliversConnectionLost: true)
        light.connect(NetstringTransformProtocol(state: state, peer: light.peer))
        let big = ns("!upper." + String(repeating: "x", count: 60))
        heavy.receive(big + big + big)
        #expect(pool.jobs.count == 2, "the heavy connection was paused once the budget was exceeded")
        #expect(state.throttleCount == 1)
        light.receive(ns("!upper.y"))
        #expect(light.string() == "2:+Y,", "the light one is still served")
        pool.runAll()
        #expect(state.pendingBytes == 0)
        #expect(heavy.string().components(separatedBy: "+XXXX").count == 4)
    }
}

extension ServerHardeningTests {
    @Test("Issue 10 5: a connection accepted during shutdown has its request answered shutting_down, then closes")
    func acceptedDuringShutdown() {
        let h = Harness()
        _ = h.state.beginShutdown()
        let (_, t) = h.netstring()
        #expect(!t.disconnecting, "its request may already be on its way")
        t.receive(ns("!upper.a"))
        #expect(t.string() == "42:-shutting_down the server is shutting down,")
        #expect(t.disconnecting)
        let (_, original) = h.netstring()
        original.receive(ns("upper.a"))
        #expect(original.value().isEmpty)
        #expect(original.disconnecting, "the original form's signal: a close without a reply")
        let (_, silent) = h.netstring()
        h.clock.advance(by: .seconds(1))
        #expect(silent.disconnecting, "one that sends nothing does not hold the shutdown up")
    }
}
