// Terry Jones's Deferred posts (seed 001), each with the post's own example and its order:
// chainDeferred's five examples, DeferredDict, the controllable Deferred, txdlo.
import Testing
import XformCore
import XformTesting

/// Python's rendering of an optional string result.
func py(_ s: String?) -> String { s ?? "None" }

@Suite("chainDeferred, as Twisted has it (\"chainDeferred is too simplistic?\")")
struct ChainDeferredTests {
    @Test("boom1: d2 cancelled, then d1 fires: AlreadyCalledError in d1's chain")
    func boom1() throws {
        var out: [String] = []
        let d1 = Deferred<String?>()
        let d2 = Deferred<String?>(canceller: { _ in out.append("cancelling") })
        d2.addErrback { e in
            guard e is CancelledError else { throw e }
            out.append("cancelled")
            return nil
        }
        d1.chainDeferred(d2)
        d2.cancel()
        try d1.callback("hey")
        #expect(out == ["cancelling", "cancelled"])
        #expect(failureResult(of: d1, as: AlreadyCalledError.self) != nil)
    }

    @Test("boom2: d2 fired by hand, then d1 fires: AlreadyCalledError in d1's chain")
    func boom2() throws {
        let d1 = Deferred<String?>()
        let d2 = Deferred<String?>()
        d1.chainDeferred(d2)
        try d2.callback("hey")
        try d1.callback("jude")
        #expect(failureResult(of: d1, as: AlreadyCalledError.self) != nil)
        #expect(successResult(of: d2) == "hey")
    }

    @Test("uncalled: cancelling d1 never calls d2's canceller; cancelling d2 afterwards does nothing")
    func uncalled() {
        var out: [String] = []
        let d1 = Deferred<String?>(canceller: { _ in out.append("cancel one") })
        d1.addErrback { e in
            guard e is CancelledError else { throw e }
            out.append("cancelled one")
            return nil
        }
        let d2 = Deferred<String?>(canceller: { _ in out.append("cancel two") })
        d2.addErrback { e in
            guard e is CancelledError else { throw e }
            out.append("cancelled two")
            return nil
        }
        d1.chainDeferred(d2)
        d1.cancel()
        d2.cancel()
        #expect(out == ["cancel one", "cancelled one"])
        #expect(successResult(of: d2) == .some(nil))
    }

    @Test("unexpected1: a callback added to d1 after chaining gets None")
    func unexpected1() throws {
        var out: [String] = []
        let d1 = Deferred<String?>()
        let d2 = Deferred<String?>()
        d1.chainDeferred(d2)
        d1.addCallback { r in out.append("called: \(py(r))"); return r }
        try d1.callback("hey")
        #expect(out == ["called: None"])
        #expect(successResult(of: d2) == "hey")
    }

    @Test("unexpected2: the second chained Deferred gets None")
    func unexpected2() throws {
        var out: [String] = []
        let d1 = Deferred<String?>()
        let d2 = Deferred<String?>().addCallback { r in out.append("called 2: \(py(r))"); return r }
        let d3 = Deferred<String?>().addCallback { r in out.append("called 3: \(py(r))"); return r }
        d1.chainDeferred(d2)
        d1.chainDeferred(d3)
        try d1.callback("hey")
        #expect(out == ["called 2: hey", "called 3: None"])
    }

    @Test("A failure goes to the chained Deferred's errbacks and d1 goes on with None")
    func failurePassed() throws {
        let d1 = Deferred<Void>()
        let d2 = Deferred<Void>()
        d1.chainDeferred(d2)
        try d1.errback(PyException("boom"))
        #expect(successResult(of: d1) != nil)
        #expect(failureResult(of: d2, as: PyException.self)?.message == "boom")
    }
}

@Suite("DeferredDict (\"How to asynchronously exchange a dictionary\")")
struct DeferredDictTests {
    @Test("Lookups of present keys are already fired; others fire when the producer sets the key")
    func producerConsumer() {
        var out: [String] = []
        let dict = DeferredDict<String, Int>(["a": 1])
        dict["a"].addCallback { v in out.append("a=\(v)"); return v }
        let b1 = dict["b"].addCallback { v in out.append("b=\(v) (first)"); return v }
        let b2 = dict["b"].addCallback { v in out.append("b=\(v) (second)"); return v }
        let c = dict["c"]
        #expect(out == ["a=1"])
        #expect(dict.waitingCount == 3)
        dict.set(2, for: "b")
        #expect(out == ["a=1", "b=2 (first)", "b=2 (second)"])
        #expect(b1.called && b2.called && !c.called)
        c.cancel()
        _ = failureResult(of: c, as: CancelledError.self)
        #expect(dict.waitingCount == 0)
        dict.set(3, for: "b")
        #expect(successResult(of: dict["b"]) == 3)
        #expect(dict.removeValue(forKey: "a") == 1)
        #expect(!dict["a"].called)
        #expect(dict.count == 1)
    }
}

@Suite("ControllableDeferred (\"Yet another cancelable Twisted deferred class\")")
struct ControllableDeferredTests {
    @Test("The holder's callback fires at once and cancels the original")
    func holderFires() {
        var originalCancelled = false
        let original = Deferred<String>(canceller: { _ in originalCancelled = true })
        let c = ControllableDeferred(original)
        c.callback("mine")
        #expect(originalCancelled)
        #expect(successResult(of: c.deferred) == "mine")
        c.errback(PyException("late"))  // ignored once fired
        #expect(successResult(of: c.deferred) == "mine")
    }

    @Test("errback and cancel fail it; cancelling the Deferred itself is the same as cancel()")
    func holderFails() {
        let o1 = Deferred<Int>(), o2 = Deferred<Int>(), o3 = Deferred<Int>()
        let c1 = ControllableDeferred(o1), c2 = ControllableDeferred(o2), c3 = ControllableDeferred(o3)
        c1.errback(PyException("no"))
        c2.cancel()
        c3.deferred.cancel()
        #expect(failureResult(of: c1.deferred, as: PyException.self)?.message == "no")
        #expect(failureResult(of: c2.deferred, as: CancelledError.self) != nil)
        #expect(failureResult(of: c3.deferred, as: CancelledError.self) != nil)
        #expect(o1.called && o2.called && o3.called)
    }

    @Test("When the original fires first, its result or failure passes through (the post's class passed None)")
    func originalFirst() throws {
        let o1 = Deferred<String>(), o2 = Deferred<String>()
        let c1 = ControllableDeferred(o1), c2 = ControllableDeferred(o2)
        try o1.callback("original")
        try o2.errback(PyException("original failed"))
        #expect(successResult(of: c1.deferred) == "original")
        #expect(failureResult(of: c2.deferred, as: PyException.self)?.message == "original failed")
        c1.callback("too late")
        #expect(successResult(of: c1.deferred) == "original")
    }
}

/// The post's `deferredList`, re-implemented on DeferredListObserver (txdlo's README example).
func observedDeferredList<Value>(
    _ deferreds: [Deferred<Value>], consumeErrors: Bool = false
) -> Deferred<DeferredListResult<Value>> {
    if deferreds.isEmpty { return succeed(.all([])) }
    let dlo = DeferredListObserver<Value>(maintainHistory: true, consumeErrors: consumeErrors)
    for d in deferreds { dlo.append(d) }
    let deferred = Deferred<DeferredListResult<Value>>()
    dlo.observe { [unowned dlo] _, _ in
        if dlo.pendingCount == 0 {
            // Everything in the list has fired.
            var resultList = [Result<Value, any Error>?](repeating: nil, count: deferreds.count)
            for event in dlo.history { resultList[event.index] = event.result }
            try? deferred.callback(.all(resultList.map { $0! }))
        }
    }
    return deferred
}

/// "First success, failing only when all fail", on the observer (txdlo's third example).
func firstSuccessObserved<Value>(_ deferreds: [Deferred<Value>]) -> Deferred<Value> {
    let dlo = DeferredListObserver<Value>(maintainHistory: true, consumeErrors: true)
    let d = Deferred<Value>()
    dlo.observe { [unowned dlo] _, result in
        guard !d.called else { return }
        if case .success(let v) = result {
            try? d.callback(v)
        } else if dlo.failureCount == dlo.count {
            try? d.errback(AllFailedError(failures: dlo.history.compactMap {
                if case .failure(let e) = $0.result { return e } else { return nil }
            }))
        }
    }
    for m in deferreds { dlo.append(m) }
    return d
}

@Suite("DeferredListObserver (txdlo)")
struct DeferredListObserverTests {
    typealias ListFunction = ([Deferred<String>], Bool) -> Deferred<DeferredListResult<String>>

    /// Runs the tutorial's deferred-list-1..7 scripts with `list` in place of DeferredList.
    func tutorialScripts(_ list: ListFunction) throws -> [[String]] {
        var runs: [[String]] = []
        func got(_ out: Box<[String]>) -> (DeferredListResult<String>) -> DeferredListResult<String> {
            { res in out.value.append("We got: \(pyResults(res.results ?? []))"); return res }
        }
        // 1: empty list.
        do {
            let out = Box<[String]>(["Empty List."])
            let d = list([], false)
            out.value.append("Adding Callback.")
            d.addCallback(got(out))
            runs.append(out.value)
        }
        // 2: one member.
        do {
            let out = Box<[String]>(["One Deferred."])
            let d1 = Deferred<String>()
            let d = list([d1], false)
            out.value.append("Adding Callback.")
            d.addCallback(got(out))
            out.value.append("Firing d1.")
            try d1.callback("d1 result")
            runs.append(out.value)
        }
        // 3, 4: two members in either order.
        for reverse in [false, true] {
            let out = Box<[String]>(["Two Deferreds."])
            let d1 = Deferred<String>(), d2 = Deferred<String>()
            let d = list([d1, d2], false)
            out.value.append("Adding Callback.")
            d.addCallback(got(out))
            for (n, m) in reverse ? [(2, d2), (1, d1)] : [(1, d1), (2, d2)] {
                out.value.append("Firing d\(n).")
                try m.callback("d\(n) result")
            }
            runs.append(out.value)
        }
        // 5, 6, 7: one failing member, with consumeErrors, without, and handled afterwards.
        for (consume, handle) in [(true, false), (false, false), (false, true)] {
            let out = Box<[String]>([])
            let errors = UnhandledErrors.capture {
                let d1 = Deferred<String>(), d2 = Deferred<String>()
                let d = list([d1, d2], consume)
                if handle { d2.addErrback { _ in "" } }
                d.addCallback(got(out))
                out.value.append("Firing d1.")
                try? d1.callback("d1 result")
                out.value.append("Firing d2 with errback.")
                try? d2.errback(PyException("d2 failure"))
            }
            for e in errors { out.value.append("Unhandled error in Deferred: \(e.message)") }
            runs.append(out.value)
        }
        return runs
    }

    @Test("The post's deferredList on the observer matches the library's on every tutorial DeferredList example")
    func deferredListOnObserver() throws {
        let library = try tutorialScripts { ds, consume in deferredList(ds, consumeErrors: consume) }
        let observed = try tutorialScripts { ds, consume in observedDeferredList(ds, consumeErrors: consume) }
        #expect(observed == library)
        #expect(library.count == 7)
        #expect(library[5].last == "Unhandled error in Deferred: d2 failure")
    }

    @Test("Observers are called in the order added with (index, result); history replays to late observers")
    func observersAndHistory() throws {
        let dlo = DeferredListObserver<Int>(maintainHistory: true, consumeErrors: true)
        var events: [String] = []
        func describe(_ tag: String) -> DeferredListObserver<Int>.Observer {
            { i, r in
                switch r {
                case .success(let v): events.append("\(tag) \(i) ok \(v)")
                case .failure(let e): events.append("\(tag) \(i) failed \(e)")
                }
            }
        }
        dlo.observe(describe("A"))
        dlo.observe(describe("B"))
        let d0 = Deferred<Int>(), d1 = Deferred<Int>()
        #expect(dlo.append(d0) == 0)
        #expect(dlo.append(d1) == 1)
        try d1.callback(10)
        #expect(dlo.append(succeed(20)) == 2)  // the list grows at any time
        try d0.errback(PyException("x"))
        #expect(events == ["A 1 ok 10", "B 1 ok 10", "A 2 ok 20", "B 2 ok 20", "A 0 failed x", "B 0 failed x"])
        #expect((dlo.pendingCount, dlo.successCount, dlo.failureCount, dlo.count) == (0, 2, 1, 3))
        events.removeAll()
        dlo.observe(replayHistory: true, describe("C"))
        #expect(events == ["C 1 ok 10", "C 2 ok 20", "C 0 failed x"])
        #expect(successResult(of: d1) == 10)  // results pass through unchanged
    }

    @Test("A Deferred that fires when N of the observed Deferreds have fired")
    func whenNFired() throws {
        let ds = (0..<4).map { _ in Deferred<Int>() }
        let two = whenFired(2, of: ds)
        try ds[2].callback(2)
        #expect(!two.called)
        try ds[0].errback(PyException("zero"))
        let events = successResult(of: two)!
        #expect(events.map(\.index) == [2, 0])
        try ds[1].callback(1)
        try ds[3].callback(3)
        #expect(successResult(of: whenFired(0, of: [Deferred<Int>]())) != nil)
    }

    @Test("First success, failing only when all fail")
    func firstSuccessOnObserver() throws {
        let a = Deferred<String>(), b = Deferred<String>(), c = Deferred<String>()
        let first = firstSuccessObserved([a, b, c])
        try a.errback(PyException("cache miss"))
        #expect(!first.called)
        try c.callback("gravatar")
        try b.callback("filesystem")
        #expect(successResult(of: first) == "gravatar")
        let x = Deferred<String>(), y = Deferred<String>()
        let none = firstSuccessObserved([x, y])
        try y.errback(PyException("y"))
        try x.errback(PyException("x"))
        let all = failureResult(of: none, as: AllFailedError.self)
        #expect(all?.failures.map { "\($0)" } == ["y", "x"])
    }
}
