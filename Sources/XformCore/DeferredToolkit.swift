// Small asynchronous data structures and patterns from Terry Jones's Deferred posts (seed 001):
// chainDeferred as Twisted has it, the asynchronous dictionary, the controllable Deferred.

// MARK: chainDeferred

extension Deferred where Value: ExpressibleByNilLiteral {
    /// Fires `other` with this Deferred's result, exactly as Twisted's `chainDeferred`:
    /// `addCallbacks(other.callback, other.errback)`. After the chained step this Deferred's value
    /// is `nil` (Twisted's `None`: `callback` returns nothing) and a failure counts as handled.
    ///
    /// The pitfalls ("Twisted's Deferred class chainDeferred method is too simplistic?", seed 001):
    /// - `other` fired or cancelled first: this Deferred's result then raises
    ///   ``AlreadyCalledError`` inside the step, and this chain continues with that failure
    ///   (`boom1`, `boom2`).
    /// - Cancelling this Deferred does not cancel `other`: `other` is simply fired with the
    ///   cancellation failure, or with `nil` if an earlier errback handled it (`uncalled`).
    /// - Callbacks added here after chaining see `nil`, not the result (`unexpected1`); a second
    ///   `chainDeferred` gives its target `nil` (`unexpected2`).
    ///
    /// What to use instead: `other` as a Deferred derived with ``map(file:line:_:)`` (cancelling it
    /// cancels this one), or ``addObserver(_:)`` with `other.fire` to pass the result on while
    /// keeping it here.
    ///
    /// - Returns: this Deferred.
    @discardableResult
    public func chainDeferred(_ other: Deferred<Value>) -> Deferred<Value> {
        addCallbacks(
            { (value: Value) throws -> Value in
                try other.callback(value)
                return nil
            },
            { (error: any Error) throws -> Value in
                try other.errback(error)
                return nil
            })
    }
}

extension Deferred where Value == Void {
    /// Twisted's `chainDeferred` for Deferreds without a value: see the optional-value form for
    /// the semantics and pitfalls (after the step this Deferred's value is `()`).
    ///
    /// - Returns: this Deferred.
    @discardableResult
    public func chainDeferred(_ other: Deferred<Void>) -> Deferred<Void> {
        addCallbacks(
            { (_: Void) throws -> Void in try other.callback(()) },
            { (error: any Error) throws -> Void in try other.errback(error) })
    }
}

// MARK: DeferredDict

/// A dictionary whose lookups return Deferreds: already fired for a present key, firing when the
/// key is set otherwise (Terry Jones, "How to asynchronously exchange a dictionary using Twisted
/// deferreds", seed 001). A producer fills it in its own order; consumers ask in theirs.
///
/// Confined to the reactor thread.
public final class DeferredDict<Key: Hashable, Value> {
    var values: [Key: Value]
    var waiting: [Key: [Deferred<Value>]] = [:]

    /// Creates a dictionary holding `values`.
    public init(_ values: [Key: Value] = [:]) {
        self.values = values
    }

    /// Looks `key` up.
    ///
    /// - Returns: a Deferred already fired with the value when `key` is present, else one that
    ///   fires when the key is set. Cancelling a waiting Deferred withdraws it.
    public subscript(key: Key) -> Deferred<Value> {
        if let v = values[key] { return succeed(v) }
        let d = Deferred<Value>(canceller: { [weak self] d in
            self?.waiting[key]?.removeAll { $0 === d }
            if self?.waiting[key]?.isEmpty == true { self?.waiting[key] = nil }
        })
        waiting[key, default: []].append(d)
        return d
    }

    /// Sets `key` to `value`, firing every Deferred waiting for it (in the order they asked).
    public func set(_ value: Value, for key: Key) {
        values[key] = value
        if let ds = waiting.removeValue(forKey: key) {
            for d in ds { try? d.callback(value) }
        }
    }

    /// The value for `key` now, if present (no Deferred).
    public func currentValue(for key: Key) -> Value? { values[key] }

    /// Removes `key`'s value and returns it (waiters are unaffected: a present key has none).
    @discardableResult
    public func removeValue(forKey key: Key) -> Value? { values.removeValue(forKey: key) }

    /// The number of present keys.
    public var count: Int { values.count }

    /// The number of Deferreds waiting for keys not yet set.
    public var waitingCount: Int { waiting.values.reduce(0) { $0 + $1.count } }
}

// MARK: ControllableDeferred

/// A Deferred its holder may fire or cancel at any time, whatever the original Deferred it wraps
/// does (Terry Jones, "Yet another cancelable Twisted deferred class", 2013, seed 001).
///
/// Add callbacks to ``deferred``. Firing it with ``callback(_:)``, ``errback(_:)`` or
/// ``cancel()`` (or cancelling ``deferred`` itself) fires it at once and cancels the original.
/// When the original fires first, its result or failure passes through to ``deferred``: unlike
/// the post's untested class, whose `chainDeferred` inside a callback hands on `None`.
///
/// Confined to the reactor thread.
public final class ControllableDeferred<Value> {
    /// The Deferred to add callbacks to.
    public let deferred: Deferred<Value>
    let original: Deferred<Value>
    /// True once ``deferred`` has a result, from either side.
    public private(set) var fired = false

    /// Wraps `original`.
    public init(_ original: Deferred<Value>, file: StaticString = #fileID, line: UInt = #line) {
        self.original = original
        weak var this: ControllableDeferred<Value>?
        deferred = Deferred<Value>(canceller: { _ in this?.cancel() }, file: file, line: line)
        this = self
        // The original keeps this wrapper alive until it fires (it is consumed: once the wrapper
        // has fired, the original's late failure, such as its cancellation, is nobody's concern).
        original.observe(consume: true) { [self] outcome in
            guard !fired else { return }
            fired = true
            try? deferred.fire(outcome)
        }
    }

    /// Fires ``deferred`` with `value` and cancels the original. Does nothing once fired.
    public func callback(_ value: Value) { take(.success(value)) }

    /// Fails ``deferred`` with `error` and cancels the original. Does nothing once fired.
    public func errback(_ error: any Error) { take(.failure(error)) }

    /// Fails ``deferred`` with ``CancelledError`` and cancels the original. Does nothing once
    /// fired.
    public func cancel() { take(.failure(CancelledError())) }

    /// Pauses both ``deferred`` and the original.
    public func pause() {
        deferred.pause()
        original.pause()
    }

    /// Unpauses both ``deferred`` and the original.
    public func unpause() {
        deferred.unpause()
        original.unpause()
    }

    func take(_ outcome: Result<Value, any Error>) {
        guard !fired else { return }
        fired = true
        try? deferred.fire(outcome)
        original.cancel()
    }
}
