// Hot paths are @inlinable (internals @usableFromInline) so client modules specialize them for their
// Value type: unspecialized generic code spent most of its time in metadata lookups and witness calls.

/// A placeholder for a result that is not there yet: Twisted's `Deferred`, typed.
///
/// A `Deferred` holds a chain of callback/errback pairs. When the producer fires it with
/// ``callback(_:)`` or ``errback(_:)`` the result runs down the chain synchronously: a callback
/// that throws moves the chain to the errback track, an errback that returns a value moves it
/// back to the callback track. A callback that returns another, unfired `Deferred` pauses this
/// chain until that inner `Deferred` fires, then continues with the inner result.
///
/// The chain is run by a loop, never by recursion, so a million callbacks, or a hundred thousand
/// nested inner Deferreds, do not grow the stack.
///
/// Deferreds are confined to one thread (the reactor's). They are deliberately not `Sendable`;
/// other threads reach them only through ``ReactorThreading/callFromThread(_:)``.
///
/// A Deferred whose last result is an unhandled failure reports it, with the place it was
/// created, when it is deinitialised (see ``DeferredDiagnostics``).
public final class Deferred<Value> {
    /// What a canceller is given: the Deferred being cancelled.
    public typealias Canceller = (Deferred<Value>) -> Void

    /// One entry of the chain. The common shapes get their own case, so adding them allocates no
    /// wrapper closure and running them needs no `Outcome` round trip.
    @usableFromInline
    enum Step {
        /// `addCallback` returning a value; a failure passes by.
        case value((Value) throws -> Value)
        /// `addCallback` returning a Deferred; a failure passes by.
        case chain((Value) throws -> Deferred<Value>)
        /// The general pair (boxed: it is the larger payload, and keeping it out of line keeps the
        /// common steps small).
        indirect case callbacks(((Value) throws -> Outcome<Value>)?, ((any Error) throws -> Outcome<Value>)?)
        /// Continues an outer Deferred of the same type that waits on this one (see `waitOn`).
        case resume(Deferred<Value>)
        /// Hands the current result to another Deferred (a derived one of another type, or an
        /// observer) and continues that Deferred's chain from the same loop.
        indirect case forward(any _ChainLink, (Result<Value, any Error>) -> Void)
    }

    /// What running one Deferred's steps ended with.
    @usableFromInline
    enum Handoff {
        /// Nothing left to run here (or paused on an inner Deferred).
        case done
        /// The result was handed to this Deferred of the same type, which runs next.
        case same(Deferred<Value>)
        /// The result was handed to this link of another type, which runs next.
        case other(any _ChainLink)
    }

    // `@exclusivity(unchecked)`: these properties are read and written only in short accesses that
    // never stay open across a call out to user code (callbacks run between accesses, and steps
    // are released only after they left `steps`, see `compactSteps`), so the dynamic exclusivity
    // checks could never find a conflict; they cost more than running a callback.
    @exclusivity(unchecked) @usableFromInline var result: Result<Value, any Error>?
    @exclusivity(unchecked) @usableFromInline var steps: [Step] = []
    @exclusivity(unchecked) @usableFromInline var stepIndex = 0
    @exclusivity(unchecked) @usableFromInline var pauseCount = 0
    @exclusivity(unchecked) @usableFromInline var running = false
    @exclusivity(unchecked) @usableFromInline var suppressAlreadyCalled = false
    /// The inner Deferred this one waits on; cancel is forwarded to it.
    /// Weak: the inner Deferred is kept alive by whoever will fire it; a strong reference here
    /// would make a retain cycle with the inner Deferred's continuation step.
    @usableFromInline weak var chainedTo: (any _Cancellable)?
    /// True when `chainedTo` was set since the chain last ran (saves clearing a weak reference
    /// on every run).
    @exclusivity(unchecked) @usableFromInline var mayBeChained = false
    /// True once a step handing results to another Deferred was added: only then does deinit
    /// need to release the steps iteratively.
    @exclusivity(unchecked) @usableFromInline var holdsLinks = false
    @exclusivity(unchecked) @usableFromInline var canceller: Canceller?
    /// Set when the failure result was passed on to another Deferred, which is now responsible.
    @exclusivity(unchecked) @usableFromInline var failureHandedOff = false
    @usableFromInline let creationFile: StaticString
    @usableFromInline let creationLine: UInt

    /// Creates an unfired Deferred.
    ///
    /// - Parameter canceller: called by ``cancel()`` while the Deferred is unfired; it may fire
    ///   the Deferred itself. If it does not, ``cancel()`` fails the Deferred with
    ///   ``CancelledError``.
    @inlinable
    public init(
        canceller: Canceller? = nil, file: StaticString = #fileID, line: UInt = #line
    ) {
        self.canceller = canceller
        self.creationFile = file
        self.creationLine = line
    }

    deinit {
        if case .failure(let error)? = result, !failureHandedOff {
            DeferredDiagnostics.report(
                UnhandledError(error: error, file: creationFile.description, line: creationLine))
        }
        // Only steps still held can hold links: a chain that ran to its end left none, and the
        // generic release loop costs thousands of instructions even when it finds nothing
        // (a deinit is never specialized; callgrind, the proxy's miss path).
        if holdsLinks, !steps.isEmpty { releaseLinksIteratively() }
    }

    /// True once ``callback(_:)`` or ``errback(_:)`` has been called.
    @inlinable
    public var called: Bool { result != nil }

    /// True while ``pause()`` calls outnumber ``unpause()`` calls, or while the chain waits on an
    /// inner Deferred.
    @inlinable
    public var paused: Bool { pauseCount > 0 }

    // MARK: Firing

    /// Fires the Deferred with a value, running the callback chain now.
    ///
    /// - Throws: ``AlreadyCalledError`` if the Deferred was fired before (except for the one late
    ///   result after a ``cancel()`` without canceller, which is swallowed).
    @inlinable
    public func callback(_ value: Value) throws(AlreadyCalledError) {
        try start(.success(value))
    }

    /// Fires the Deferred with a failure, running the errback chain now.
    ///
    /// - Throws: ``AlreadyCalledError`` if the Deferred was fired before.
    @inlinable
    public func errback(_ error: any Error) throws(AlreadyCalledError) {
        try start(.failure(error))
    }

    /// Fires the Deferred with a `Result`.
    ///
    /// - Throws: ``AlreadyCalledError`` if the Deferred was fired before.
    @inlinable
    public func fire(_ outcome: Result<Value, any Error>) throws(AlreadyCalledError) {
        try start(outcome)
    }

    @inlinable
    func start(_ outcome: Result<Value, any Error>) throws(AlreadyCalledError) {
        if result != nil {
            if suppressAlreadyCalled {
                suppressAlreadyCalled = false
                return
            }
            throw alreadyCalledError()
        }
        result = outcome
        canceller = nil  // no longer needed; dropping it breaks cycles through captured state
        runCallbacks()
    }

    @usableFromInline
    func alreadyCalledError() -> AlreadyCalledError {
        AlreadyCalledError(file: creationFile.description, line: creationLine)
    }

    // MARK: Adding callbacks

    /// Adds a callback/errback pair. Either may be nil, which passes that track through.
    /// Callbacks added after firing run at once (unless paused).
    ///
    /// - Returns: this Deferred, to chain further calls.
    @inlinable
    @discardableResult
    public func addCallbacks(
        _ callback: ((Value) throws -> Value)?, _ errback: ((any Error) throws -> Value)?
    ) -> Deferred<Value> {
        append(
            .callbacks(
                callback.map { f in { .success(try f($0)) } },
                errback.map { f in { .success(try f($0)) } }))
    }

    /// Adds a callback/errback pair, either of which may return a Deferred that pauses the chain.
    @inlinable
    @discardableResult
    public func addCallbacks(
        _ callback: ((Value) throws -> Deferred<Value>)?,
        _ errback: ((any Error) throws -> Deferred<Value>)?
    ) -> Deferred<Value> {
        append(
            .callbacks(
                callback.map { f in { .deferred(try f($0)) } },
                errback.map { f in { .deferred(try f($0)) } }))
    }

    /// Adds a callback; a failure passes by it untouched.
    @inlinable
    @discardableResult
    public func addCallback(_ callback: @escaping (Value) throws -> Value) -> Deferred<Value> {
        append(.value(callback))
    }

    /// Adds a callback returning a Deferred: the chain waits for that Deferred's result.
    @inlinable
    @discardableResult
    public func addCallback(_ callback: @escaping (Value) throws -> Deferred<Value>) -> Deferred<Value> {
        append(.chain(callback))
    }

    /// Adds an errback; it may recover by returning a value, or rethrow. A value passes by it.
    @inlinable
    @discardableResult
    public func addErrback(_ errback: @escaping (any Error) throws -> Value) -> Deferred<Value> {
        append(.callbacks(nil, { .success(try errback($0)) }))
    }

    /// Adds an errback returning a Deferred: the chain waits for that Deferred's result.
    @inlinable
    @discardableResult
    public func addErrback(_ errback: @escaping (any Error) throws -> Deferred<Value>) -> Deferred<Value> {
        append(.callbacks(nil, { .deferred(try errback($0)) }))
    }

    /// Adds one function for both tracks; it receives the current result.
    @inlinable
    @discardableResult
    public func addBoth(_ both: @escaping (Result<Value, any Error>) throws -> Value) -> Deferred<Value> {
        append(.callbacks({ .success(try both(.success($0))) }, { .success(try both(.failure($0))) }))
    }

    /// Runs `observer` on either track, then passes the result on unchanged (an `always`).
    @inlinable
    @discardableResult
    public func addObserver(_ observer: @escaping (Result<Value, any Error>) -> Void) -> Deferred<Value> {
        append(
            .callbacks(
                { observer(.success($0)); return .success($0) },
                { observer(.failure($0)); return .failure($0) }))
    }

    /// Continues with a value of another type: the returned Deferred fires with `transform`'s
    /// result, or with this Deferred's failure. Cancelling it cancels this Deferred.
    ///
    /// This is Twisted's type-changing `addCallback`; a typed chain cannot change the type of the
    /// Deferred it is on, so the rest of the chain lives on the returned Deferred.
    @inlinable
    public func map<New>(
        file: StaticString = #fileID, line: UInt = #line, _ transform: @escaping (Value) throws -> New
    ) -> Deferred<New> {
        derive(file: file, line: line) { outcome in
            switch outcome {
            case .success(let v):
                do { return .success(try transform(v)) } catch { return .failure(error) }
            case .failure(let e): return .failure(e)
            }
        }
    }

    /// Continues with another Deferred of another type (Twisted's callback returning a Deferred).
    @inlinable
    public func flatMap<New>(
        file: StaticString = #fileID, line: UInt = #line,
        _ transform: @escaping (Value) throws -> Deferred<New>
    ) -> Deferred<New> {
        derive(file: file, line: line) { outcome in
            switch outcome {
            case .success(let v):
                do { return .deferred(try transform(v)) } catch { return .failure(error) }
            case .failure(let e): return .failure(e)
            }
        }
    }

    /// Maps both tracks into a Deferred of another type.
    @inlinable
    public func mapResult<New>(
        file: StaticString = #fileID, line: UInt = #line,
        _ transform: @escaping (Result<Value, any Error>) throws -> New
    ) -> Deferred<New> {
        derive(file: file, line: line) { outcome in
            do { return .success(try transform(outcome)) } catch { return .failure(error) }
        }
    }

    @inlinable
    func derive<New>(
        file: StaticString, line: UInt, _ transform: @escaping (Result<Value, any Error>) -> Outcome<New>
    ) -> Deferred<New> {
        let derived = Deferred<New>(canceller: { [weak self] _ in self?.cancel() }, file: file, line: line)
        holdsLinks = true
        append(.forward(derived, { [unowned derived] outcome in derived.receive(transform(outcome)) }))
        return derived
    }

    @inlinable
    @discardableResult
    func append(_ step: Step) -> Deferred<Value> {
        steps.append(step)
        if result != nil { runCallbacks() }
        return self
    }

    // MARK: Pausing

    /// Stops the chain from running until ``unpause()``; results and callbacks queue up.
    @inlinable
    public func pause() { pauseCount += 1 }

    /// Undoes one ``pause()``; when none remain and a result exists, the chain runs on.
    @inlinable
    public func unpause() {
        precondition(pauseCount > 0, "unpause() without pause()")
        pauseCount -= 1
        if pauseCount == 0, result != nil { runCallbacks() }
    }

    // MARK: Cancelling

    /// Cancels the Deferred.
    ///
    /// Unfired: calls the canceller, then fails the Deferred with ``CancelledError`` if the
    /// canceller did not fire it. Without a canceller, the one late result the producer will
    /// deliver is swallowed. Fired but waiting on an inner Deferred: cancels the inner one.
    /// Fired and not waiting: does nothing.
    public func cancel() {
        if result == nil {
            if let canceller {
                self.canceller = nil
                canceller(self)
            } else {
                suppressAlreadyCalled = true
            }
            if result == nil {
                try? start(.failure(CancelledError()))
            }
        } else if let inner = chainedTo {
            inner._cancel()
        }
    }

    // MARK: Running the chain

    @inlinable
    func receive(_ outcome: Outcome<Value>) {
        // Used by derived Deferreds: the source delivers exactly once, but the derived one may
        // have been cancelled (and so fired) earlier; a late delivery is then dropped.
        guard result == nil else { return }
        switch outcome {
        case .success(let v): result = .success(v)
        case .failure(let e): result = .failure(e)
        case .deferred(let inner):
            if let innerResult = inner.result, inner.pauseCount == 0, !inner.running {
                // Already fired (flatMap returned a fired Deferred): take its result now. Waiting
                // on it would never resume, since a fired Deferred's chain is not run again.
                inner.failureHandedOff = true
                result = innerResult
            } else {
                waitOn(inner)
            }
        }
    }

    /// Runs this Deferred's chain and every chain it hands results to, iteratively.
    ///
    /// Links of this Deferred's own type are kept in a typed stack (no existential boxing, and
    /// no allocation at all while no other Deferred is involved); the first link of another type
    /// moves the whole chain to the type-erased runner.
    @inlinable
    func runCallbacks() {
        if running { return }
        var current = self
        var stack: [Deferred<Value>] = []
        while true {
            if current.pauseCount > 0 { return }
            switch current.advance() {
            case .done:
                guard let previous = stack.popLast() else { return }
                current = previous
            case .same(let next):
                stack.append(current)
                current = next
            case .other(let link):
                var chain: [any _ChainLink] = []
                chain.reserveCapacity(stack.count + 2)
                for d in stack { chain.append(d) }
                chain.append(current)
                chain.append(link)
                _runChain(&chain)
                return
            }
        }
    }

    /// Runs callbacks until done or until the result was handed to another link, returned to run
    /// next.
    @inlinable
    func advance() -> Handoff {
        if mayBeChained {
            chainedTo = nil
            mayBeChained = false
        }
        while stepIndex < steps.count {
            let step = steps[stepIndex]
            stepIndex += 1
            guard let current = result else { return .done }
            let produced: Outcome<Value>
            switch step {
            case .value(let cb):
                // The common step: a value callback. A failure passes by it.
                guard case .success(let v) = current else {
                    failureHandedOff = false
                    continue
                }
                running = true
                do {
                    let next = try cb(v)
                    running = false
                    result = .success(next)
                } catch {
                    running = false
                    result = .failure(error)
                }
                failureHandedOff = false
                continue
            case .chain(let cb):
                guard case .success(let v) = current else {
                    failureHandedOff = false
                    continue
                }
                running = true
                do { produced = .deferred(try cb(v)) } catch { produced = .failure(error) }
                running = false
            case .resume(let outer):
                outer.result = current
                outer.failureHandedOff = false
                outer.pauseCount -= 1
                if case .failure = current { failureHandedOff = true }
                // An outer Deferred still paused (by its own pause()) runs later.
                if outer.pauseCount > 0 { continue }
                compactSteps()
                return .same(outer)
            case .forward(let target, let deliver):
                deliver(current)
                if case .failure = current { failureHandedOff = true }
                // A target still paused (by its own pause() or on another Deferred) runs later.
                if target._isPaused { continue }
                compactSteps()
                return .other(target)
            case .callbacks(let cb, let eb):
                running = true
                switch current {
                case .success(let v):
                    if let cb {
                        do { produced = try cb(v) } catch { produced = .failure(error) }
                    } else {
                        produced = .success(v)
                    }
                case .failure(let e):
                    if let eb {
                        do { produced = try eb(e) } catch { produced = .failure(error) }
                    } else {
                        produced = .failure(e)
                    }
                }
                running = false
            }
            switch produced {
            case .success(let v):
                result = .success(v)
                failureHandedOff = false
            case .failure(let e):
                result = .failure(e)
                failureHandedOff = false
            case .deferred(let inner):
                if inner === self {
                    result = .failure(DeferredChainError.returnedSelf)
                    continue
                }
                if let innerResult = inner.result, inner.pauseCount == 0 {
                    // Already fired: take its result and keep going.
                    inner.failureHandedOff = true
                    result = innerResult
                    failureHandedOff = false
                } else {
                    waitOn(inner)
                    compactSteps()
                    return .done
                }
            }
        }
        compactSteps()
        return .done
    }

    /// Pauses this chain on `inner`; when `inner` reaches the marker, its result continues here.
    @inlinable
    func waitOn(_ inner: Deferred<Value>) {
        pauseCount += 1
        chainedTo = inner
        mayBeChained = true
        if result == nil {
            // A derived Deferred waiting on a Deferred returned by flatMap: mark it fired.
            result = .failure(DeferredChainError.waiting)
            failureHandedOff = true
        }
        inner.holdsLinks = true
        inner.steps.append(.resume(self))
        // The inner Deferred may already hold a result while paused; nothing runs until it is
        // unpaused, which then reaches the marker above.
    }

    /// Drops the steps already run. The dropped steps are released only after they left
    /// `steps`, so whatever their release runs (deinits) finds this Deferred consistent.
    @inlinable
    func compactSteps() {
        if stepIndex == steps.count {
            var done: [Step] = []
            swap(&done, &steps)
            stepIndex = 0
            if done.count == 1 {
                _ = done.removeLast()
            } else {
                done.removeAll(keepingCapacity: true)
            }
            // Reuse the storage unless a release added steps meanwhile.
            if steps.isEmpty { steps = done }
        } else if stepIndex > 32, stepIndex * 2 > steps.count {
            let done = steps
            steps = Array(done[stepIndex...])
            stepIndex = 0
            _ = consume done
        }
    }

    /// Releases the Deferreds this one's steps hand results to, one at a time: a Deferred of this
    /// type held only by the steps gives up its own links first, so a long chain of unfired
    /// derived or waiting Deferreds is torn down by this loop instead of by recursive deinits that
    /// would overflow the stack. Links of other types are released normally after the loop (each
    /// tears down its own same-type run the same way), so recursion is bounded by type changes.
    func releaseLinksIteratively() {
        var pending: [Deferred<Value>] = []
        var others: [any _ChainLink] = []
        moveLinks(into: &pending, others: &others)
        while !pending.isEmpty {
            // Uniqueness is checked on a typed reference: through AnyObject or an opened
            // existential it reads as shared.
            var link = pending.removeLast()
            if isKnownUniquelyReferenced(&link) {
                link.moveLinks(into: &pending, others: &others)
            }
            // `link` is released here; its steps are already empty when it was held only here.
        }
    }

    /// Empties the steps, moving the Deferreds they hand results to onto `pending` (this type,
    /// first step's link on top: the order recursive release would follow) or `others`.
    func moveLinks(into pending: inout [Deferred<Value>], others: inout [any _ChainLink]) {
        var taken: [Step] = []
        swap(&taken, &steps)
        stepIndex = 0
        // Popped from the end, so the first step's link is pushed last; each step is destroyed
        // before the next is popped, leaving `pending` the only holder of a link nobody else has.
        while !taken.isEmpty {
            switch taken.removeLast() {
            case .resume(let outer): pending.append(outer)
            case .forward(let target, _):
                if let same = target as? Deferred<Value> {
                    pending.append(same)
                } else {
                    others.append(target)
                }
            case .value, .chain, .callbacks: break
            }
        }
    }
}

/// What a callback produced: a value, a failure, or a Deferred to wait for.
@usableFromInline
enum Outcome<Value> {
    case success(Value)
    case failure(any Error)
    case deferred(Deferred<Value>)
}

/// Type-erased view of a Deferred for the iterative chain runner.
@usableFromInline
protocol _ChainLink: AnyObject {
    var _isPaused: Bool { get }
    /// Runs callbacks until done (returns nil) or until a result was handed to another link,
    /// which is returned to run next.
    func _advanceLink() -> (any _ChainLink)?
}

/// Runs a chain of links of mixed types, iteratively: the last link runs until it is done (then
/// the one below it continues) or hands its result to another link (pushed on top).
@usableFromInline
func _runChain(_ chain: inout [any _ChainLink]) {
    while let current = chain.last {
        if current._isPaused { return }
        if let next = current._advanceLink() {
            chain.append(next)
        } else {
            chain.removeLast()
        }
    }
}

/// Type-erased cancel, for forwarding cancellation to an inner Deferred of any type.
@usableFromInline
protocol _Cancellable: AnyObject {
    func _cancel()
}

extension Deferred: _Cancellable {
    @usableFromInline
    func _cancel() { cancel() }
}

extension Deferred: _ChainLink {
    @usableFromInline
    var _isPaused: Bool { pauseCount > 0 }

    // Reached through `any _ChainLink` (a result handed to a Deferred of another type), this runs
    // as unspecialized generic code: its metadata lookups cost thousands of instructions per
    // hop (callgrind, the proxy's miss path). The common value types get specialized bodies,
    // which the generic entry dispatches to after one type check.
    @usableFromInline
    @_specialize(where Value == String)
    @_specialize(where Value == [UInt8])
    @_specialize(where Value == Void)
    func _advanceLink() -> (any _ChainLink)? {
        switch advance() {
        case .done: return nil
        case .same(let next): return next
        case .other(let link): return link
        }
    }

}

/// Internal placeholders: never seen by callbacks.
@usableFromInline
enum DeferredChainError: Error {
    case returnedSelf
    case waiting
}
