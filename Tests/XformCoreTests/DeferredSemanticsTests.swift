import Testing
import XformCore
import XformTesting

struct Boom: Error, Equatable { var n = 0 }

@Suite("Deferred semantics")
struct DeferredSemanticsTests {
    @Test("A callback that throws moves the chain to the errback track, an errback that returns moves it back")
    func trackSwitching() throws {
        var out: [String] = []
        let d = Deferred<Int>()
        d.addCallback { (v: Int) throws -> Int in out.append("cb1 \(v)"); throw Boom(n: v) }
        d.addCallback { v in out.append("cb2 skipped \(v)"); return v }
        d.addErrback { e in out.append("eb \((e as? Boom)?.n ?? -1)"); return 10 }
        d.addBoth { r in out.append("both \((try? r.get()) ?? -1)"); return 11 }
        try d.callback(1)
        #expect(out == ["cb1 1", "eb 1", "both 10"])
        #expect(successResult(of: d) == 11)
    }

    @Test("succeed and fail return fired Deferreds; callbacks added later run at once")
    func succeedAndFail() {
        var got: [String] = []
        succeed(3).addCallback { v in got.append("v\(v)"); return v }
        let f = fail(Boom(n: 4), as: Int.self)
        f.addErrback { e in got.append("e\((e as? Boom)?.n ?? 0)"); return 0 }
        #expect(got == ["v3", "e4"])
    }

    @Test("maybeDeferred wraps a value, a thrown error, or a returned Deferred")
    func maybeDeferredForms() throws {
        #expect(successResult(of: maybeDeferred { 5 }) == 5)
        #expect(failureResult(of: maybeDeferred { () throws -> Int in throw Boom(n: 6) }, as: Boom.self) == Boom(n: 6))
        let inner = Deferred<Int>()
        let md = maybeDeferred { () -> Deferred<Int> in inner }
        #expect(md === inner)
        expectNoResult(md)
        try inner.callback(7)
        #expect(successResult(of: md) == 7)
    }

    @Test("pause holds results and callbacks until unpause; nested pauses need as many unpauses")
    func pauseUnpause() throws {
        var out: [Int] = []
        let d = Deferred<Int>()
        d.pause()
        d.pause()
        d.addCallback { out.append($0); return $0 }
        try d.callback(1)
        #expect(out.isEmpty)
        d.unpause()
        #expect(out.isEmpty)
        d.unpause()
        #expect(out == [1])
    }

    @Test("Firing twice throws AlreadyCalledError naming the creation site")
    func alreadyCalled() throws {
        let line: UInt = #line + 1
        let d = Deferred<Int>()
        try d.callback(1)
        #expect(throws: AlreadyCalledError.self) { try d.callback(2) }
        do { try d.errback(Boom()) } catch { #expect(error.line == line) }
    }

    @Test("A late result after cancel without canceller is swallowed once; a second one throws")
    func lateResultSwallowedOnce() {
        let d = Deferred<Int>()
        d.cancel()
        #expect(throws: Never.self) { try d.callback(1) }
        #expect(throws: AlreadyCalledError.self) { try d.callback(2) }
        #expect(failureResult(of: d, as: CancelledError.self) != nil)
    }

    @Test("A canceller is called once, and the Deferred fails with CancelledError if it did not fire")
    func cancellerOnce() {
        var calls = 0
        let d = Deferred<Int>(canceller: { _ in calls += 1 })
        d.cancel()
        d.cancel()
        #expect(calls == 1)
        #expect(failureResult(of: d, as: CancelledError.self) != nil)
    }

    @Test("Cancelling a derived Deferred cancels its source")
    func cancelDerived() {
        var cancelled = false
        let source = Deferred<Int>(canceller: { _ in cancelled = true })
        let mapped = source.map { String($0) }
        mapped.cancel()
        #expect(cancelled)
        #expect(failureResult(of: mapped, as: CancelledError.self) != nil)
    }

    @Test("Cancelling a Deferred paused on a flatMap inner Deferred cancels the inner one")
    func cancelFlatMapInner() throws {
        var innerCancelled = false
        let inner = Deferred<String>(canceller: { _ in innerCancelled = true })
        let outer = Deferred<Int>()
        let chained = outer.flatMap { _ in inner }
        try outer.callback(1)
        expectNoResult(chained)
        chained.cancel()
        #expect(innerCancelled)
        #expect(failureResult(of: chained, as: CancelledError.self) != nil)
    }

    @Test("map, flatMap and mapResult change the type and carry failures")
    func typeChanging() throws {
        let d = Deferred<Int>()
        let s = d.map { "n=\($0)" }
        let inner = Deferred<Double>()
        let f = s.flatMap { _ in inner }
        let r = f.mapResult { res -> Bool in (try? res.get()) != nil }
        try d.callback(2)
        #expect(successResult(of: s) == "n=2")
        expectNoResult(r)
        try inner.callback(1.5)
        #expect(successResult(of: f) == 1.5)
        #expect(successResult(of: r) == true)

        let bad = fail(Boom(n: 9), as: Int.self).map { String($0) }
        #expect(failureResult(of: bad, as: Boom.self) == Boom(n: 9))
    }

    @Test("A callback returning an already-fired Deferred continues at once with its result")
    func innerAlreadyFired() {
        let d = succeed(1)
        d.addCallback { v -> Deferred<Int> in succeed(v + 1) }
        #expect(successResult(of: d) == 2)
    }

    @Test("An unhandled failure is reported once on deinit, with where the Deferred was created")
    func unhandledOnDeinit() {
        var line: UInt = 0
        let errors = UnhandledErrors.capture {
            line = #line + 1
            let d = Deferred<Int>()
            try? d.errback(Boom(n: 1))
        }
        #expect(errors.count == 1)
        #expect(errors.first?.line == line)
        #expect(errors.first?.file.hasSuffix("DeferredSemanticsTests.swift") == true)
        #expect(errors.first?.message.contains("Boom") == true)
    }

    @Test("A failure handled by an errback, or handed to an outer Deferred, is not reported")
    func handledNotReported() {
        let errors = UnhandledErrors.capture {
            let d = Deferred<Int>()
            d.addErrback { _ in 0 }
            try? d.errback(Boom())
            let inner = Deferred<Int>()
            let outer = succeed(1)
            outer.addCallback { _ in inner }
            outer.addErrback { _ in 2 }
            try? inner.errback(Boom())
            #expect(successResult(of: outer) == 2)
        }
        #expect(errors.isEmpty)
    }

    @Test("A million chained callbacks run without overflowing the stack")
    func millionCallbacks() throws {
        let d = Deferred<Int>()
        for _ in 0..<1_000_000 { d.addCallback { $0 + 1 } }
        try d.callback(0)
        #expect(successResult(of: d) == 1_000_000)
    }

    @Test("A hundred thousand nested inner Deferreds resume without overflowing the stack")
    func nestedInners() throws {
        let n = 100_000
        let ds = (0..<n).map { _ in Deferred<Int>() }
        for i in 0..<(n - 1) {
            let next = ds[i + 1]
            ds[i].addCallback { _ in next }
        }
        ds[0].addCallback { $0 + 1 }
        for i in 0..<(n - 1) { try ds[i].callback(i) }
        expectNoResult(ds[0])
        try ds[n - 1].callback(41)
        #expect(successResult(of: ds[0]) == 42)
    }

    @Test("A hundred thousand nested flatMaps resolve without overflowing the stack")
    func nestedFlatMaps() throws {
        let root = Deferred<Int>()
        var d = root
        for _ in 0..<100_000 { d = d.flatMap { v in succeed(v + 1) } }
        try root.callback(0)
        #expect(successResult(of: d) == 100_000)
    }
}

@Suite("Deferred timeouts")
struct DeferredTimeoutTests {
    @Test("addTimeout fails with TimeoutError, not CancelledError, when the time runs out")
    func timesOut() {
        let clock = ManualClock()
        var cancelled = false
        let d = Deferred<Int>(canceller: { _ in cancelled = true })
        d.addTimeout(.seconds(5), clock: clock)
        clock.advance(by: .seconds(4))
        expectNoResult(d)
        clock.advance(by: .seconds(1))
        #expect(cancelled)
        #expect(failureResult(of: d, as: TimeoutError.self) == TimeoutError(timeout: .seconds(5)))
    }

    @Test("A result that arrives in time cancels the timer")
    func resultInTime() throws {
        let clock = ManualClock()
        let d = Deferred<Int>()
        d.addTimeout(.seconds(5), clock: clock)
        #expect(clock.pendingCalls.count == 1)
        try d.callback(1)
        #expect(clock.pendingCalls.isEmpty)
        clock.advance(by: .seconds(10))
        #expect(successResult(of: d) == 1)
    }

    @Test("A plain cancel before the timeout still fails with CancelledError")
    func plainCancel() {
        let clock = ManualClock()
        let d = Deferred<Int>()
        d.addTimeout(.seconds(5), clock: clock)
        d.cancel()
        #expect(failureResult(of: d, as: CancelledError.self) != nil)
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("deferLater fires after the delay; cancelling it cancels the call")
    func deferLaterFiresAndCancels() {
        let clock = ManualClock()
        var ran = 0
        let d = deferLater(clock, .seconds(2)) { ran += 1; return "x" }
        clock.advance(by: .seconds(1))
        expectNoResult(d)
        clock.advance(by: .seconds(1))
        #expect(successResult(of: d) == "x")

        let c = deferLater(clock, .seconds(2)) { ran += 1; return "y" }
        c.cancel()
        #expect(clock.pendingCalls.isEmpty)
        clock.advance(by: .seconds(5))
        #expect(ran == 1)
        #expect(failureResult(of: c, as: CancelledError.self) != nil)
    }
}

@Suite("Deferred combinators")
struct DeferredCombinatorTests {
    @Test("deferredList gives results in input order, failures included")
    func listOrder() throws {
        let a = Deferred<Int>(), b = Deferred<Int>(), c = Deferred<Int>()
        let l = deferredList([a, b, c], consumeErrors: true)
        try c.callback(3)
        try a.errback(Boom(n: 1))
        expectNoResult(l)
        try b.callback(2)
        let results = try #require(successResult(of: l)?.results)
        #expect(results.count == 3)
        #expect((try? results[1].get()) == 2)
        #expect((try? results[2].get()) == 3)
        if case .failure(let e) = results[0] { #expect(e as? Boom == Boom(n: 1)) } else { Issue.record("expected failure") }
    }

    @Test("fireOnOneCallback fires with the first value and its index")
    func fireOnOneCallback() throws {
        let a = Deferred<Int>(), b = Deferred<Int>()
        let l = deferredList([a, b], fireOnOneCallback: true)
        try b.callback(7)
        guard case .first(let v, let i)? = successResult(of: l) else { Issue.record("expected .first"); return }
        #expect(v == 7 && i == 1)
        try a.callback(1)
    }

    @Test("fireOnOneErrback fails with FirstError naming the member; consumeErrors handles the members")
    func fireOnOneErrback() throws {
        let errors = try UnhandledErrors.capture {
            let a = Deferred<Int>(), b = Deferred<Int>()
            let l = deferredList([a, b], fireOnOneErrback: true, consumeErrors: true)
            try a.callback(1)
            try b.errback(Boom(n: 2))
            let fe = try #require(failureResult(of: l, as: FirstError.self))
            #expect(fe.index == 1)
            #expect(fe.underlying as? Boom == Boom(n: 2))
        }
        #expect(errors.isEmpty)
    }

    @Test("Cancelling a deferredList cancels its unfired members")
    func listCancel() throws {
        let a = Deferred<Int>(), b = Deferred<Int>()
        let l = deferredList([a, b], consumeErrors: true)
        try a.callback(1)
        l.cancel()
        #expect(failureResult(of: b, as: CancelledError.self) != nil)
        #expect(successResult(of: a) == 1)
        // As in Twisted, the list then fires with its members' results.
        let results = try #require(successResult(of: l)?.results)
        #expect(results.count == 2)
        if case .failure(let e) = results[1] { #expect(e is CancelledError) } else { Issue.record("expected failure") }
    }

    @Test("gatherResults gives values in order, or the first failure")
    func gather() throws {
        let a = Deferred<Int>(), b = Deferred<Int>()
        let g = gatherResults([a, b])
        try b.callback(2)
        try a.callback(1)
        #expect(successResult(of: g) == [1, 2])

        let c = Deferred<Int>(), d = Deferred<Int>()
        let g2 = gatherResults([c, d], consumeErrors: true)
        try d.errback(Boom(n: 5))
        #expect(failureResult(of: g2, as: FirstError.self)?.index == 1)
        try c.callback(0)
    }

    @Test("firstSuccess fires with the first value and cancels the losers")
    func firstSuccessCancelsLosers() throws {
        var cancelled: [Int] = []
        let ds = (0..<3).map { i in Deferred<Int>(canceller: { _ in cancelled.append(i) }) }
        let w = firstSuccess(ds)
        try ds[0].errback(Boom())
        try ds[1].callback(11)
        let r = successResult(of: w)
        #expect(r?.index == 1 && r?.value == 11)
        #expect(cancelled == [2])
    }

    @Test("firstSuccess fails with every failure when all members fail")
    func firstSuccessAllFail() throws {
        let ds = [Deferred<Int>(), Deferred<Int>()]
        let w = firstSuccess(ds)
        try ds[1].errback(Boom(n: 1))
        try ds[0].errback(Boom(n: 0))
        let e = failureResult(of: w, as: AllFailedError.self)
        #expect(e?.failures.compactMap { ($0 as? Boom)?.n } == [0, 1])
    }

    @Test("DeferredQueue hands values to waiters in order and keeps the rest")
    func queue() throws {
        let q = DeferredQueue<Int>(size: 1, backlog: 1)
        let g1 = try q.get()
        #expect(throws: QueueOverflowError.self) { try q.get() }
        try q.put(1)
        #expect(successResult(of: g1) == 1)
        try q.put(2)
        #expect(throws: QueueOverflowError.self) { try q.put(3) }
        #expect(successResult(of: try q.get()) == 2)

        let waiting = try q.get()
        waiting.cancel()
        _ = failureResult(of: waiting, as: CancelledError.self)
        try q.put(4)
        #expect(q.count == 1)
    }

    @Test("DeferredPool notifyWhenEmpty fires once every tracked Deferred has fired")
    func pool() throws {
        let pool = DeferredPool()
        #expect(successResult(of: pool.notifyWhenEmpty()) != nil)
        let a = Deferred<Int>(), b = Deferred<Int>()
        pool.add(a)
        pool.add(b)
        pool.add(succeed(0))
        #expect(pool.count == 2)
        let empty = pool.notifyWhenEmpty()
        try a.callback(1)
        expectNoResult(empty)
        try b.errback(Boom())
        #expect(successResult(of: empty) != nil)
        _ = failureResult(of: b)
    }
}

@Suite("Service and MultiService")
struct ServiceTests {
    final class Recording: Service {
        let log: Box<[String]>
        var stopDeferred: Deferred<Void>?
        init(_ name: String, _ log: Box<[String]>, slowStop: Bool = false) {
            self.log = log
            super.init(name: name)
            if slowStop { stopDeferred = Deferred() }
        }
        override func startService() {
            super.startService()
            log.value.append("start \(name!)")
        }
        override func stopService() -> Deferred<Void> {
            _ = super.stopService()
            log.value.append("stop \(name!)")
            return stopDeferred ?? succeed(())
        }
    }

    @Test("Children start in order and stop in reverse order, each waiting for the previous stop")
    func startStopOrder() throws {
        let log = Box<[String]>([])
        let root = MultiService()
        let a = Recording("a", log), b = Recording("b", log, slowStop: true), c = Recording("c", log)
        try root.addService(a)
        try b.setServiceParent(root)
        try root.addService(c)
        root.startService()
        #expect(log.value == ["start a", "start b", "start c"])
        log.value.removeAll()
        let stopped = root.stopService()
        #expect(log.value == ["stop c", "stop b"])
        expectNoResult(stopped)
        try b.stopDeferred!.callback(())
        #expect(log.value == ["stop c", "stop b", "stop a"])
        #expect(successResult(of: stopped) != nil)
        #expect(!root.running && !a.running)
    }

    @Test("A service added to a running parent starts at once")
    func addToRunning() throws {
        let log = Box<[String]>([])
        let root = MultiService()
        root.startService()
        try root.addService(Recording("late", log))
        #expect(log.value == ["start late"])
    }

    @Test("A second child with the same name is refused")
    func duplicateNames() throws {
        let log = Box<[String]>([])
        let root = MultiService()
        try root.addService(Recording("x", log))
        #expect(throws: ServiceError.duplicateName("x")) { try root.addService(Recording("x", log)) }
        #expect(root.services.count == 1)
        #expect(root.namedService("x") != nil)
    }
}

@Suite("Deferred bug fixes")
struct DeferredBugFixTests {
    @Test("flatMap onto an already-fired Deferred continues with its result (was: hung forever)")
    func flatMapOntoFired() {
        let d = succeed(1).flatMap { succeed($0 + 1) }
        #expect(successResult(of: d) == 2)
        let f = succeed(1).flatMap { _ in fail(Boom(n: 3), as: Int.self) }
        #expect(failureResult(of: f, as: Boom.self) == Boom(n: 3))
    }

    @Test("A deferredList kept only through a derived Deferred still fires (was: list deallocated, never fired)")
    func derivedListFires() throws {
        let a = Deferred<Int>(), b = Deferred<Int>()
        let count = deferredList([a, b]).map { $0.results?.count ?? -1 }
        let gathered = gatherResults([a, b])
        let c = Deferred<Int>(), e = Deferred<Int>()
        let winner = firstSuccess([c, e]).map { $0.value }
        try b.callback(2)
        try a.callback(1)
        try e.callback(2)
        #expect(successResult(of: count) == 2)
        #expect(successResult(of: gathered) == [1, 2])
        #expect(successResult(of: winner) == 2)
    }

    @Test("An unfired member does not keep a deferredList alive through its canceller")
    func noCycleThroughCanceller() {
        weak var weakList: Deferred<DeferredListResult<Int>>?
        weak var weakMember: Deferred<Int>?
        do {
            let m = Deferred<Int>()
            weakMember = m
            weakList = deferredList([m])
        }
        #expect(weakMember == nil)
        #expect(weakList == nil)
        weak var weakWinner: Deferred<(index: Int, value: Int)>?
        do {
            let m = Deferred<Int>()
            weakMember = m
            weakWinner = firstSuccess([m])
        }
        #expect(weakMember == nil)
        #expect(weakWinner == nil)
    }

    @Test("flatMap onto a Deferred fired later continues when it fires")
    func flatMapOntoUnfired() throws {
        let inner = Deferred<String>()
        let d = succeed(1).flatMap { _ in inner }
        expectNoResult(d)
        try inner.callback("x")
        #expect(successResult(of: d) == "x")
    }
}
