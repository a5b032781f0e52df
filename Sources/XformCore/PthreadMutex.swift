#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a POSIX mutex: the lock for state shared between threads that Thread
/// Sanitizer can check.
///
/// `Synchronization.Mutex` on Linux parks waiters with raw futex calls TSan does not model, so
/// TSan reports every access it guards as a race and runs its contended paths extremely
/// slowly (issue 10: 60,000 lock round trips did not finish in 120 s). `pthread_mutex_lock` is
/// intercepted by TSan, so code using this type can be checked. Cost: see the README's
/// sanitizer section (`xform-bench locks`).
///
/// The API mirrors `Mutex.withLock`. Not reentrant: calling `withLock` from inside `body` on the
/// same lock deadlocks.
public final class PthreadMutex<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is only read or written inside withLock, under `mutex`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    // Only touched under `mutex`, so the runtime exclusivity check is redundant; it cost about
    // a third of each round trip in `xform-bench locks`.
    @exclusivity(unchecked) private var value: Value

    /// Makes a lock holding `value`.
    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init failed: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value; returns what `body` returns.
    @inline(__always)
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
