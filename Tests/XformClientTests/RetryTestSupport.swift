// Helpers shared by the Backoff and RetryingCall tests.
import Synchronization
import XformClient
import XformCore
import XformTesting

/// A random source that returns the given values in turn (and then repeats the last one).
final class ScriptedRandom: Sendable {
    let values: Mutex<[Double]>
    let draws = Atomic<Int>(0)

    init(_ values: [Double]) {
        precondition(!values.isEmpty)
        self.values = Mutex(values)
    }

    var source: Jitter.RandomSource {
        { [self] in
            draws.add(1, ordering: .relaxed)
            return values.withLock { v in v.count > 1 ? v.removeFirst() : v[0] }
        }
    }
}

func ms(_ n: Int) -> Duration { .milliseconds(n) }

/// A failure that says which attempt produced it.
struct AttemptError: Error, Equatable {
    let attempt: Int
    var transient = true
}

/// Records what a Deferred fired with, taking its failure off its hands.
final class FiredResult<Value> {
    var results: [Result<Value, any Error>] = []
    init(_ d: Deferred<Value>) {
        _ = d.mapResult { [self] r in results.append(r) }
    }
    var value: Value? { if case .success(let v)? = results.first { v } else { nil } }
    var error: (any Error)? { if case .failure(let e)? = results.first { e } else { nil } }
}

/// An operation that fails its first `failures` calls (synchronously, with `AttemptError`),
/// then succeeds with `value`; it records the clock's time at each call.
final class Flaky {
    let clock: ManualClock
    let failures: Int
    let value: String
    var callTimes: [Duration] = []

    init(clock: ManualClock, failures: Int, value: String = "done") {
        self.clock = clock
        self.failures = failures
        self.value = value
    }

    func call() -> Deferred<String> {
        callTimes.append(clock.now)
        let n = callTimes.count
        if n <= failures { return fail(AttemptError(attempt: n)) }
        return succeed(value)
    }
}
