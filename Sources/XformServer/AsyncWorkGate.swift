import XformCore

/// Bounds the server's asynchronous and thread-pool transforms (`--max-concurrent-async`,
/// issue 9 "Put to work") through a ``ResizableDispatchQueue`` (Terry Jones's txrdq, seed 001),
/// fairly across connections (issue 10 §3: one client cannot monopolise the pool).
///
/// **Fairness.** A job's priority is the number of jobs its connection already has queued or
/// underway when it is put (lower runs first). A connection that floods gets priorities 0, 1,
/// 2, ...; another connection's one job gets 0 and launches before the flood's second job, so
/// a connection with 60 jobs waiting never starves one with 1. Equal priorities run in `put`
/// order.
///
/// A job is started only when the queue launches it; cancelling the returned Deferred (the
/// connection went away) withdraws a queued job or cancels the underway one (Part 19).
///
/// Confined to the reactor thread.
public final class AsyncWorkGate {
    /// One job: the connection it is for and how to start its work.
    public struct Work {
        let owner: ObjectIdentifier
        let start: () -> Deferred<[UInt8]>
    }

    let queue: ResizableDispatchQueue<Work, [UInt8]>
    var perOwner: [ObjectIdentifier: Int] = [:]
    var configuredLimit: Int

    /// Makes a gate.
    ///
    /// - Parameters:
    ///   - limit: the most jobs underway at once; 0 means unbounded.
    ///   - clock: the reactor's clock (job times).
    public init(limit: Int, clock: any ReactorTime) {
        precondition(limit >= 0, "the async limit cannot be negative")
        configuredLimit = limit
        queue = ResizableDispatchQueue(width: Self.width(for: limit), clock: clock) { $0.start() }
    }

    static func width(for limit: Int) -> Int { limit == 0 ? Int.max : limit }

    /// The most jobs underway at once (0: unbounded). Setting it takes effect at once: a larger
    /// limit launches queued jobs; a smaller one lets underway jobs finish and launches fewer.
    public var limit: Int {
        get { configuredLimit }
        set {
            precondition(newValue >= 0, "the async limit cannot be negative")
            configuredLimit = newValue
            queue.width = Self.width(for: newValue)
        }
    }

    /// The jobs waiting for room.
    public var pendingCount: Int { queue.pendingCount }
    /// The jobs started whose result has not come.
    public var underwayCount: Int { queue.underwayCount }

    /// Queues `start` for the connection `owner`; it is called when the job launches (at once
    /// when there is room).
    ///
    /// - Returns: a Deferred of the work's bytes, or its failure (a ``TransformError``, or
    ///   `CancelledError`); cancelling it cancels the job, queued or underway.
    public func submit(for owner: AnyObject, _ start: @escaping () -> Deferred<[UInt8]>) -> Deferred<[UInt8]> {
        let key = ObjectIdentifier(owner)
        let already = perOwner[key, default: 0]
        perOwner[key] = already + 1
        let put: Deferred<DispatchJob<Work, [UInt8]>>
        do {
            put = try queue.put(Work(owner: key, start: start), priority: already)
        } catch {
            // The queue is never stopped; run the work directly if it ever is.
            release(key)
            return start()
        }
        return put.mapResult { [weak self] outcome in
            self?.release(key)
            switch outcome {
            case .success(let job): return job.value ?? []
            case .failure(let e as DispatchJobFailure<Work, [UInt8]>): throw e.underlying
            case .failure(let e): throw e
            }
        }
    }

    func release(_ key: ObjectIdentifier) {
        guard let n = perOwner[key] else { return }
        if n <= 1 { perOwner[key] = nil } else { perOwner[key] = n - 1 }
    }
}
