import Testing
import XformCore
import XformServer
import XformTesting
import XformTransforms

@Suite("--max-concurrent-async: the async gate, in memory")
struct AsyncGateTests {
    @Test("A connection's one job starts before a flooding connection's queued ones")
    func fairAcrossConnections() throws {
        let h = Harness(maxConcurrentAsync: 1)
        let gate = try #require(h.state.asyncGate)
        let (_, flood) = h.netstring()
        let (_, single) = h.netstring()
        flood.receive((1...6).map { ns("!slowcummingsify.F\($0)") }.reduce([], +))
        #expect(gate.underwayCount == 1)
        #expect(gate.pendingCount == 5)
        single.receive(ns("!slowcummingsify.S"))
        #expect(gate.pendingCount == 6)
        h.clock.advance(by: .milliseconds(100))
        #expect(flood.string() == "3:+f1,", "the first flood job was underway")
        #expect(single.value().isEmpty)
        h.clock.advance(by: .milliseconds(100))
        #expect(single.string() == "2:+s,", "the single job ran next, not the flood's second")
        #expect(flood.string() == "3:+f1,")
        h.clock.advance(by: .milliseconds(100))
        #expect(flood.string() == "3:+f1,3:+f2,")
        #expect(gate.pendingCount == 3)
    }

    @Test("Work is started only when the gate launches it")
    func startsWhenLaunched() throws {
        let service = TransformService()
        var started: [String] = []
        var waiting: [Deferred<String>] = []
        try service.register(
            Transform(
                name: "later", summary: "test-only",
                body: .asynchronous({ text, _ in
                    started.append(text)
                    let d = Deferred<String>()
                    waiting.append(d)
                    return d
                })))
        let h = Harness(service: service, maxConcurrentAsync: 2)
        let (_, t) = h.netstring()
        t.receive(ns("!later.a") + ns("!later.b") + ns("!later.c"))
        #expect(started == ["a", "b"])
        try waiting[0].callback("A")
        #expect(started == ["a", "b", "c"])
        #expect(t.string() == "2:+A,")
        try waiting[1].callback("B")
        try waiting[2].callback("C")
        #expect(t.string() == "2:+A,2:+B,2:+C,")
        #expect(h.state.asyncGate?.underwayCount == 0)
    }

    @Test("Widening launches queued jobs at once; a closed connection's queued jobs leave the queue")
    func resizeAndWithdraw() throws {
        let h = Harness(maxConcurrentAsync: 1)
        let gate = try #require(h.state.asyncGate)
        let (_, t) = h.netstring()
        t.receive((1...4).map { ns("!slowcummingsify.X\($0)") }.reduce([], +))
        #expect(gate.underwayCount == 1)
        gate.limit = 3
        #expect(gate.underwayCount == 3)
        #expect(gate.pendingCount == 1)
        gate.limit = 0
        #expect(gate.underwayCount == 4, "0 is unbounded")
        t.loseConnection()
        #expect(gate.underwayCount == 0)
        #expect(gate.pendingCount == 0)
    }

    @Test("A closed connection's queued jobs are withdrawn before they start")
    func withdrawQueued() throws {
        let h = Harness(maxConcurrentAsync: 1)
        let gate = try #require(h.state.asyncGate)
        let (_, gone) = h.netstring()
        let (_, stays) = h.netstring()
        gone.receive(ns("!slowcummingsify.A") + ns("!slowcummingsify.B"))
        stays.receive(ns("!slowcummingsify.C"))
        #expect(gate.pendingCount == 2)
        gone.loseConnection()
        #expect(gate.pendingCount == 0)
        #expect(gate.underwayCount == 1)
        h.clock.advance(by: .milliseconds(100))
        #expect(stays.string() == "2:+c,")
    }

    @Test("The line port's stats show the gate's pending and underway counts")
    func statsShowCounts() {
        let h = Harness(maxConcurrentAsync: 1)
        let (_, busy) = h.netstring()
        busy.receive(ns("!slowcummingsify.A") + ns("!slowcummingsify.B") + ns("!slowcummingsify.C"))
        let (_, t) = h.line()
        t.receive("stats\n")
        let stats = t.string()
        #expect(stats.contains("async_pending 2\n"))
        #expect(stats.contains("async_underway 1\n"))
        #expect(stats.contains("async_limit 1\n"))
    }

    @Test("Without a gate, stats have no async lines")
    func noGateNoLines() {
        let h = Harness()
        #expect(!h.state.report().contains { $0.hasPrefix("async_") })
    }
}
