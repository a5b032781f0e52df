/// Where a ``DispatchJob`` is in its life.
public enum DispatchJobState: Sendable, Equatable, CustomStringConvertible {
    /// Queued, not yet launched.
    case pending
    /// Launched: the job function's Deferred has not fired yet.
    case underway
    /// The job function succeeded.
    case succeeded
    /// The job function failed.
    case failed
    /// Cancelled while pending or underway.
    case cancelled
    /// Never launched: the queue was stopped (see ``ResizableDispatchQueue/stop(cancelUnderway:)``).
    case stopped

    public var description: String {
        switch self {
        case .pending: return "pending"
        case .underway: return "underway"
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        case .cancelled: return "cancelled"
        case .stopped: return "stopped"
        }
    }
}

/// One job of a ``ResizableDispatchQueue``: its argument, priority, times and result (txrdq's
/// `Job`). Times are on the queue's clock. Confined to the reactor thread.
public final class DispatchJob<Argument, Value> {
    /// The argument given to ``ResizableDispatchQueue/put(_:priority:)``.
    public let argument: Argument
    /// The job's priority: lower runs first.
    public internal(set) var priority: Int
    /// Where the job is in its life.
    public internal(set) var state: DispatchJobState = .pending
    /// When the job was put.
    public let queuedAt: Duration
    /// When the job was launched, if it was.
    public internal(set) var launchedAt: Duration?
    /// When the job finished, failed, was cancelled or was stopped.
    public internal(set) var stoppedAt: Duration?
    /// The job function's result, once it has one.
    public internal(set) var outcome: Result<Value, any Error>?

    /// The job function's Deferred while underway.
    var running: Deferred<Value>?
    weak var queue: ResizableDispatchQueue<Argument, Value>?

    init(argument: Argument, priority: Int, queuedAt: Duration) {
        self.argument = argument
        self.priority = priority
        self.queuedAt = queuedAt
    }

    /// The job's value when it succeeded, else nil.
    public var value: Value? {
        if case .success(let v)? = outcome { return v }
        return nil
    }

    /// Cancels the job: a pending job leaves the queue; an underway job's Deferred is cancelled.
    /// Either way the job's `put` Deferred fails with ``DispatchJobFailure`` (cause
    /// ``CancelledError`` unless the job function's canceller gave another result). Cancelling a
    /// finished job does nothing.
    public func cancel() {
        queue?.cancel(self)
    }
}

/// The failure of a ``ResizableDispatchQueue`` job: the job record and what went wrong (the job
/// function's failure, ``CancelledError``, or ``DispatchQueueStoppedError``).
///
/// `@unchecked Sendable` (Swift's `Error` requires `Sendable`): the job record is confined to the
/// reactor thread, and so is every Deferred that carries this failure.
public struct DispatchJobFailure<Argument, Value>: Error, @unchecked Sendable, CustomStringConvertible {
    /// The job that failed.
    public let job: DispatchJob<Argument, Value>
    /// Why it failed.
    public let underlying: any Error
    public var description: String { "dispatch job \(job.state): \(underlying)" }
}

/// Thrown by ``ResizableDispatchQueue/put(_:priority:)`` once the queue is stopped, and the cause in
/// the failure of jobs that a stop left unlaunched.
public struct DispatchQueueStoppedError: Error, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "the dispatch queue was stopped" }
}

/// Runs a job function on queued arguments with at most ``width`` jobs underway at once
/// (Terry Jones's txrdq, "A resizable dispatch queue for Twisted", seed 001).
///
/// Each ``put(_:priority:)`` returns a Deferred that fires with the ``DispatchJob`` record (its
/// ``DispatchJob/value`` is the job function's result), or fails with a ``DispatchJobFailure``
/// holding the record. The width may change at any time: widening launches queued jobs at once;
/// narrowing lets underway jobs finish and launches fewer afterwards. Width 0 holds every job
/// queued. Jobs launch most important (lowest priority number) first, equal priorities in `put`
/// order. Jobs may be inspected (``pending``, ``underway``), reprioritised, cancelled while queued
/// or underway; the queue may be paused and resumed, and stopped cleanly: ``stop(cancelUnderway:)``
/// waits for the underway jobs and gives back the ones never started, to re-queue after a restart.
///
/// Differences from txrdq: jobs are launched directly (no `Cooperator`); the `put` Deferreds of
/// jobs a stop leaves unlaunched fail with ``DispatchQueueStoppedError`` rather than never firing.
///
/// Confined to the reactor thread.
public final class ResizableDispatchQueue<Argument, Value> {
    /// The job record type.
    public typealias Job = DispatchJob<Argument, Value>

    let clock: any ReactorTime
    let work: (Argument) -> Deferred<Value>
    var queue = PriorityHeap<Job>()
    var underwayJobs: [Job] = []
    var configuredWidth: Int
    var launching = false
    var drainWaiters: [Deferred<Void>] = []
    /// True while ``pause()`` holds the queue.
    public private(set) var paused = false
    /// True once ``stop(cancelUnderway:)`` was called: `put` then throws.
    public private(set) var stopped = false

    /// Creates a queue.
    ///
    /// - Parameters:
    ///   - width: the most jobs underway at once (0 holds every job queued until widened).
    ///   - clock: the time source for the job records' times.
    ///   - work: the job function: given an argument, returns a Deferred of its result. Cancelling
    ///     that Deferred is how an underway job is cancelled.
    public init(width: Int, clock: any ReactorTime, work: @escaping (Argument) -> Deferred<Value>) {
        precondition(width >= 0, "dispatch queue width cannot be negative")
        self.configuredWidth = width
        self.clock = clock
        self.work = work
    }

    /// The most jobs underway at once. Setting it launches queued jobs when it grows; when it
    /// shrinks, underway jobs finish and fewer are launched. While paused, the new width is kept
    /// for ``resume(width:)``.
    ///
    /// Precondition: not negative.
    public var width: Int {
        get { configuredWidth }
        set {
            precondition(newValue >= 0, "dispatch queue width cannot be negative")
            configuredWidth = newValue
            launchJobs()
        }
    }

    /// Queues a job.
    ///
    /// - Returns: a Deferred that fires with the job record when the job function succeeds, or
    ///   fails with ``DispatchJobFailure`` (job function failure, cancellation, stop). Cancelling
    ///   it cancels the job.
    /// - Throws: ``DispatchQueueStoppedError`` once the queue is stopped.
    public func put(
        _ argument: Argument, priority: Int = 0, file: StaticString = #fileID, line: UInt = #line
    ) throws(DispatchQueueStoppedError) -> Deferred<Job> {
        if stopped { throw DispatchQueueStoppedError() }
        let job = Job(argument: argument, priority: priority, queuedAt: clock.now)
        job.queue = self
        let d = Deferred<Job>(canceller: { [weak job] _ in job?.cancel() }, file: file, line: line)
        // Until it fires, the Deferred is kept by its job; the job by the queue.
        jobDeferreds[ObjectIdentifier(job)] = d
        queue.push(job, priority: priority)
        launchJobs()
        return d
    }

    /// The put Deferreds of unfinished jobs: the queue keeps them until they fire, so a caller
    /// may keep only a Deferred derived from one.
    var jobDeferreds: [ObjectIdentifier: Deferred<Job>] = [:]

    /// The queued jobs, next to launch first (a snapshot).
    public var pending: [Job] { queue.sorted }

    /// The underway jobs, in launch order (a snapshot).
    public var underway: [Job] { underwayJobs }

    /// The number of queued jobs.
    public var pendingCount: Int { queue.count }

    /// The number of underway jobs.
    public var underwayCount: Int { underwayJobs.count }

    /// Gives a queued job a new priority.
    ///
    /// - Returns: false when the job is not pending (already launched, finished, or not ours).
    @discardableResult
    public func reprioritize(_ job: Job, priority: Int) -> Bool {
        guard job.state == .pending, queue.reprioritize(job, to: priority) else { return false }
        job.priority = priority
        return true
    }

    /// Stops launching jobs (underway ones go on).
    ///
    /// - Returns: a Deferred that fires when no job is underway.
    @discardableResult
    public func pause() -> Deferred<Void> {
        paused = true
        return drained()
    }

    /// Resumes launching after ``pause()``, optionally with a new width.
    ///
    /// - Throws: ``DispatchQueueStoppedError`` once the queue is stopped (as txrdq's
    ///   `QueueStopped`).
    /// - Precondition: `width` is not negative.
    public func resume(width: Int? = nil) throws(DispatchQueueStoppedError) {
        if stopped { throw DispatchQueueStoppedError() }
        paused = false
        if let width { self.width = width } else { launchJobs() }
    }

    /// Stops the queue for good: `put` throws from now on, nothing more is launched.
    ///
    /// - Parameter cancelUnderway: cancel the underway jobs too (they are then returned with the
    ///   pending ones, as txrdq does).
    /// - Returns: a Deferred that fires, once no job is underway, with the jobs never launched
    ///   (most important first), whose `put` Deferreds then fail with
    ///   ``DispatchQueueStoppedError``; re-`put` their arguments to a new queue to resume them.
    public func stop(cancelUnderway: Bool = false) -> Deferred<[Job]> {
        stopped = true
        paused = true
        var cancelled: [Job] = []
        if cancelUnderway {
            cancelled = underwayJobs
            for job in cancelled { job.running?.cancel() }
        }
        return drained().map { [self] _ in
            let never = queue.removeAll()
            let now = clock.now
            for job in never {
                job.state = .stopped
                job.stoppedAt = now
                finish(job, .failure(DispatchQueueStoppedError()))
            }
            return cancelled + never
        }
    }

    // MARK: Internals

    func drained() -> Deferred<Void> {
        if underwayJobs.isEmpty { return succeed(()) }
        let d = Deferred<Void>(canceller: { [weak self] d in self?.drainWaiters.removeAll { $0 === d } })
        drainWaiters.append(d)
        return d
    }

    /// Launches queued jobs while there is room. Re-entrant calls (a job function that fires at
    /// once finishes its job inside `launch`) return at once; the outer loop continues.
    func launchJobs() {
        if launching { return }
        launching = true
        defer { launching = false }
        while !paused, underwayJobs.count < configuredWidth, let job = queue.pop() {
            launch(job)
        }
    }

    func launch(_ job: Job) {
        job.state = .underway
        job.launchedAt = clock.now
        underwayJobs.append(job)
        let d = work(job.argument)
        job.running = d
        d.observe(consume: true) { [weak self, job] outcome in
            job.running = nil
            self?.jobFinished(job, outcome)
        }
    }

    func jobFinished(_ job: Job, _ outcome: Result<Value, any Error>) {
        underwayJobs.removeAll { $0 === job }
        if job.state == .underway {
            if case .failure(let e) = outcome, e is CancelledError {
                job.state = .cancelled
            } else {
                job.state = outcome.isSuccess ? .succeeded : .failed
            }
        }
        job.stoppedAt = clock.now
        job.outcome = outcome
        finish(job, outcome)
        if underwayJobs.isEmpty, !drainWaiters.isEmpty {
            let waiters = drainWaiters
            drainWaiters.removeAll()
            for w in waiters { try? w.callback(()) }
        }
        launchJobs()
    }

    func cancel(_ job: Job) {
        switch job.state {
        case .pending:
            queue.remove(job)
            job.state = .cancelled
            job.stoppedAt = clock.now
            finish(job, .failure(CancelledError()))
        case .underway:
            job.running?.cancel()
        case .succeeded, .failed, .cancelled, .stopped:
            break
        }
    }

    /// Fires the job's `put` Deferred.
    func finish(_ job: Job, _ outcome: Result<Value, any Error>) {
        let d = jobDeferreds.removeValue(forKey: ObjectIdentifier(job))
        job.queue = nil
        guard let d, !d.called else { return }
        switch outcome {
        case .success: try? d.callback(job)
        case .failure(let e): try? d.errback(DispatchJobFailure(job: job, underlying: e))
        }
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
