// DeferredMemoizer: Terry Jones's "Promises are first-class objects for function calls" (seed 001)
// and the single-flight cache of Part 14's exercises.
import Testing
import XformCore
import XformTesting

/// A function whose calls are recorded and fired by hand.
final class ManualFunction<Key: Hashable> {
    var calls: [Key] = []
    var pending: [(Key, Deferred<String>)] = []
    var cancelled: [Key] = []

    func call(_ key: Key) -> Deferred<String> {
        calls.append(key)
        let d = Deferred<String>(canceller: { [unowned self] d in
            cancelled.append(key)
            pending.removeAll { $0.1 === d }
        })
        pending.append((key, d))
        return d
    }

    func fire(_ key: Key, _ value: String) {
        let i = pending.firstIndex { $0.0 == key }!
        try? pending.remove(at: i).1.callback(value)
    }

    func fail(_ key: Key, _ error: any Error) {
        let i = pending.firstIndex { $0.0 == key }!
        try? pending.remove(at: i).1.errback(error)
    }
}

struct MemoBoom: Error, Equatable {}

@Suite("DeferredMemoizer")
struct DeferredMemoizerTests {
    @Test("The post's memoize: calls with X made while fn(X) runs, and after, call fn(X) once")
    func postExample() {
        // var memoize = function(fn) { ... promises[arg] = $.when(fn(arg)).promise() ... }
        let fn = ManualFunction<String>()
        let memo = DeferredMemoizer(fn.call)
        let first = memo.call("X")
        let second = memo.call("X")
        let third = memo.call("X")
        #expect(fn.calls == ["X"])
        expectNoResult(first)
        fn.fire("X", "fn(X)")
        #expect([first, second, third].map { successResult(of: $0) } == ["fn(X)", "fn(X)", "fn(X)"])
        // "Time is not an issue here": a call after completion gets the same result, no call.
        #expect(successResult(of: memo.call("X")) == "fn(X)")
        #expect(fn.calls == ["X"])
        #expect(memo.statistics.misses == 1)
        #expect(memo.statistics.joins == 2)
        #expect(memo.statistics.hits == 1)
        // Another argument is another call.
        _ = memo.call("Y")
        #expect(fn.calls == ["X", "Y"])
    }

    @Test("Each caller gets its own Deferred: one caller's callbacks do not change another's value")
    func ownDeferreds() {
        let fn = ManualFunction<Int>()
        let memo = DeferredMemoizer(fn.call)
        let a = memo.call(1)
        let b = memo.call(1)
        a.addCallback { _ in "changed by a" }
        fn.fire(1, "v")
        #expect(successResult(of: a) == "changed by a")
        #expect(successResult(of: b) == "v")
    }

    @Test("A failure fans out to every waiter, is not remembered, and the next call tries again")
    func failureNotRemembered() {
        let fn = ManualFunction<Int>()
        let memo = DeferredMemoizer(fn.call)
        let waiters = (0..<3).map { _ in memo.call(7) }
        fn.fail(7, MemoBoom())
        for w in waiters { #expect(failureResult(of: w, as: MemoBoom.self) == MemoBoom()) }
        #expect(memo.count == 0)
        let retry = memo.call(7)
        #expect(fn.calls == [7, 7])
        fn.fire(7, "ok")
        #expect(successResult(of: retry) == "ok")
        #expect(memo.statistics.failures == 1)
    }

    @Test("mapFailure turns a failure into what every waiter fails with, once per underlying call")
    func mappedFailure() {
        struct Mapped: Error, Equatable { let key: Int }
        let fn = ManualFunction<Int>()
        let memo = DeferredMemoizer(fn.call)
        var mappings = 0
        memo.mapFailure = { key, error in
            mappings += 1
            return error is MemoBoom ? Mapped(key: key) : error
        }
        let waiters = (0..<3).map { _ in memo.call(7) }
        fn.fail(7, MemoBoom())
        for w in waiters { #expect(failureResult(of: w, as: Mapped.self) == Mapped(key: 7)) }
        #expect(mappings == 1)
        let ok = memo.call(8)
        fn.fire(8, "fine")
        #expect(successResult(of: ok) == "fine")
        #expect(mappings == 1)
    }

    @Test("Cancelling one of two waiters detaches it only; cancelling the last cancels the call")
    func cancelLastWaiter() {
        let fn = ManualFunction<Int>()
        let memo = DeferredMemoizer(fn.call)
        var cancelledKeys: [Int] = []
        memo.onCancel = { cancelledKeys.append($0) }
        let a = memo.call(1)
        let b = memo.call(1)
        a.cancel()
        #expect(failureResult(of: a, as: CancelledError.self) != nil)
        #expect(fn.cancelled.isEmpty)
        #expect(memo.waiterCount(forKey: 1) == 1)
        b.cancel()
        #expect(failureResult(of: b, as: CancelledError.self) != nil)
        #expect(fn.cancelled == [1])
        #expect(cancelledKeys == [1])
        #expect(memo.inFlightCount == 0)
        #expect(memo.statistics.cancellations == 1)
        // The next call starts afresh.
        let c = memo.call(1)
        #expect(fn.calls == [1, 1])
        fn.fire(1, "v")
        #expect(successResult(of: c) == "v")
    }

    @Test("While one waiter remains the call goes on and that waiter gets the value")
    func oneWaiterRemains() {
        let fn = ManualFunction<Int>()
        let memo = DeferredMemoizer(fn.call)
        let a = memo.call(1)
        let b = memo.call(1)
        b.cancel()
        _ = failureResult(of: b)
        fn.fire(1, "v")
        #expect(successResult(of: a) == "v")
        #expect(fn.cancelled.isEmpty)
        #expect(memo.statistics.cancellations == 0)
    }

    @Test("A synchronous (already fired) function result is cached and returned")
    func synchronousResult() {
        var calls = 0
        let memo = DeferredMemoizer<Int, Int> { k in
            calls += 1
            return succeed(k * 2)
        }
        #expect(successResult(of: memo.call(21)) == 42)
        #expect(successResult(of: memo.call(21)) == 42)
        #expect(calls == 1)
    }

    @Test("Least recently used values are evicted first to stay under the cost bound")
    func lruEviction() {
        var evicted: [(String, DeferredMemoizer<String, String>.EvictionReason)] = []
        let memo = DeferredMemoizer<String, String>(maximumCost: 10, cost: { k, v in k.utf8.count + v.utf8.count }) { _ in
            succeed("vvv")
        }
        memo.onEviction = { k, _, reason in evicted.append((k, reason)) }
        _ = memo.call("a")  // cost 4
        _ = memo.call("b")  // cost 4, total 8
        #expect(memo.cachedValue(forKey: "a") == "vvv")  // a is now the most recent
        _ = memo.call("c")  // needs 4: b (least recent) goes
        #expect(evicted.map(\.0) == ["b"])
        #expect(evicted.map(\.1) == [.capacity])
        #expect(memo.contains("a") && memo.contains("c") && !memo.contains("b"))
        #expect(memo.totalCost == 8)
        #expect(memo.statistics.evictions == 1)
    }

    @Test("A value larger than the whole bound is not cached; a zero bound caches nothing")
    func tooBigAndDisabled() {
        var calls = 0
        let memo = DeferredMemoizer<Int, Int>(maximumCost: 5, cost: { _, v in v }) { k in
            calls += 1
            return succeed(k)
        }
        _ = memo.call(9)
        _ = memo.call(9)
        #expect(calls == 2)
        let off = DeferredMemoizer<Int, Int>(maximumCost: 0) { k in
            calls += 1
            return succeed(k)
        }
        _ = off.call(1)
        _ = off.call(1)
        #expect(calls == 4)
        #expect(off.count == 0)
    }

    @Test("A value older than the time to live is dropped on the manual clock and fetched again")
    func ttlExpiry() {
        let clock = ManualClock()
        let fn = ManualFunction<Int>()
        let memo = DeferredMemoizer(timeToLive: .seconds(7200), clock: clock, fn.call)
        _ = memo.call(1)
        fn.fire(1, "poem")
        clock.advance(by: .seconds(7199))
        #expect(successResult(of: memo.call(1)) == "poem")
        clock.advance(by: .seconds(1))
        let again = memo.call(1)
        #expect(fn.calls == [1, 1])
        expectNoResult(again)
        #expect(memo.statistics.expirations == 1)
        fn.fire(1, "new poem")
        #expect(successResult(of: again) == "new poem")
    }

    @Test("A waiter's callback that calls again with the same key finds the value cached")
    func reentrantCall() {
        let fn = ManualFunction<Int>()
        let memo = DeferredMemoizer(fn.call)
        var inner: Deferred<String>?
        memo.call(1).addCallback { v in
            inner = memo.call(1)
            return v
        }
        fn.fire(1, "v")
        #expect(successResult(of: inner!) == "v")
        #expect(fn.calls == [1])
    }
}
