/// Observes the success and failure events of a list of Deferreds that may grow at any time
/// (Terry Jones's txdlo, "txdlo – a Twisted deferred list observer", seed 001).
///
/// Each appended Deferred gets an index (0, 1, ...); when it fires, every observer is called, in
/// the order observers were added, with the index and the result. Observing does not change the
/// Deferreds' results (the callbacks pass them on), except that with `consumeErrors` their
/// failures count as handled. With `maintainHistory`, past events are kept and may be replayed
/// to a new observer. From this one builds Deferreds that fire on any combination of events:
/// Twisted's `DeferredList`, "when N have fired", "the first success, failing only when all fail".
///
/// Confined to the reactor thread.
public final class DeferredListObserver<Value> {
    /// An observer: the member's index and its result.
    public typealias Observer = (_ index: Int, _ result: Result<Value, any Error>) -> Void

    var observers: [Observer] = []
    /// Whether past events are kept in ``history``.
    public let maintainHistory: Bool
    let consumeErrors: Bool
    /// The events so far, in firing order, when ``maintainHistory`` is set (else empty).
    public private(set) var history: [(index: Int, result: Result<Value, any Error>)] = []
    /// The number of Deferreds appended.
    public private(set) var count = 0
    /// The number of appended Deferreds that succeeded.
    public private(set) var successCount = 0
    /// The number of appended Deferreds that failed.
    public private(set) var failureCount = 0

    /// Creates an observer of an empty list.
    ///
    /// - Parameters:
    ///   - maintainHistory: keep every event in ``history`` (needed to replay them).
    ///   - consumeErrors: mark the members' failures as handled.
    public init(maintainHistory: Bool = false, consumeErrors: Bool = false) {
        self.maintainHistory = maintainHistory
        self.consumeErrors = consumeErrors
    }

    /// The number of appended Deferreds that have not fired.
    public var pendingCount: Int { count - successCount - failureCount }

    /// Adds a Deferred to the observed list; an already fired one reports its event at once.
    ///
    /// - Returns: its index.
    @discardableResult
    public func append(_ d: Deferred<Value>) -> Int {
        let index = count
        count += 1
        // The member's callback keeps this observer alive until it fires, as txdlo's bound
        // methods do: a caller may keep only a Deferred built on the observer.
        d.observe(consume: consumeErrors) { [self] outcome in fired(index, outcome) }
        return index
    }

    /// Adds an observer, called for every later event.
    ///
    /// - Parameter replayHistory: first call it with every past event, in firing order.
    ///   Precondition: ``maintainHistory`` when set.
    public func observe(replayHistory: Bool = false, _ observer: @escaping Observer) {
        if replayHistory {
            precondition(maintainHistory, "replaying history needs maintainHistory")
            for event in history { observer(event.index, event.result) }
        }
        observers.append(observer)
    }

    func fired(_ index: Int, _ outcome: Result<Value, any Error>) {
        switch outcome {
        case .success: successCount += 1
        case .failure: failureCount += 1
        }
        if maintainHistory { history.append((index, outcome)) }
        // A snapshot: an observer added by an observer hears the next event, not this one.
        for observer in observers { observer(index, outcome) }
    }
}

/// Returns a Deferred that fires once `n` of `members` have fired (success or failure), with
/// their results by index in firing order: one of txdlo's examples (seed 001). Failures are
/// consumed. `n` of 0 fires at once.
///
/// Precondition: `0 <= n <= members.count`.
public func whenFired<Value>(
    _ n: Int, of members: [Deferred<Value>], file: StaticString = #fileID, line: UInt = #line
) -> Deferred<[(index: Int, result: Result<Value, any Error>)]> {
    precondition(n >= 0 && n <= members.count, "whenFired needs 0 <= n <= members.count")
    let observer = DeferredListObserver<Value>(maintainHistory: true, consumeErrors: true)
    let d = Deferred<[(index: Int, result: Result<Value, any Error>)]>(file: file, line: line)
    if n == 0 { try? d.callback([]) }
    observer.observe { [weak observer] _, _ in
        guard let observer, !d.called, observer.history.count == n else { return }
        try? d.callback(observer.history)
    }
    for m in members { observer.append(m) }
    return d
}
