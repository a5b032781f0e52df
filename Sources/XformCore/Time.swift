/// Scheduling by time: what the reactor offers and a manual clock fakes (Twisted's `IReactorTime`).
///
/// Everything that waits takes a `ReactorTime` as a parameter, never a global, so tests can drive
/// time by hand. Implementations are confined to the reactor thread.
public protocol ReactorTime: AnyObject {
    /// Monotonic time since an arbitrary origin.
    var now: Duration { get }

    /// ``now`` in nanoseconds: the scale a connection's session keeps its times on and
    /// ``schedule(_:atNanoseconds:)`` takes (64-bit arithmetic, where a `Duration` is 128-bit).
    var nowNanoseconds: Int64 { get }

    /// Runs `work` on the reactor thread after `delay` (at once-ish if `delay` is zero or less).
    /// Calls due at the same instant run in the order they were scheduled.
    ///
    /// - Returns: a handle to cancel or reschedule the call.
    @discardableResult
    func callLater(_ delay: Duration, _ work: @escaping () -> Void) -> any DelayedCall

    /// Calls `target`'s ``TimerTarget/timerFired()`` on the reactor thread once `deadline` (in
    /// nanoseconds, on the ``nowNanoseconds`` scale) has passed. The lean form of ``callLater(_:_:)`` for one timer per
    /// connection (an idle timeout): no closure and no handle object, so an idle connection
    /// holds no timer memory beyond the returned token. The clock holds `target` strongly
    /// until the call runs or is cancelled.
    ///
    /// - Returns: the token that cancels the call (``cancelTimer(_:)``).
    func schedule(_ target: any TimerTarget, atNanoseconds deadline: Int64) -> TimerToken

    /// Withdraws a call made with ``schedule(_:atNanoseconds:)``; does nothing once it ran, was
    /// cancelled, or for ``TimerToken/none``.
    func cancelTimer(_ token: TimerToken)
}

extension ReactorTime {
    /// ``now`` converted (clocks that keep a `Duration`: the manual clock of tests).
    public var nowNanoseconds: Int64 {
        let c = now.components
        return c.seconds &* 1_000_000_000 &+ c.attoseconds / 1_000_000_000
    }
}

/// What a ``ReactorTime/schedule(_:atNanoseconds:)`` call runs: usually a connection's protocol.
public protocol TimerTarget: AnyObject {
    /// The scheduled deadline passed.
    func timerFired()
}

/// A pending ``ReactorTime/schedule(_:atNanoseconds:)`` call: a plain value naming the clock's
/// slot and the call's sequence number, stale (and harmless to cancel) once the call ran.
///
/// 12 bytes (the sequence first): a 32-bit field declared after a token fills its last word.
public struct TimerToken: Equatable, Sendable {
    /// The call's sequence number: the slot holds this call while it carries the same one.
    public let sequence: UInt64
    /// The clock's slot for the call.
    public let slot: Int32

    /// No call: what a holder keeps while nothing is scheduled (an optional costs a word more).
    public static let none = TimerToken(slot: -1, sequence: .max)

    /// True unless this is ``none``.
    public var isSet: Bool { slot >= 0 }

    /// A token for the call in `slot` with sequence number `sequence` (for clock implementations).
    public init(slot: Int32, sequence: UInt64) {
        self.slot = slot
        self.sequence = sequence
    }
}

/// A call scheduled with ``ReactorTime/callLater(_:_:)``.
public protocol DelayedCall: AnyObject {
    /// When the call is due, on the scheduler's ``ReactorTime/now`` scale.
    var deadline: Duration { get }
    /// True until the call has run or was cancelled.
    var isActive: Bool { get }
    /// Stops the call from running. Cancelling an inactive call does nothing.
    func cancel()
    /// Reschedules the call to run `delay` from now.
    ///
    /// Implementations release the scheduled closure once the call has run or was cancelled.
    func reset(_ delay: Duration)
}

/// The thread-safe door into a reactor: Twisted's `callFromThread`.
///
/// This is the only part of a reactor other threads may touch. It is how async code, thread-pool
/// workers and signal handlers hand work to the reactor thread.
public protocol ReactorThreading: Sendable {
    /// Queues `work` to run on the reactor thread, waking the reactor. Never loses a call.
    func callFromThread(_ work: @escaping @Sendable () -> Void)
    /// True when the caller runs on the reactor thread.
    var isReactorThread: Bool { get }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

/// Returns a Deferred that fires with `work()`'s result after `delay` (Twisted's `deferLater`).
/// Cancelling it cancels the delayed call; it then fails with ``CancelledError``.
public func deferLater<Value>(
    _ clock: any ReactorTime, _ delay: Duration, _ work: @escaping () throws -> Value
) -> Deferred<Value> {
    var call: (any DelayedCall)?
    let d = Deferred<Value>(canceller: { _ in call?.cancel() })
    // The scheduled call keeps the Deferred alive until it runs or is cancelled; schedulers drop
    // their closure after either, which breaks the cycle through the canceller.
    call = clock.callLater(delay) {
        try? d.fire(Result { try work() })
    }
    return d
}

extension Deferred {
    /// Cancels this Deferred if it has not fired within `timeout`; the cancellation then fails it
    /// with ``TimeoutError`` (distinct from ``CancelledError``). A result that arrives in time
    /// cancels the timer. Covers only the callbacks added before this call (as in Twisted).
    ///
    /// - Returns: this Deferred.
    @discardableResult
    public func addTimeout(_ timeout: Duration, clock: any ReactorTime) -> Deferred<Value> {
        var timedOut = false
        let timer = clock.callLater(timeout) { [weak self] in
            timedOut = true
            self?.cancel()
        }
        return addCallbacks(
            { value in
                if timer.isActive { timer.cancel() }
                return value
            },
            { error in
                if timer.isActive { timer.cancel() }
                if timedOut, error is CancelledError { throw TimeoutError(timeout: timeout) }
                throw error
            })
    }
}
