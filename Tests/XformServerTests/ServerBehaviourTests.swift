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
        #expect(ext.string().hasPrefix("-unknown_transform") || ext.string().contains(":-unknown_transform"))
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
        _ = h.netstring()
        _ = h.netstring()
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
