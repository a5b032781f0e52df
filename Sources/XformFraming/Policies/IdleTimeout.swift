import XformCore

/// Drops idle connections: calls `onTimeout` once no activity was recorded for `timeout`
/// (Twisted's `policies.TimeoutMixin`, as a helper a protocol owns rather than a mixin).
///
/// A protocol creates one in ``ConnectionProtocol/connectionMade()``, calls ``touch()`` whenever
/// something happens (data received, a reply written) and ``cancel()`` in
/// ``ConnectionProtocol/connectionLost(reason:)``.
///
/// ``touch()`` is cheap enough for the hot path: it only records the clock's current time. The
/// one scheduled call is not moved on every packet; when it fires it checks the last activity and,
/// if the connection was not idle for the whole timeout, re-arms itself for the remaining time.
/// The timeout is therefore exact, at the cost of at most one extra wake-up per timeout period
/// of an active connection.
///
/// `onTimeout` is released once it has run or the timer was cancelled, which breaks the usual
/// cycle of a protocol owning its timer whose callback refers to the protocol.
public final class IdleTimeout {
    /// The clock the timer runs on.
    public let clock: any ReactorTime
    /// How long a connection may stay idle.
    public private(set) var timeout: Duration
    private var onTimeout: (() -> Void)?
    // Unchecked: written on every read (a checked access costs about 76 instructions,
    // measured); a plain value, and no access spans a call.
    @exclusivity(unchecked) private var lastActivity: Duration
    private var call: (any DelayedCall)?

    /// Starts timing at once: `onTimeout` runs after `timeout` without a ``touch()``.
    public init(clock: any ReactorTime, timeout: Duration, onTimeout: @escaping () -> Void) {
        self.clock = clock
        self.timeout = timeout
        self.onTimeout = onTimeout
        self.lastActivity = clock.now
        arm(after: timeout)
    }

    /// Records activity now: the idle period starts again.
    @inline(__always)
    public func touch() {
        lastActivity = clock.now
    }

    /// True until the timeout fired or was cancelled.
    public var isActive: Bool { onTimeout != nil }

    /// Stops the timer for good and releases `onTimeout`. Safe to call more than once.
    public func cancel() {
        call?.cancel()
        call = nil
        onTimeout = nil
    }

    /// Changes the timeout; the current idle period is measured against the new value.
    public func setTimeout(_ newTimeout: Duration) {
        guard isActive else { return }
        timeout = newTimeout
        call?.cancel()
        let remaining = lastActivity + newTimeout - clock.now
        arm(after: remaining)
    }

    private func arm(after delay: Duration) {
        call = clock.callLater(delay) { [weak self] in self?.fired() }
    }

    private func fired() {
        guard onTimeout != nil else { return }
        let idle = clock.now - lastActivity
        if idle >= timeout {
            let action = onTimeout
            call = nil
            onTimeout = nil
            action?()
        } else {
            arm(after: timeout - idle)
        }
    }
}
