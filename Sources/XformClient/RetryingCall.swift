import XformCore

/// Calls an operation until it succeeds, waiting between attempts as a ``Backoff`` says:
/// Terry Jones's txretry `RetryingCall`, on an injected clock.
///
/// ```swift
/// let d = RetryingCall(clock: reactor, backoff: .default, shouldRetry: isTransient) {
///     proxy.xformOnce("cummingsify", poem)
/// }.start()
/// ```
///
/// Every attempt, the first included, runs from a call scheduled on the clock after the
/// backoff's delay, even when that delay is zero (txretry did the same through `deferLater`). So
/// the operation is never called from inside ``start()`` or from inside the callbacks of a previous
/// attempt, and a storm of immediate failures runs as a loop in the clock, one scheduled call per
/// attempt, never as a recursion (and the reactor can serve others between attempts).
///
/// When an attempt fails, `shouldRetry` is asked about the failure:
/// - false: the Deferred fails at once with that very failure (unwrapped), so a definitive error
///   (unknown transform, bad request) reaches the caller as it is;
/// - true: the next attempt is scheduled after the next delay; `onRetry` is told first;
/// - true, but the backoff has no attempt left (`maxAttempts` reached, or the next attempt would
///   begin after `maxElapsed`): the Deferred fails with ``RetryExhaustedError``, or with the first
///   failure itself when `exhaustion` is ``RetryExhaustion/firstFailure`` (txretry's behaviour).
///
/// Through `logger` it logs what txretry logs, at `info`: each failure it ignores (retries), and
/// running out of attempts.
///
/// Cancelling the returned Deferred cancels the pending timer or the attempt in flight (cancelling
/// its Deferred); after that the operation is not called again, and the returned Deferred fails
/// with ``CancelledError``, once.
///
/// Like a pending Deferred, a `RetryingCall` stays alive until its Deferred fires or is cancelled
/// (its timer or its attempt in flight holds it); afterwards it holds nothing. Like every Deferred
/// user, it is confined to the reactor thread.
public final class RetryingCall<Value> {
    /// One attempt: returns a Deferred for its result, or throws to fail synchronously (which
    /// counts as a failed attempt, as with `maybeDeferred`).
    public typealias Operation = () throws -> Deferred<Value>

    /// Told before each retry is scheduled: the attempt that just failed (counted from 1), its
    /// failure, and the delay before the next attempt. Meant for logging.
    public typealias RetryObserver = (_ attempt: Int, _ error: any Error, _ delay: Duration) -> Void

    enum State {
        case idle
        case waiting(any DelayedCall)
        case attempting(Deferred<Value>)
        case finished
    }

    let clock: any ReactorTime
    /// The delay policy in use.
    public let backoff: Backoff
    let shouldRetry: (any Error) -> Bool
    let onRetry: RetryObserver?
    let operation: Operation
    let logger: Logger
    let exhaustion: RetryExhaustion

    var state: State = .idle
    var result: Deferred<Value>?
    var startTime: Duration = .zero

    /// The number of attempts begun so far.
    public private(set) var attempts = 0
    /// The failure of the first failed attempt, if any. Only the first and the last failures are
    /// kept, never the whole history.
    public private(set) var firstFailure: (any Error)?
    /// The failure of the latest failed attempt, if any.
    public private(set) var lastFailure: (any Error)?

    /// Prepares a retrying call; nothing happens until ``start()``.
    ///
    /// - Parameters:
    ///   - clock: where the delays are scheduled (the reactor, or a manual clock in tests).
    ///   - backoff: the delay before each attempt and when to give up (default: txretry's
    ///     `simpleBackoffIterator`, 10 attempts).
    ///   - shouldRetry: says whether a failure is worth another attempt (txretry's
    ///     `failureTester`). The default retries every failure, as txretry did.
    ///   - onRetry: told about each retry before it is scheduled.
    ///   - logger: where ignored failures and running out of attempts are logged (txretry's
    ///     `log.msg` lines), at `info`. Default: nowhere.
    ///   - exhaustion: what the Deferred fails with when the backoff runs out.
    ///   - operation: makes one attempt.
    public init(
        clock: any ReactorTime,
        backoff: Backoff = .default,
        shouldRetry: @escaping (any Error) -> Bool = { _ in true },
        onRetry: RetryObserver? = nil,
        logger: Logger = Logger(system: "RetryingCall"),
        exhaustion: RetryExhaustion = .exhaustedError,
        operation: @escaping Operation
    ) {
        self.logger = logger
        self.exhaustion = exhaustion
        self.clock = clock
        self.backoff = backoff
        self.shouldRetry = shouldRetry
        self.onRetry = onRetry
        self.operation = operation
    }

    /// Starts trying: schedules the first attempt after the backoff's first delay.
    ///
    /// - Returns: a Deferred that fires with the first successful result; fails with the failure
    ///   `shouldRetry` rejected, with ``RetryExhaustedError`` when the backoff runs out, or with
    ///   ``CancelledError`` when cancelled.
    /// - Precondition: called once.
    public func start(file: StaticString = #fileID, line: UInt = #line) -> Deferred<Value> {
        guard case .idle = state else { preconditionFailure("RetryingCall.start() called twice") }
        // The canceller keeps this object alive while the caller holds the Deferred; firing the
        // Deferred drops the canceller, which breaks the cycle.
        let d = Deferred<Value>(canceller: { _ in self.cancelled() }, file: file, line: line)
        result = d
        startTime = clock.now
        // Attempt 0 always gets a delay: a backoff has at least one attempt and the elapsed cap
        // never applies to the first.
        guard case .wait(let delay) = backoff.decide(attempt: 0, elapsed: .zero) else {
            preconditionFailure("Backoff refused the first attempt")
        }
        schedule(after: delay)
        return d
    }

    /// Starts after a first attempt already made elsewhere failed with `firstFailure` (the
    /// transform proxy's fast attempt): it counts as attempt 1, begun at `startedAt`, and is
    /// decided on as any failed attempt (retry after the backoff's next delay, or finish).
    ///
    /// - Returns: the Deferred ``start(file:line:)`` returns; it may have fired already.
    /// - Precondition: nothing was started yet.
    func start(after firstFailure: any Error, startedAt: Duration) -> Deferred<Value> {
        guard case .idle = state else { preconditionFailure("RetryingCall.start() called twice") }
        let d = Deferred<Value>(canceller: { _ in self.cancelled() })
        result = d
        startTime = startedAt
        attempts = 1
        failed(firstFailure)
        return d
    }

    func schedule(after delay: Duration) {
        let call = clock.callLater(delay) { [self] in attempt() }
        state = .waiting(call)
    }

    /// Runs one attempt (from the clock).
    func attempt() {
        guard case .waiting = state else { return }
        attempts += 1
        let d: Deferred<Value>
        do {
            d = try operation()
        } catch {
            state = .idle
            failed(error)
            return
        }
        state = .attempting(d)
        // `mapResult` takes the attempt's failure off its hands (so it is not reported as
        // unhandled) and runs now if `d` has already fired.
        _ = d.mapResult { [self] outcome in
            finished(d, outcome)
        }
    }

    func finished(_ d: Deferred<Value>, _ outcome: Result<Value, any Error>) {
        // Ignore a result arriving after cancellation or from a superseded attempt.
        guard case .attempting(let current) = state, current === d else { return }
        switch outcome {
        case .success(let value):
            finish(.success(value))
        case .failure(let error):
            state = .idle
            failed(error)
        }
    }

    func failed(_ error: any Error) {
        if firstFailure == nil { firstFailure = error }
        lastFailure = error
        guard shouldRetry(error) else {
            finish(.failure(error))
            return
        }
        logger.info("RetryingCall: ignoring \(error)")
        let elapsed = clock.now - startTime
        switch backoff.decide(attempt: attempts, elapsed: elapsed) {
        case .stop(let why):
            logger.info("RetryingCall: ran out of \(why == .attempts ? "attempts" : "time") after \(attempts) attempt(s)")
            switch exhaustion {
            case .exhaustedError:
                finish(
                    .failure(
                        RetryExhaustedError(
                            attempts: attempts, reason: why, elapsed: elapsed,
                            firstFailure: firstFailure ?? error, lastFailure: error)))
            case .firstFailure:
                finish(.failure(firstFailure ?? error))
            }
        case .wait(let delay):
            onRetry?(attempts, error, delay)
            // `onRetry` may have cancelled us.
            guard case .idle = state else { return }
            schedule(after: delay)
        }
    }

    func finish(_ outcome: Result<Value, any Error>) {
        state = .finished
        guard let d = result else { return }
        result = nil
        try? d.fire(outcome)
    }

    /// The canceller of the returned Deferred: stops the timer or cancels the attempt in flight.
    /// The Deferred then fails with ``CancelledError`` (fired by `cancel()` itself).
    func cancelled() {
        let previous = state
        state = .finished
        result = nil
        switch previous {
        case .waiting(let call):
            call.cancel()
        case .attempting(let d):
            d.cancel()
        case .idle, .finished:
            break
        }
    }
}

/// What a ``RetryingCall`` fails with when its backoff runs out.
public enum RetryExhaustion: Sendable, Equatable {
    /// A ``RetryExhaustedError`` carrying the first and last failures and the counts (the default).
    case exhaustedError
    /// The first failure itself, as txretry does (seed 001, "RetryingCall").
    case firstFailure
}

/// The failure of a ``RetryingCall`` whose backoff ran out while failures were still worth
/// retrying.
///
/// txretry failed with the *first* failure. We carry both the first and the last: the first often
/// says why the trouble started (connection refused while a server restarts), the last says how it
/// ended (a timeout), and a caller that wants txretry's behaviour reads ``firstFailure``. Only these
/// two are kept, so a long retry run holds a bounded amount of history.
public struct RetryExhaustedError: Error, CustomStringConvertible {
    /// How many attempts were made.
    public let attempts: Int
    /// Whether the attempts or the elapsed-time cap ran out.
    public let reason: Backoff.Exhaustion
    /// The time from ``RetryingCall/start(file:line:)`` to giving up, on the call's clock.
    public let elapsed: Duration
    /// The failure of the first attempt.
    public let firstFailure: any Error
    /// The failure of the last attempt.
    public let lastFailure: any Error

    /// Creates the error (``RetryingCall`` does this; public for tests and wrappers).
    public init(
        attempts: Int, reason: Backoff.Exhaustion, elapsed: Duration, firstFailure: any Error,
        lastFailure: any Error
    ) {
        self.attempts = attempts
        self.reason = reason
        self.elapsed = elapsed
        self.firstFailure = firstFailure
        self.lastFailure = lastFailure
    }

    public var description: String {
        let why = reason == .attempts ? "no attempts left" : "out of time"
        return "gave up after \(attempts) attempt(s) in \(elapsed) (\(why)); first failure: \(firstFailure); "
            + "last failure: \(lastFailure)"
    }
}
