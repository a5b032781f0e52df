import XformCore

/// How long to wait before each attempt of a ``RetryingCall``: a pure policy, not a timer.
///
/// A `Backoff` answers one question, ``delay(forAttempt:elapsed:)``: "attempt number `n` is about
/// to be made; how long do we wait first, or do we give up?" It is also a `Sequence` of those
/// delays, one element per attempt, so it can be inspected, printed or fed to other code the way
/// txretry's `simpleBackoffIterator` was.
///
/// **Attempts.** Attempts are counted from 0, and *every* attempt counts, the first one included.
/// Each delay precedes one attempt, exactly as each value of txretry's iterator preceded one call:
/// a backoff with `maxAttempts: 10` yields 10 delays and allows 10 calls, that is 1 call and at
/// most 9 retries.
///
/// **The default** is txretry's `simpleBackoffIterator()` exactly: `0` (the first attempt is made
/// at once, txretry's `now=True`), then 0.01 s, doubling each time, each value capped at 120 s,
/// 10 values in all:
/// `0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56` seconds. No jitter, no time cap.
///
/// **Exponential shape.** The `k`-th non-zero delay (counting from 0) is
/// `min(initialDelay * factor^k, maxDelay)`; so the first non-zero delay is `initialDelay` itself,
/// never `initialDelay * factor` (the mistake fixed in twisted#12479). With `now: true` attempt 0
/// waits 0 and attempt `n` waits the `(n-1)`-th non-zero delay; with `now: false` attempt `n`
/// waits the `n`-th.
///
/// **Jitter** (see ``Jitter``) is applied to every non-zero delay after the `maxDelay` cap, and the
/// result is clamped again to `0...maxDelay`: `maxDelay` is a hard ceiling. A zero delay stays zero.
///
/// **Elapsed cap.** With `maxElapsed` set, an attempt after the first is given up when the time
/// already spent (`elapsed`) plus its delay would exceed `maxElapsed`, so no attempt ever *starts*
/// later than `maxElapsed` after the start. The first attempt is always made. The cap does not
/// bound an attempt in flight: give the operation its own timeout (``Deferred/addTimeout(_:clock:)``).
public struct Backoff: Sendable, Sequence {
    /// The shape of the delays before jitter and caps.
    public enum Schedule: Sendable, Equatable {
        /// `initialDelay * factor^k`, preceded by one zero delay when `now` is true.
        case exponential(initialDelay: Duration, factor: Double, now: Bool)
        /// These delays, in this order, one per attempt (the first precedes the first attempt).
        case delays([Duration])
    }

    /// Why ``delay(forAttempt:elapsed:)`` gave up.
    public enum Exhaustion: Sendable, Equatable {
        /// `maxAttempts` attempts were made (or a custom sequence ran out).
        case attempts
        /// The next attempt would start later than `maxElapsed` after the start.
        case elapsed
    }

    /// The raw shape of the delays.
    public let schedule: Schedule
    /// The largest delay ever returned; nil for no cap (custom sequences only). Default 120 s.
    public var maxDelay: Duration?
    /// The most attempts, the first included; nil for no limit other than the schedule's and
    /// `maxElapsed`. Default 10.
    public var maxAttempts: Int?
    /// The latest moment, measured from the start, at which an attempt may begin; nil for no cap.
    public var maxElapsed: Duration?
    /// Randomisation of the delays. Default ``Jitter/none``.
    public var jitter: Jitter

    /// Creates an exponential backoff; the defaults are txretry's `simpleBackoffIterator()`.
    ///
    /// - Parameters:
    ///   - initialDelay: the first non-zero delay (default 0.01 s).
    ///   - factor: what each delay is multiplied by to give the next (default 2; must be > 0).
    ///   - maxDelay: the cap on every delay (default 120 s).
    ///   - maxAttempts: the most attempts, the first included (default 10; nil for unlimited).
    ///   - now: whether the first attempt is made at once, with a delay of zero (default true).
    ///   - jitter: how delays are randomised (default none).
    ///   - maxElapsed: the cap on the time from the start to the beginning of an attempt.
    public init(
        initialDelay: Duration = .milliseconds(10),
        factor: Double = 2,
        maxDelay: Duration = .seconds(120),
        maxAttempts: Int? = 10,
        now: Bool = true,
        jitter: Jitter = .none,
        maxElapsed: Duration? = nil
    ) {
        precondition(initialDelay >= .zero, "Backoff: initialDelay must not be negative")
        precondition(factor > 0 && factor.isFinite, "Backoff: factor must be positive and finite")
        precondition(maxDelay >= .zero, "Backoff: maxDelay must not be negative")
        precondition(maxAttempts.map { $0 >= 1 } ?? true, "Backoff: maxAttempts must be at least 1")
        self.schedule = .exponential(initialDelay: initialDelay, factor: factor, now: now)
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
        self.maxElapsed = maxElapsed
        self.jitter = jitter
    }

    init(schedule: Schedule, maxDelay: Duration?, maxAttempts: Int?, maxElapsed: Duration?, jitter: Jitter) {
        self.schedule = schedule
        self.maxDelay = maxDelay
        self.maxAttempts = maxAttempts
        self.maxElapsed = maxElapsed
        self.jitter = jitter
    }

    /// txretry's `simpleBackoffIterator()`: 0, then 0.01 s doubling, capped at 120 s, 10 attempts.
    public static var `default`: Backoff { Backoff() }

    /// A backoff that makes exactly one attempt, at once: no retries.
    public static var once: Backoff { Backoff(maxAttempts: 1) }

    /// A backoff that waits exactly these delays, one before each attempt (so
    /// `sequence([0, 1, 1])` means: call now, then retry after 1 s, then once more after 1 s).
    ///
    /// Jitter, `maxDelay` and `maxElapsed` still apply when given. `delays` must not be empty and
    /// must not hold negative durations.
    public static func sequence(
        _ delays: [Duration], maxDelay: Duration? = nil, jitter: Jitter = .none, maxElapsed: Duration? = nil
    ) -> Backoff {
        precondition(!delays.isEmpty, "Backoff.sequence needs at least one delay")
        precondition(delays.allSatisfy { $0 >= .zero }, "Backoff.sequence: delays must not be negative")
        return Backoff(
            schedule: .delays(delays), maxDelay: maxDelay, maxAttempts: nil, maxElapsed: maxElapsed,
            jitter: jitter)
    }

    /// Returns a copy with other jitter.
    public func jittered(_ jitter: Jitter) -> Backoff {
        var copy = self
        copy.jitter = jitter
        return copy
    }

    /// Returns a copy whose attempts may not begin later than `maxElapsed` after the start.
    public func limited(toElapsed maxElapsed: Duration) -> Backoff {
        var copy = self
        copy.maxElapsed = maxElapsed
        return copy
    }

    // MARK: The policy

    /// The delay before attempt number `attempt`, or nil when that attempt must not be made.
    ///
    /// Pure apart from the jitter's random source (none by default; inject a fixed one to make
    /// it fully deterministic).
    ///
    /// - Parameters:
    ///   - attempt: the attempt about to be made, counted from 0 (0 is the first call).
    ///   - elapsed: the time already spent since the start (only consulted with `maxElapsed`).
    /// - Returns: the delay to wait before the attempt, or nil when attempts are used up or the
    ///   attempt would begin after `maxElapsed`.
    public func delay(forAttempt attempt: Int, elapsed: Duration = .zero) -> Duration? {
        if case .wait(let d) = decide(attempt: attempt, elapsed: elapsed) { return d }
        return nil
    }

    /// What ``delay(forAttempt:elapsed:)`` decided, with the reason when it gave up.
    public enum Decision: Sendable, Equatable {
        /// Wait this long, then make the attempt.
        case wait(Duration)
        /// Make no more attempts.
        case stop(Exhaustion)
    }

    /// Like ``delay(forAttempt:elapsed:)``, but says why it gave up.
    public func decide(attempt: Int, elapsed: Duration = .zero) -> Decision {
        precondition(attempt >= 0, "Backoff: attempts are counted from 0")
        if let maxAttempts, attempt >= maxAttempts { return .stop(.attempts) }
        guard let base = baseDelay(forAttempt: attempt) else { return .stop(.attempts) }
        var d = base
        if let maxDelay, d > maxDelay { d = maxDelay }
        if d > .zero { d = jitter.apply(to: d) }
        if d < .zero { d = .zero }
        if let maxDelay, d > maxDelay { d = maxDelay }
        if attempt > 0, let maxElapsed, elapsed + d > maxElapsed { return .stop(.elapsed) }
        return .wait(d)
    }

    /// The delay before `attempt` from the schedule alone (before caps and jitter), or nil when a
    /// custom sequence has run out. Never overflows: a huge exponential value saturates at
    /// `maxDelay`.
    func baseDelay(forAttempt attempt: Int) -> Duration? {
        switch schedule {
        case .delays(let delays):
            return attempt < delays.count ? delays[attempt] : nil
        case .exponential(let initial, let factor, let now):
            if now && attempt == 0 { return .zero }
            let k = now ? attempt - 1 : attempt
            if initial == .zero { return .zero }
            let multiplier = power(factor, k)
            let cap = maxDelay ?? .seconds(Int64.max / 4)
            // Compare in seconds first: `initial * multiplier` may not fit in a Duration.
            guard initial.seconds * multiplier < cap.seconds else { return cap }
            return initial * multiplier
        }
    }

    // MARK: Sequence

    /// Walks the delays in order, feeding each one's sum into the elapsed-time check (as if every
    /// attempt took no time).
    public struct Iterator: IteratorProtocol {
        let backoff: Backoff
        var attempt = 0
        var elapsed: Duration = .zero
        var done = false

        /// The delay before the next attempt, or nil when no attempt remains.
        public mutating func next() -> Duration? {
            if done { return nil }
            guard let d = backoff.delay(forAttempt: attempt, elapsed: elapsed) else {
                done = true
                return nil
            }
            attempt += 1
            elapsed += d
            return d
        }
    }

    /// Returns an iterator over the delays, one per attempt.
    public func makeIterator() -> Iterator { Iterator(backoff: self) }
}

/// `x` to the power of a non-negative integer, by squaring (no Foundation needed). Overflows to
/// infinity, never traps.
func power(_ x: Double, _ n: Int) -> Double {
    var result = 1.0
    var base = x
    var e = n
    while e > 0 {
        if e & 1 == 1 { result *= base }
        e >>= 1
        if e > 0 { base *= base }
    }
    return result
}

/// How a ``Backoff`` randomises its delays, with an injectable source of randomness.
///
/// The source is a `@Sendable () -> Double` returning values in `[0, 1)` (values outside are
/// clamped to `[0, 1]`). Inject a fixed or scripted source in tests to get exact delays. The
/// jittered delay `j` of a (capped) delay `d`, with `r` drawn from the source:
///
/// - ``none``: `j = d`.
/// - ``full(random:)``: `j = d * r` ("full jitter": anywhere in `[0, d)`).
/// - ``proportional(_:random:)``: `j = d * (1 + fraction * (2r - 1))` (within `±fraction` of `d`).
/// - ``additive(_:random:)``: `j = d + spread * r` (Twisted's `backoffPolicy` adds `jitter()`).
///
/// The result is then clamped to `0...maxDelay` by the ``Backoff``.
public struct Jitter: Sendable {
    /// A source of uniformly distributed values in `[0, 1)`.
    public typealias RandomSource = @Sendable () -> Double

    enum Kind: Sendable {
        case none
        case full
        case proportional(Double)
        case additive(Duration)
    }

    let kind: Kind
    let random: RandomSource

    /// The system's random numbers, uniform in `[0, 1)`.
    public static let systemRandom: RandomSource = { Double.random(in: 0..<1) }

    /// No jitter: delays are exactly the schedule's.
    public static let none = Jitter(kind: .none, random: { 0 })

    /// Full jitter: each delay `d` becomes `d * r`, anywhere in `[0, d)`.
    public static func full(random: @escaping RandomSource = systemRandom) -> Jitter {
        Jitter(kind: .full, random: random)
    }

    /// Proportional jitter: each delay `d` becomes `d * (1 + fraction * (2r - 1))`, within
    /// `±fraction` of `d`. `fraction` must be in `0...1`.
    public static func proportional(_ fraction: Double, random: @escaping RandomSource = systemRandom) -> Jitter {
        precondition(fraction >= 0 && fraction <= 1, "Jitter.proportional: fraction must be in 0...1")
        return Jitter(kind: .proportional(fraction), random: random)
    }

    /// Additive jitter: each delay `d` becomes `d + spread * r`.
    public static func additive(_ spread: Duration, random: @escaping RandomSource = systemRandom) -> Jitter {
        precondition(spread >= .zero, "Jitter.additive: spread must not be negative")
        return Jitter(kind: .additive(spread), random: random)
    }

    /// Returns `delay` randomised by this jitter (before the caller's clamping).
    public func apply(to delay: Duration) -> Duration {
        switch kind {
        case .none:
            return delay
        case .full:
            return delay * draw()
        case .proportional(let fraction):
            return delay * (1 + fraction * (2 * draw() - 1))
        case .additive(let spread):
            return delay + spread * draw()
        }
    }

    func draw() -> Double {
        let r = random()
        if !(r >= 0) { return 0 }  // also catches NaN
        return r > 1 ? 1 : r
    }
}
