/// Memoizes a Deferred-returning function: Terry Jones's "Promises are first-class objects for
/// function calls" (seed 001, 2013), with the eviction hooks a cache needs.
///
/// The post's point is that a memo table of *promises* covers calls that are still underway:
/// a second call with argument X made while `fn(X)` runs does not call `fn(X)` again. Here every
/// caller gets its own Deferred (so one caller's callbacks never change what another sees), and:
///
/// - concurrent calls with the same key share one underlying call (*single flight*: Part 14's
///   "waiters" exercise); each later caller is a *join*;
/// - cancelling one caller's Deferred detaches only that caller; when the last waiter of an
///   in-flight call detaches, the underlying call's Deferred is cancelled (Part 19);
/// - failures are not remembered: every waiter of the failed call fails, the next call tries again;
/// - successful values are kept, least recently used evicted first, under a total cost bound
///   (`maximumCost`, with `cost` per entry), and optionally for at most `timeToLive` on an
///   injected clock (Part 14's expiry exercise). A maximum cost of zero keeps nothing, leaving
///   single flight alone.
///
/// Confined to the reactor thread, like the Deferreds it hands out.
///
/// Everything is `@inlinable` (internals `@usableFromInline`), like ``Deferred``: unspecialized,
/// a cache hit spent most of its instructions in generic metadata lookups (callgrind).
public final class DeferredMemoizer<Key: Hashable, Value> {
    /// Why a value left the cache, as told to ``onEviction``.
    public enum EvictionReason: Sendable, Equatable {
        /// Evicted, least recently used first, to make room under ``maximumCost``.
        case capacity
        /// Older than ``timeToLive``.
        case expired
        /// Removed by ``removeValue(forKey:)`` or ``removeAll()``, or replaced by a newer value.
        case removed
    }

    /// What the memoizer has counted since it was made.
    public struct Statistics: Sendable, Equatable {
        /// Calls answered from the cache.
        public var hits = 0
        /// Calls that started an underlying call.
        public var misses = 0
        /// Calls that joined an underlying call already in flight (single flight).
        public var joins = 0
        /// Values evicted to stay under the cost bound.
        public var evictions = 0
        /// Values dropped because they outlived the time to live.
        public var expirations = 0
        /// Underlying calls cancelled because their last waiter left.
        public var cancellations = 0
        /// Underlying calls that failed (each failure fans out to all its waiters).
        public var failures = 0
        /// Makes zeroed counters.
        public init() {}
    }

    /// The most total cost the cache holds; zero (or less) caches nothing.
    public let maximumCost: Int
    /// How long a value stays usable after it was stored; nil for no limit.
    public let timeToLive: Duration?
    /// Told about every value that leaves the cache, with the reason.
    public var onEviction: ((Key, Value, EvictionReason) -> Void)?
    /// Told when an underlying call is cancelled because its last waiter left (Part 19's
    /// "Canceling poem download.").
    public var onCancel: ((Key) -> Void)?
    /// Turns an underlying call's failure into what its waiters fail with, once for all of them
    /// (an errback on each underlying call would cost a step per call); nil passes it as it is.
    public var mapFailure: ((Key, any Error) -> any Error)?
    /// The counters.
    @inlinable public var statistics: Statistics { counters }
    /// The total cost of the values held.
    @inlinable public var totalCost: Int { heldCost }

    // `@exclusivity(unchecked)` on the state a cache hit touches (counters, table, recency list):
    // the dynamic checks were 7% of a proxied hit's instructions (callgrind), and no access to
    // these stays open across a call out to user code (callbacks and hooks run between accesses).
    @exclusivity(unchecked) @usableFromInline var counters = Statistics()
    @exclusivity(unchecked) @usableFromInline var heldCost = 0
    @usableFromInline let function: (Key) -> Deferred<Value>
    @usableFromInline let cost: (Key, Value) -> Int
    @usableFromInline let clock: (any ReactorTime)?

    /// One underlying call in flight and the callers waiting for it.
    @usableFromInline
    final class Flight {
        // Unchecked for the reason given at `counters` (a miss touches these).
        @exclusivity(unchecked) @usableFromInline var underlying: Deferred<Value>?
        @exclusivity(unchecked) @usableFromInline var waiters: [Deferred<Value>] = []
        /// Out of the table (finished or cancelled): saves a table lookup to tell.
        @exclusivity(unchecked) @usableFromInline var over = false
        @usableFromInline init() {}
    }
    // Unchecked for the reason given at `counters` (a miss touches the table three times).
    @exclusivity(unchecked) @usableFromInline var inFlight: [Key: Flight] = [:]

    /// One cached value, in a doubly linked recency list threaded through `slots` by index
    /// (indices, not references: no retain cycles, no recursive release of a long list).
    @usableFromInline
    struct Slot {
        @usableFromInline var key: Key?
        @usableFromInline var value: Value?
        @usableFromInline var cost: Int
        @usableFromInline var storedAt: Duration
        @usableFromInline var newer = -1
        @usableFromInline var older = -1

        @usableFromInline
        init(key: Key? = nil, value: Value? = nil, cost: Int = 0, storedAt: Duration = .zero) {
            self.key = key
            self.value = value
            self.cost = cost
            self.storedAt = storedAt
        }
    }
    @exclusivity(unchecked) @usableFromInline var slots: [Slot] = []
    @usableFromInline var freeSlots: [Int] = []
    @exclusivity(unchecked) @usableFromInline var index: [Key: Int] = [:]
    /// Most recently used.
    @exclusivity(unchecked) @usableFromInline var newest = -1
    /// Least recently used: evicted first.
    @exclusivity(unchecked) @usableFromInline var oldest = -1

    /// Makes a memoizer of `function`.
    ///
    /// - Parameters:
    ///   - maximumCost: the bound on the total cost of cached values; 0 caches nothing.
    ///     Default: no bound.
    ///   - timeToLive: how long a value is served after it was stored; needs `clock`.
    ///   - clock: the time source for `timeToLive` (the reactor, or a manual clock in tests).
    ///   - cost: the cost of one entry; default 1 (so `maximumCost` counts entries).
    ///   - function: the underlying call. It may return an already-fired Deferred.
    public init(
        maximumCost: Int = .max, timeToLive: Duration? = nil, clock: (any ReactorTime)? = nil,
        cost: @escaping (Key, Value) -> Int = { _, _ in 1 },
        _ function: @escaping (Key) -> Deferred<Value>
    ) {
        precondition(timeToLive == nil || clock != nil, "a time to live needs a clock")
        self.maximumCost = maximumCost
        self.timeToLive = timeToLive
        self.clock = clock
        self.cost = cost
        self.function = function
    }

    // MARK: Calls

    /// Calls the memoized function for `key`: from the cache if a live value is held, by joining
    /// the underlying call if one is in flight, else by starting one.
    ///
    /// - Returns: a Deferred of this caller's own: already fired on a hit; otherwise it fires
    ///   with the underlying call's value or failure. Cancelling it detaches this caller only
    ///   (it fails with `CancelledError`); the underlying call is cancelled when no waiter is left.
    @inlinable
    public func call(_ key: Key) -> Deferred<Value> {
        if let value = cachedValue(forKey: key) { return succeed(value) }
        return callUncached(key)
    }

    /// ``call(_:)`` for a caller that has just seen ``cachedValue(forKey:)`` answer nil: joins
    /// or starts the underlying call without looking in the cache again.
    ///
    /// - Returns: as ``call(_:)`` on a miss.
    @inlinable
    public func callUncached(_ key: Key) -> Deferred<Value> {
        if let flight = inFlight[key] {
            counters.joins += 1
            return addWaiter(to: flight, key: key)
        }
        counters.misses += 1
        let flight = Flight()
        inFlight[key] = flight
        let waiter = addWaiter(to: flight, key: key)
        let underlying = function(key)
        // The flight may already be over (a synchronous result), or detached (a waiter's callback
        // cancelled it): then the Deferred is not kept.
        if !flight.over { flight.underlying = underlying }
        // Observed through a step that also consumes the failure (the waiters are told, nothing
        // is left unhandled), without a derived Deferred: a type-changing hop runs the chain
        // through unspecialized code, thousands of instructions per call (callgrind).
        underlying.holdsLinks = true
        // The flight is held strongly (a weak reference costs it a side table per call): the
        // cycle through `flight.underlying` ends when this step runs or the flight is cancelled.
        underlying.append(
            .forward(Self.observerLink) { [weak self, flight] outcome in
                guard let self else { return }
                self.finish(key, flight, outcome)
            })
        return waiter
    }

    /// The sentinel link of observing steps (the one `deferredList`'s `consumeErrors` uses).
    @usableFromInline
    static var observerLink: any _ChainLink { ObserverLink.shared }

    /// The cached value for `key`, if a live one is held: counted as a hit and made the most
    /// recently used. An expired value is dropped (and nil returned) without counting a miss.
    ///
    /// This is the synchronous half of ``call(_:)``, for callers that answer hits without a
    /// Deferred.
    @inlinable
    public func cachedValue(forKey key: Key) -> Value? {
        guard let i = index[key] else { return nil }
        if isExpired(i) {
            remove(i, reason: .expired)
            return nil
        }
        touch(i)
        counters.hits += 1
        return slots[i].value
    }

    /// True when a live value for `key` is cached (does not count or reorder).
    @inlinable
    public func contains(_ key: Key) -> Bool {
        guard let i = index[key] else { return false }
        return !isExpired(i)
    }

    /// The number of values held (expired ones included until they are noticed).
    @inlinable
    public var count: Int { index.count }

    /// The number of underlying calls in flight.
    @inlinable
    public var inFlightCount: Int { inFlight.count }

    /// The number of callers waiting on the underlying call for `key` (0 when none is in flight).
    @inlinable
    public func waiterCount(forKey key: Key) -> Int { inFlight[key]?.waiters.count ?? 0 }

    /// Drops the cached value for `key`, if any (calls in flight are not affected).
    @inlinable
    public func removeValue(forKey key: Key) {
        if let i = index[key] { remove(i, reason: .removed) }
    }

    /// Drops every cached value (calls in flight are not affected).
    @inlinable
    public func removeAll() {
        while oldest >= 0 { remove(oldest, reason: .removed) }
    }

    // MARK: Single flight

    @inlinable
    func addWaiter(to flight: Flight, key: Key) -> Deferred<Value> {
        // The flight is held strongly, as in `callUncached`: the cycle through `flight.waiters`
        // ends when the waiter fires or is cancelled (either drops its canceller).
        let waiter = Deferred<Value>(canceller: { [weak self, flight] w in
            guard let self else { return }
            self.detach(w, from: flight, key: key)
        })
        flight.waiters.append(waiter)
        return waiter
    }

    /// A waiter was cancelled: it leaves; the last one to leave cancels the underlying call.
    @inlinable
    func detach(_ waiter: Deferred<Value>, from flight: Flight, key: Key) {
        flight.waiters.removeAll { $0 === waiter }
        guard flight.waiters.isEmpty, !flight.over else { return }
        flight.over = true
        inFlight[key] = nil
        counters.cancellations += 1
        onCancel?(key)
        let underlying = flight.underlying
        flight.underlying = nil
        underlying?.cancel()
    }

    @inlinable
    func finish(_ key: Key, _ flight: Flight, _ outcome: Result<Value, any Error>) {
        // A flight cancelled by its last waiter is no longer in the table: its late result
        // (the cancellation itself, usually) reaches nobody.
        guard !flight.over else { return }
        flight.over = true
        inFlight[key] = nil
        flight.underlying = nil
        let waiters = flight.waiters
        flight.waiters = []
        switch outcome {
        case .success(let value):
            store(key, value)
            for w in waiters { try? w.callback(value) }
        case .failure(let error):
            counters.failures += 1
            let mapped = mapFailure?(key, error) ?? error
            for w in waiters { try? w.errback(mapped) }
        }
    }

    // MARK: The cache

    @inlinable
    func isExpired(_ i: Int) -> Bool {
        guard let ttl = timeToLive, let clock else { return false }
        return clock.now - slots[i].storedAt >= ttl
    }

    @inlinable
    func store(_ key: Key, _ value: Value) {
        guard maximumCost > 0 else { return }
        let c = cost(key, value)
        guard c <= maximumCost else { return }
        if let i = index[key] { remove(i, reason: .removed) }
        while oldest >= 0, isExpired(oldest) { remove(oldest, reason: .expired) }
        while oldest >= 0, heldCost + c > maximumCost { remove(oldest, reason: .capacity) }
        let slot = Slot(key: key, value: value, cost: c, storedAt: clock?.now ?? .zero)
        let i: Int
        if let free = freeSlots.popLast() {
            i = free
            slots[i] = slot
        } else {
            i = slots.count
            slots.append(slot)
        }
        index[key] = i
        heldCost += c
        linkAsNewest(i)
    }

    @inlinable
    func remove(_ i: Int, reason: EvictionReason) {
        unlink(i)
        let slot = slots[i]
        slots[i] = Slot()
        freeSlots.append(i)
        heldCost -= slot.cost
        guard let key = slot.key, let value = slot.value else { return }
        index[key] = nil
        switch reason {
        case .capacity: counters.evictions += 1
        case .expired: counters.expirations += 1
        case .removed: break
        }
        onEviction?(key, value, reason)
    }

    @inlinable
    func touch(_ i: Int) {
        guard newest != i else { return }
        unlink(i)
        linkAsNewest(i)
    }

    @inlinable
    func linkAsNewest(_ i: Int) {
        slots[i].older = newest
        slots[i].newer = -1
        if newest >= 0 { slots[newest].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
    }

    @inlinable
    func unlink(_ i: Int) {
        let (newer, older) = (slots[i].newer, slots[i].older)
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[i].newer = -1
        slots[i].older = -1
    }
}
