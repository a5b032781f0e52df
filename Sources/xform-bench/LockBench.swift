import Dispatch
import Synchronization
import XformCore

/// `xform-bench locks`: the cost of one `withLock` round trip, `Synchronization.Mutex` against
/// ``PthreadMutex`` (the lock TSan can check), uncontended on one thread and contended by two.
/// Prints nanoseconds per round trip, medians of 5 repetitions; asserts nothing.
enum LockBench {
    static let rounds = 5_000_000

    static func run() {
        let mutex = Mutex(0)
        let pthread = PthreadMutex(0)
        TransformBench.emit("lock round trip, ns (median of 5)   uncontended   2 threads")
        let mu = TransformBench.measure(iterations: rounds, repetitions: 5) { mutex.withLock { $0 &+= 1 } }
        let pu = TransformBench.measure(iterations: rounds, repetitions: 5) { pthread.withLock { $0 &+= 1 } }
        let mc = contended { mutex.withLock { $0 &+= 1 } }
        let pc = contended { pthread.withLock { $0 &+= 1 } }
        TransformBench.emit("Synchronization.Mutex                 \(String(format2: mu))          \(String(format2: mc))")
        TransformBench.emit("PthreadMutex                          \(String(format2: pu))          \(String(format2: pc))")
    }

    /// Two threads each doing `rounds / 2` round trips; nanoseconds per round trip.
    static func contended(_ body: @escaping @Sendable () -> Void) -> Double {
        var samples: [Double] = []
        for _ in 0..<5 {
            let clock = ContinuousClock()
            let start = clock.now
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                for _ in 0..<(rounds / 2) { body() }
            }
            let elapsed = clock.now - start
            let (s, atto) = elapsed.components
            samples.append((Double(s) * 1e9 + Double(atto) / 1e9) / Double(rounds))
        }
        samples.sort()
        return samples[2]
    }
}
