import Testing
import XformCore
import XformTesting

/// The shapes the Deferred fast paths take: a single Deferred run without a chain array, steps
/// added while the chain runs, compaction of long runs, and release of long unfired chains.
@Suite("Deferred fast paths keep Twisted's semantics")
struct DeferredPerformanceShapeTests {
    @Test("A callback that adds callbacks to its own Deferred runs them next, in order")
    func appendDuringRun() throws {
        var out: [String] = []
        let d = Deferred<Int>()
        d.addCallback { v in
            out.append("first \(v)")
            d.addCallback { v in out.append("added \(v)"); return v * 10 }
            return v + 1
        }
        d.addCallback { v in out.append("second \(v)"); return v + 1 }
        try d.callback(1)
        #expect(out == ["first 1", "second 2", "added 3"])
        #expect(successResult(of: d) == 30)
    }

    @Test("Callbacks added to a fired Deferred from inside its callbacks run once each, in order")
    func appendDuringRunAfterFiring() {
        var out: [Int] = []
        let d = succeed(0)
        d.addCallback { v in
            for i in 1...3 { d.addCallback { out.append(i); return $0 + i } }
            return v
        }
        d.addCallback { out.append(9); return $0 }
        #expect(out == [1, 2, 3, 9])
        #expect(successResult(of: d) == 6)
    }

    @Test("Many callbacks added while running past the compaction threshold all run in order")
    func appendDuringLongRun() throws {
        var seen: [Int] = []
        let d = Deferred<Int>()
        for i in 0..<100 {
            d.addCallback { v in
                seen.append(i)
                if i % 10 == 0 { d.addCallback { v in seen.append(1000 + i); return v + 1 } }
                return v + 1
            }
        }
        try d.callback(0)
        #expect(seen.prefix(100) == ArraySlice(0..<100))
        #expect(Array(seen.dropFirst(100)) == (0..<10).map { 1000 + $0 * 10 })
        #expect(successResult(of: d) == 110)
    }

    @Test("Adding callbacks one at a time after firing gives the same result as before firing")
    func fireThenAddMatchesAddThenFire() throws {
        let a = Deferred<Int>()
        for i in 0..<1000 { a.addCallback { $0 &* 3 &+ i } }
        try a.callback(1)
        let b = Deferred<Int>()
        try b.callback(1)
        for i in 0..<1000 { b.addCallback { $0 &* 3 &+ i } }
        #expect(successResult(of: a) == successResult(of: b))
    }

    @Test("A callback that pauses its own Deferred holds the callbacks added after it")
    func pauseFromCallback() throws {
        var out: [Int] = []
        let d = Deferred<Int>()
        d.addCallback { v in d.pause(); out.append(v); return v + 1 }
        try d.callback(1)
        d.addCallback { v in out.append(v); return v }
        #expect(out == [1])
        d.unpause()
        #expect(out == [1, 2])
    }

    @Test("A failure passing a value callback keeps the failure track and is still reported")
    func failurePassesValueCallbacks() {
        let errors = UnhandledErrors.capture {
            let d = Deferred<Int>()
            d.addCallback { $0 + 1 }
            d.addCallback { (_: Int) -> Deferred<Int> in succeed(0) }
            try? d.errback(Boom(n: 3))
            #expect(failureResult(of: d, as: Boom.self) == Boom(n: 3))
        }
        // failureResult marks it handled; a fresh one is reported.
        #expect(errors.isEmpty)
        let reported = UnhandledErrors.capture {
            let d = Deferred<Int>()
            d.addCallback { $0 + 1 }
            try? d.errback(Boom(n: 4))
        }
        #expect(reported.count == 1)
    }

    @Test("A callback chain that resumes a deep stack of outer Deferreds of the same type resumes them all")
    func sameTypeResumeStack() throws {
        let n = 50_000
        let ds = (0..<n).map { _ in Deferred<Int>() }
        for i in 0..<(n - 1) {
            let next = ds[i + 1]
            ds[i].addCallback { _ in next }
            ds[i].addCallback { $0 + 1 }
        }
        for i in 0..<(n - 1) { try ds[i].callback(i) }
        try ds[n - 1].callback(0)
        #expect(successResult(of: ds[0]) == n - 1)
    }

    @Test("A Deferred waiting on a Deferred of its type that was mapped to another type resumes")
    func mixedTypeChain() throws {
        let inner = Deferred<Int>()
        let outer = Deferred<Int>()
        outer.addCallback { _ in inner }
        let text = outer.map { "v\($0)" }
        try outer.callback(0)
        expectNoResult(text)
        try inner.callback(7)
        #expect(successResult(of: text) == "v7")
    }

    @Test("Dropping a hundred thousand unfired derived Deferreds does not overflow the stack")
    func releaseLongUnfiredDerivedChain() {
        var r: Deferred<Int>? = Deferred<Int>()
        var d: Deferred<Int>? = r
        for _ in 0..<100_000 { d = d!.map { $0 } }
        weak let last = d
        d = nil
        #expect(last != nil)  // the source's chain holds it
        r = nil
        #expect(last == nil)
    }

    @Test("Dropping a hundred thousand nested unfired inner Deferreds does not overflow the stack")
    func releaseLongUnfiredNestedChain() throws {
        var ds: [Deferred<Int>] = (0..<100_000).map { _ in Deferred<Int>() }
        for i in 0..<(ds.count - 1) {
            let next = ds[i + 1]
            ds[i].addCallback { _ in next }
            try ds[i].callback(i)
        }
        weak let first = ds[0]
        ds.removeAll()
        #expect(first == nil)
    }
}
