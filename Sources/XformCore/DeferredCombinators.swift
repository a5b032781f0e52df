/// Returns a Deferred already fired with `value` (Twisted's `succeed`).
@inlinable
public func succeed<Value>(_ value: Value, file: StaticString = #fileID, line: UInt = #line) -> Deferred<Value> {
    let d = Deferred<Value>(file: file, line: line)
    d.result = .success(value)
    return d
}

/// Returns a Deferred already failed with `error` (Twisted's `fail`).
@inlinable
public func fail<Value>(
    _ error: any Error, as: Value.Type = Value.self, file: StaticString = #fileID, line: UInt = #line
) -> Deferred<Value> {
    let d = Deferred<Value>(file: file, line: line)
    d.result = .failure(error)
    return d
}

/// Calls `body` and always returns a Deferred: fired with its value, or failed with what it threw.
public func maybeDeferred<Value>(
    file: StaticString = #fileID, line: UInt = #line, _ body: () throws -> Value
) -> Deferred<Value> {
    do { return succeed(try body(), file: file, line: line) } catch { return fail(error, file: file, line: line) }
}

/// Calls `body`, which returns a Deferred, and turns a thrown error into a failed Deferred.
public func maybeDeferred<Value>(
    file: StaticString = #fileID, line: UInt = #line, _ body: () throws -> Deferred<Value>
) -> Deferred<Value> {
    do { return try body() } catch { return fail(error, file: file, line: line) }
}

/// A weak reference to a Deferred.
struct WeakDeferred<Value> {
    weak var deferred: Deferred<Value>?
    init(_ d: Deferred<Value>) { deferred = d }
}

/// The result of ``deferredList(_:fireOnOneCallback:fireOnOneErrback:consumeErrors:)``.
public enum DeferredListResult<Value> {
    /// Every member fired: their results in input order.
    case all([Result<Value, any Error>])
    /// With `fireOnOneCallback`: the first member value and its index.
    case first(Value, index: Int)

    /// The member results when the list fired with all of them, else nil.
    public var results: [Result<Value, any Error>]? {
        if case .all(let r) = self { return r }
        return nil
    }
}

/// A sentinel chain link that is never run: a forward step to it only observes the result, and
/// marks a failure as handled (what `consumeErrors` means).
@usableFromInline
final class ObserverLink: _ChainLink, Sendable {
    @usableFromInline static let shared = ObserverLink()
    @usableFromInline var _isPaused: Bool { true }
    @usableFromInline func _advanceLink() -> (any _ChainLink)? { nil }
}

extension Deferred {
    /// Observes the result without changing it; with `consume`, a failure counts as handled.
    @inlinable
    func observe(consume: Bool, _ observer: @escaping (Result<Value, any Error>) -> Void) {
        if consume {
            holdsLinks = true
            append(.forward(ObserverLink.shared, observer))
        } else {
            addObserver(observer)
        }
    }
}

/// Waits for several Deferreds (Twisted's `DeferredList`).
///
/// - Parameters:
///   - fireOnOneCallback: fire with the first member value (``DeferredListResult/first(_:index:)``).
///   - fireOnOneErrback: fail with ``FirstError`` on the first member failure.
///   - consumeErrors: mark member failures as handled, so the members report none as unhandled.
/// - Returns: a Deferred of ``DeferredListResult``; results are in input order, whatever the firing
///   order. An empty list fires at once with `.all([])`. Cancelling it cancels every member.
public func deferredList<Value>(
    _ members: [Deferred<Value>], fireOnOneCallback: Bool = false, fireOnOneErrback: Bool = false,
    consumeErrors: Bool = false, file: StaticString = #fileID, line: UInt = #line
) -> Deferred<DeferredListResult<Value>> {
    // The members' observers keep the list alive (as Twisted's bound callbacks do): a caller may
    // keep only a Deferred derived from it (`gatherResults` does). The canceller holds the members
    // weakly, so an unfired member does not keep itself alive through the list.
    let weakMembers = members.map { WeakDeferred($0) }
    let list = Deferred<DeferredListResult<Value>>(
        canceller: { _ in
            for m in weakMembers { if let d = m.deferred, !d.called { d.cancel() } }
        }, file: file, line: line)
    var results = [Result<Value, any Error>?](repeating: nil, count: members.count)
    var finished = 0
    let total = members.count  // not `members`: an observer capturing its own member is a cycle
    if members.isEmpty, !fireOnOneCallback {
        try? list.callback(.all([]))
        return list
    }
    for (index, member) in members.enumerated() {
        member.observe(consume: consumeErrors) { outcome in
            results[index] = outcome
            finished += 1
            guard !list.called else { return }
            switch outcome {
            case .success(let v) where fireOnOneCallback:
                try? list.callback(.first(v, index: index))
                return
            case .failure(let e) where fireOnOneErrback:
                try? list.errback(FirstError(underlying: e, index: index))
                return
            default: break
            }
            if finished == total {
                try? list.callback(.all(results.map { $0! }))
            }
        }
    }
    return list
}

/// Waits for all members and fires with their values in input order (Twisted's `gatherResults`).
/// Fails with ``FirstError`` at the first member failure.
public func gatherResults<Value>(
    _ members: [Deferred<Value>], consumeErrors: Bool = false, file: StaticString = #fileID, line: UInt = #line
) -> Deferred<[Value]> {
    deferredList(members, fireOnOneErrback: true, consumeErrors: consumeErrors, file: file, line: line)
        .map(file: file, line: line) { result in
            (result.results ?? []).map { r in
                switch r {
                case .success(let v): return v
                case .failure: fatalError("unreachable: fireOnOneErrback fails the list first")
                }
            }
        }
}

/// The failure of ``firstSuccess(_:)`` when every member failed: their failures in input order.
public struct AllFailedError: Error, CustomStringConvertible {
    /// The members' failures, in input order.
    public let failures: [any Error]
    public init(failures: [any Error]) { self.failures = failures }
    public var description: String { "all \(failures.count) attempts failed: \(failures)" }
}

/// Fires with the first member value and its index, cancelling every other member
/// (Twisted's `race`, Terry Jones's first-result-wins). Fails with ``AllFailedError`` when all
/// members fail. Member failures are consumed. Cancelling it cancels every member.
public func firstSuccess<Value>(
    _ members: [Deferred<Value>], file: StaticString = #fileID, line: UInt = #line
) -> Deferred<(index: Int, value: Value)> {
    // As in deferredList: members keep the winner alive, the canceller holds members weakly.
    let weakMembers = members.map { WeakDeferred($0) }
    let winner = Deferred<(index: Int, value: Value)>(
        canceller: { _ in for m in weakMembers { if let d = m.deferred, !d.called { d.cancel() } } },
        file: file, line: line)
    var failures = [(any Error)?](repeating: nil, count: members.count)
    var failed = 0
    let total = members.count  // not `members`: an observer capturing its own member is a cycle
    if members.isEmpty {
        try? winner.errback(AllFailedError(failures: []))
        return winner
    }
    var decided = false  // set before the losers are cancelled, so their failures are ignored
    for (index, member) in members.enumerated() {
        member.observe(consume: true) { outcome in
            guard !decided, !winner.called else { return }
            switch outcome {
            case .success(let v):
                decided = true
                // The losers are cancelled before the winner fires, as Twisted's `race()` and
                // txdpce do: the winner's callbacks see no work still running.
                for (i, other) in weakMembers.enumerated() where i != index {
                    if let d = other.deferred, !d.called { d.cancel() }
                }
                try? winner.callback((index, v))
            case .failure(let e):
                failures[index] = e
                failed += 1
                if failed == total { try? winner.errback(AllFailedError(failures: failures.map { $0! })) }
            }
        }
    }
    return winner
}

/// The failure of ``DeferredQueue`` operations that would exceed its limits.
public struct QueueOverflowError: Error, Equatable {
    public init() {}
}

/// An event queue whose `get()` returns a Deferred (Twisted's `DeferredQueue`).
///
/// Values put while nobody waits are kept (up to `size`); `get()` calls while the queue is empty
/// wait (up to `backlog`). Cancelling a waiting `get()` removes it from the queue.
public final class DeferredQueue<Value> {
    var pending: [Value] = []
    var waiting: [Deferred<Value>] = []
    /// The most values kept, or nil for no limit.
    public let size: Int?
    /// The most waiting `get()` calls, or nil for no limit.
    public let backlog: Int?

    public init(size: Int? = nil, backlog: Int? = nil) {
        self.size = size
        self.backlog = backlog
    }

    /// Gives `value` to the oldest waiter, or keeps it.
    ///
    /// - Throws: ``QueueOverflowError`` when `size` values are already kept.
    public func put(_ value: Value) throws(QueueOverflowError) {
        if !waiting.isEmpty {
            let d = waiting.removeFirst()
            try? d.callback(value)
        } else if size == nil || pending.count < size! {
            pending.append(value)
        } else {
            throw QueueOverflowError()
        }
    }

    /// Returns a Deferred of the next value: fired at once when one is kept.
    ///
    /// - Throws: ``QueueOverflowError`` when `backlog` calls already wait.
    public func get() throws(QueueOverflowError) -> Deferred<Value> {
        if !pending.isEmpty { return succeed(pending.removeFirst()) }
        if let backlog, waiting.count >= backlog { throw QueueOverflowError() }
        let d = Deferred<Value>(canceller: { [weak self] d in self?.waiting.removeAll { $0 === d } })
        waiting.append(d)
        return d
    }

    /// The number of kept values.
    public var count: Int { pending.count }
}

/// Tracks in-flight Deferreds and tells when none remain (Terry Jones's `DeferredPool`).
///
/// A server adds each request's Deferred; graceful shutdown waits on ``notifyWhenEmpty()``.
public final class DeferredPool {
    var inFlight = 0
    var emptyWaiters: [Deferred<Void>] = []

    public init() {}

    /// The number of tracked Deferreds that have not fired.
    public var count: Int { inFlight }

    /// Tracks `d` until it fires; its result is passed on unchanged.
    ///
    /// - Returns: `d`.
    @discardableResult
    public func add<Value>(_ d: Deferred<Value>) -> Deferred<Value> {
        if d.called, !d.paused { return d }
        inFlight += 1
        d.addObserver { [weak self] _ in self?.finished() }
        return d
    }

    /// Counts an in-flight operation that is not a Deferred; call ``leave()`` when it is done.
    public func enter() { inFlight += 1 }

    /// Ends an operation counted with ``enter()``.
    public func leave() { finished() }

    func finished() {
        inFlight -= 1
        if inFlight == 0 {
            let waiters = emptyWaiters
            emptyWaiters.removeAll()
            for w in waiters { try? w.callback(()) }
        }
    }

    /// Returns a Deferred that fires when nothing is in flight (Terry Jones's `notifyWhenEmpty`).
    ///
    /// - Parameter testImmediately: when true and nothing is in flight now, the Deferred is
    ///   already fired; when false it waits for the next time the pool empties, as in the seed.
    public func notifyWhenEmpty(testImmediately: Bool = true) -> Deferred<Void> {
        if testImmediately, inFlight == 0 { return succeed(()) }
        let d = Deferred<Void>(canceller: { [weak self] d in self?.emptyWaiters.removeAll { $0 === d } })
        emptyWaiters.append(d)
        return d
    }
}
