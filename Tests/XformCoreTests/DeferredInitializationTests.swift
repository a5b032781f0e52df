// DeferredInitialization: Terry Jones's deferred __init__ posts (seed 001: the 2009 mixin and
// the 2008 metaclass).
import Testing
import XformCore
import XformTesting

/// The 2009 post's program, on a manual clock: `late(value)` fires after one second, printing
/// "I finally fired, with value ..."; `Test`'s set-up is `late('Test')`; f1 and f2 wait for it.
final class MixinExample {
    let clock = ManualClock()
    var out: [String] = []
    var initialization: DeferredInitialization<String>!

    init() {
        initialization = DeferredInitialization { [unowned self] in late("Test") }
        initialization.start()
    }

    func late<T>(_ value: T) -> Deferred<T> {
        deferLater(clock, .seconds(1)) { [unowned self] in
            out.append("I finally fired, with value \(value)")
            return value
        }
    }

    func f1(_ arg: Int) -> Deferred<Int> {
        initialization.whenReady { [unowned self] _ in
            out.append("f1 called with \(arg)")
            return late(arg)
        }
    }

    func f2(_ arg: Int) -> Deferred<Int> {
        initialization.whenReady { [unowned self] _ in
            out.append("f2 called with \(arg)")
            return late(arg)
        }
    }
}

@Suite("DeferredInitialization")
struct DeferredInitializationTests {
    @Test("The 2009 mixin example: calls made before set-up run in call order after it, as the post prints")
    func mixinExample() {
        let t = MixinExample()
        let d1 = t.f1(44).addCallback { t.out.append("final callback of f1, result = \($0)"); return $0 }
        let d2 = t.f1(33).addCallback { t.out.append("final callback of f1, result = \($0)"); return $0 }
        let d3 = t.f2(11).addCallback { t.out.append("final callback of f2, result = \($0)"); return $0 }
        var stopped = false
        deferredList([d1, d2, d3]).addObserver { _ in stopped = true }
        #expect(t.out.isEmpty)
        t.clock.advance(by: .seconds(1))
        t.clock.advance(by: .seconds(1))
        #expect(stopped)
        #expect(
            t.out == [
                "I finally fired, with value Test",
                "f1 called with 44",
                "f1 called with 33",
                "f2 called with 11",
                "I finally fired, with value 44",
                "final callback of f1, result = 44",
                "I finally fired, with value 33",
                "final callback of f1, result = 33",
                "I finally fired, with value 11",
                "final callback of f2, result = 11",
            ])
    }

    @Test("Once set up, calls run at once with the resource")
    func readyRunsAtOnce() {
        let init_ = DeferredInitialization { succeed("db") }
        var ran: [String] = []
        let d = init_.whenReady { db -> Deferred<Int> in
            ran.append(db)
            return succeed(1)
        }
        #expect(ran == ["db"])
        #expect(successResult(of: d) == 1)
        #expect(init_.isReady)
    }

    @Test("The 2008 metaclass's __instantiate__: ready() fires with the set-up's result")
    func metaclassInstantiate() {
        let setUp = Deferred<String>()
        let init_ = DeferredInitialization { setUp }
        let instantiated = init_.ready()
        expectNoResult(instantiated)
        try? setUp.callback("table created")
        #expect(successResult(of: instantiated) == "table created")
    }

    @Test("A set-up failure fails every queued call; later calls fail at once; start() re-tries")
    func failureAndRetry() {
        var attempts: [Deferred<String>] = []
        let init_ = DeferredInitialization {
            let d = Deferred<String>()
            attempts.append(d)
            return d
        }
        var ran = 0
        let calls = (0..<3).map { _ in
            init_.whenReady { _ -> Deferred<Int> in
                ran += 1
                return succeed(1)
            }
        }
        try? attempts[0].errback(MemoBoom())
        for c in calls { #expect(failureResult(of: c, as: MemoBoom.self) == MemoBoom()) }
        #expect(failureResult(of: init_.whenReady { _ in succeed(1) }, as: MemoBoom.self) == MemoBoom())
        #expect(ran == 0)
        init_.start()
        let later = init_.whenReady { s in succeed(s) }
        try? attempts[1].callback("up")
        #expect(successResult(of: later) == "up")
        #expect(attempts.count == 2)
    }

    @Test("With retriesOnDemand a call after a failure starts the set-up again and waits for it")
    func retriesOnDemand() {
        var attempts: [Deferred<String>] = []
        let init_ = DeferredInitialization(retriesOnDemand: true) {
            let d = Deferred<String>()
            attempts.append(d)
            return d
        }
        init_.start()
        try? attempts[0].errback(MemoBoom())
        let call = init_.whenReady { s in succeed(s) }
        #expect(attempts.count == 2)
        expectNoResult(call)
        try? attempts[1].callback("up")
        #expect(successResult(of: call) == "up")
    }

    @Test("A queued call that is cancelled leaves the queue and its body never runs")
    func cancelQueued() {
        let setUp = Deferred<Void>()
        let init_ = DeferredInitialization { setUp }
        var ran: [Int] = []
        let a = init_.whenReady { _ -> Deferred<Int> in ran.append(1); return succeed(1) }
        let b = init_.whenReady { _ -> Deferred<Int> in ran.append(2); return succeed(2) }
        a.cancel()
        #expect(failureResult(of: a, as: CancelledError.self) != nil)
        #expect(init_.queuedCount == 1)
        try? setUp.callback(())
        #expect(ran == [2])
        #expect(successResult(of: b) == 2)
    }

    @Test("update() before the set-up finished completes it; the late set-up result is ignored")
    func updateCompletes() {
        let setUp = Deferred<String>()
        let init_ = DeferredInitialization { setUp }
        let call = init_.whenReady { s in succeed(s) }
        init_.update("given")
        #expect(successResult(of: call) == "given")
        try? setUp.callback("late")
        #expect(init_.resource == "given")
    }
}
