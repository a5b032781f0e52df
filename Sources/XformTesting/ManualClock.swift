import XformCore

/// A clock that moves only when told to: Twisted's `task.Clock`.
///
/// Code under test schedules work with ``callLater(_:_:)`` as it would on the reactor; the test
/// then calls ``advance(by:)`` to make time pass and run whatever fell due. Like the reactor it
/// stands in for, a `ManualClock` is confined to one thread.
///
/// While ``advance(by:)`` runs a call, ``now`` reads that call's deadline (time moves in steps, as
/// it would for real), so a call scheduled from inside a due call for a time not after the
/// target also runs during the same ``advance(by:)``.
public final class ManualClock: ReactorTime {
    /// The current time on this clock's scale. Starts at zero.
    public private(set) var now: Duration

    /// Active calls, ordered by (deadline, scheduling order).
    var calls: [ManualDelayedCall] = []
    var nextSequence: UInt64 = 0
    /// Pending ``schedule(_:atNanoseconds:)`` calls by token sequence number.
    var targets: [UInt64: ManualDelayedCall] = [:]
    var advancing = false

    /// Creates a clock reading `start`.
    public init(start: Duration = .zero) {
        self.now = start
    }

    /// Schedules `work` to run once the clock has been advanced by `delay` (a zero or negative
    /// delay runs at the next ``advance(by:)``, even by zero).
    ///
    /// - Returns: the call, to cancel or reset.
    @discardableResult
    public func callLater(_ delay: Duration, _ work: @escaping () -> Void) -> any DelayedCall {
        let call = ManualDelayedCall(clock: self, deadline: now + max(delay, .zero), work: work)
        insert(call)
        return call
    }

    /// Schedules `target.timerFired()` for when the clock reaches `deadline` (ordered with the
    /// ``callLater(_:_:)`` calls by deadline, then scheduling order).
    ///
    /// - Returns: the token that cancels it.
    public func schedule(_ target: any TimerTarget, atNanoseconds deadline: Int64) -> TimerToken {
        let key = nextSequence
        let call = ManualDelayedCall(clock: self, deadline: max(.nanoseconds(deadline), now), work: {})
        call.work = { [unowned self, target] in
            targets[key] = nil
            target.timerFired()
        }
        targets[key] = call
        insert(call)
        return TimerToken(slot: 0, sequence: key)
    }

    /// Withdraws a ``schedule(_:atNanoseconds:)`` call unless it ran or was cancelled already.
    public func cancelTimer(_ token: TimerToken) {
        targets.removeValue(forKey: token.sequence)?.cancel()
    }

    /// The calls still due to run, soonest first (ties in scheduling order).
    public var pendingCalls: [any DelayedCall] { calls }

    /// The deadline of the soonest pending call, if any.
    public var nextDeadline: Duration? { calls.first?.deadline }

    /// Moves time forward by `amount`, running every call due by the new time in deadline order
    /// (calls due at the same instant run in the order they were scheduled).
    ///
    /// - Precondition: `amount` is not negative, and this is not called from a call it runs.
    public func advance(by amount: Duration) {
        precondition(amount >= .zero, "ManualClock cannot go back in time")
        advance(to: now + amount)
    }

    /// Moves time forward to `target` (if later than ``now``), running the calls due by then.
    public func advance(to target: Duration) {
        precondition(!advancing, "ManualClock.advance called re-entrantly from a scheduled call")
        advancing = true
        defer { advancing = false }
        while let first = calls.first, first.deadline <= target {
            calls.removeFirst()
            if first.deadline > now { now = first.deadline }
            first.run()
        }
        if target > now { now = target }
    }

    /// Advances by each amount in turn (Twisted's `Clock.pump`).
    public func pump(_ amounts: [Duration]) {
        for a in amounts { advance(by: a) }
    }

    /// Advances to each pending deadline until nothing is scheduled, running at most `limit` calls.
    ///
    /// - Returns: the number of calls run.
    @discardableResult
    public func runUntilIdle(limit: Int = 100_000) -> Int {
        var ran = 0
        while let first = calls.first, ran < limit {
            calls.removeFirst()
            if first.deadline > now { now = first.deadline }
            first.run()
            ran += 1
        }
        return ran
    }

    func insert(_ call: ManualDelayedCall) {
        call.sequence = nextSequence
        nextSequence &+= 1
        // Binary search for the first element ordered after `call`.
        var lo = 0
        var hi = calls.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if calls[mid].orders(before: call) { lo = mid + 1 } else { hi = mid }
        }
        calls.insert(call, at: lo)
    }

    func remove(_ call: ManualDelayedCall) {
        if let i = calls.firstIndex(where: { $0 === call }) { calls.remove(at: i) }
    }
}

/// A call scheduled on a ``ManualClock``.
final class ManualDelayedCall: DelayedCall, CustomStringConvertible {
    unowned let clock: ManualClock
    private(set) var deadline: Duration
    var sequence: UInt64 = 0
    var work: (() -> Void)?

    init(clock: ManualClock, deadline: Duration, work: @escaping () -> Void) {
        self.clock = clock
        self.deadline = deadline
        self.work = work
    }

    var isActive: Bool { work != nil }

    func orders(before other: ManualDelayedCall) -> Bool {
        deadline < other.deadline || (deadline == other.deadline && sequence < other.sequence)
    }

    func run() {
        guard let w = work else { return }
        work = nil  // released before running: the call is no longer active while it runs
        w()
    }

    func cancel() {
        guard work != nil else { return }
        work = nil
        clock.remove(self)
    }

    func reset(_ delay: Duration) {
        guard work != nil else { return }
        clock.remove(self)
        deadline = clock.now + max(delay, .zero)
        clock.insert(self)
    }

    var description: String { "DelayedCall(deadline: \(deadline), active: \(isActive))" }
}
