/// Asynchronous set-up for an object whose methods must wait for it: Terry Jones's deferred
/// `__init__` posts (seed 001: "A Python metaclass for Twisted allowing __init__ to return a
/// Deferred", 2008, and "A mixin class allowing Python __init__ methods to work with Twisted
/// deferreds", 2009).
///
/// The 2009 mixin's idea: calls made before the set-up's Deferred fired get a Deferred back at
/// once, "as far as they know, everything is normal", and run, in call order, when it fires;
/// calls made afterwards run straight away. Callers never see an `IAmNotReadyException`.
/// Here the object holds one of these and routes its dependent methods through
/// ``whenReady(_:)``; the set-up produces a `Resource` (the mixin's `self.db`) that each call
/// receives. What the mixin left out is a set-up that fails: every queued call then fails with
/// that failure, later calls fail at once (or, with `retriesOnDemand`, start the set-up again),
/// and ``start()`` may be called again to re-try.
///
/// ``ready()`` is the 2008 metaclass's `__instantiate__`: a Deferred that fires with the
/// resource once the object is usable.
///
/// Confined to the reactor thread.
public final class DeferredInitialization<Resource> {
    /// Where the set-up stands.
    public enum State {
        /// Not started.
        case idle
        /// The set-up's Deferred has not fired yet: calls queue.
        case initializing
        /// Set up: calls run at once.
        case ready(Resource)
        /// The set-up failed: calls fail with this (or re-try it, with `retriesOnDemand`).
        case failed(any Error)
    }

    /// Where the set-up stands.
    @inlinable public var state: State { current }
    // `@exclusivity(unchecked)`: read on every call (the proxy's every request); writes happen
    // before the queued calls run, never across a call out.
    @exclusivity(unchecked) @usableFromInline var current = State.idle
    /// When true, a call made after a failed set-up starts the set-up again and waits for it,
    /// instead of failing at once.
    public let retriesOnDemand: Bool

    @usableFromInline let setUp: () -> Deferred<Resource>
    /// One gate per queued call, in call order; each fires when the set-up does.
    @usableFromInline var queue: [Deferred<Resource>] = []

    /// - Parameters:
    ///   - retriesOnDemand: re-run a failed set-up when a call arrives (default false).
    ///   - setUp: the asynchronous set-up (the `__init__` that returns a Deferred). It is run by
    ///     ``start()``, or by the first call.
    public init(retriesOnDemand: Bool = false, setUp: @escaping () -> Deferred<Resource>) {
        self.retriesOnDemand = retriesOnDemand
        self.setUp = setUp
    }

    /// The resource, once set up.
    @inlinable
    public var resource: Resource? {
        if case .ready(let r) = current { return r }
        return nil
    }

    /// True once set up.
    @inlinable
    public var isReady: Bool { resource != nil }

    /// The number of calls waiting for the set-up.
    public var queuedCount: Int { queue.count }

    /// Runs the set-up, unless it is running or done. After a failure this re-tries it.
    @inlinable
    public func start() {
        switch current {
        case .initializing, .ready: return
        case .idle, .failed: break
        }
        current = .initializing
        // The set-up's failure is consumed here: the queued calls are told.
        _ = setUp().mapResult { [weak self] outcome in self?.finish(outcome) }
    }

    /// Replaces the resource (a refreshed value). Before the set-up finished, this completes it:
    /// the queued calls run with `resource`.
    @inlinable
    public func update(_ resource: Resource) {
        if case .initializing = current {
            finish(.success(resource))
        } else {
            current = .ready(resource)
        }
    }

    /// Runs `body` with the resource: at once when set up; otherwise after the set-up, in call
    /// order with the other waiting calls (starting the set-up if it was never started).
    ///
    /// - Returns: `body`'s Deferred, or one that fails with the set-up's failure (or what `body`
    ///   threw). Cancelling it while queued takes the call out of the queue; `body` never runs.
    @inlinable
    public func whenReady<T>(_ body: @escaping (Resource) throws -> Deferred<T>) -> Deferred<T> {
        switch current {
        case .idle: start()
        case .failed where retriesOnDemand: start()
        default: break
        }
        switch current {
        case .ready(let r): return maybeDeferred { try body(r) }
        case .failed(let error): return fail(error)
        case .idle, .initializing: break
        }
        let gate = Deferred<Resource>(canceller: { [weak self] g in self?.queue.removeAll { $0 === g } })
        queue.append(gate)
        return gate.flatMap(body)
    }

    /// A Deferred that fires with the resource once set up (the 2008 metaclass's
    /// `__instantiate__`), or fails with the set-up's failure.
    public func ready() -> Deferred<Resource> {
        whenReady { succeed($0) }
    }

    @inlinable
    func finish(_ outcome: Result<Resource, any Error>) {
        guard case .initializing = current else { return }
        let waiting = queue
        queue.removeAll()
        switch outcome {
        case .success(let r):
            current = .ready(r)
            for gate in waiting { try? gate.callback(r) }
        case .failure(let error):
            current = .failed(error)
            for gate in waiting { try? gate.errback(error) }
        }
    }
}
