import XformCore
import XformFraming
import XformTransforms

/// A connection that can be asked to finish and close, for graceful shutdown.
protocol DrainableConnection: AnyObject {
    /// Stop taking new work; close once the replies already owed are sent.
    func drain()
    /// Accepted during shutdown: answer the first read's requests `shutting_down`, then close
    /// (or close after a short grace if nothing comes).
    func drainJustAccepted()
    /// Where ``ServerState`` keeps it (moved when another connection leaves).
    var registryIndex: Int { get set }
    /// The port it came in on.
    var port: ServerPort { get }
    /// Since when (nanoseconds on the clock's scale) it has been open unused, if it may be
    /// evicted to make room: it has not completed a request and owes nothing. Nil otherwise.
    var evictableSince: Int64? { get }
    /// Closes it to make room for a new connection.
    func evict()
    /// Pauses (true) or allows (false) the delivery of its requests for the pending-work budget.
    func setThrottled(_ on: Bool)
}

/// A local transform and its counters on one port, as a connection caches them.
struct RecentTransform {
    let handle: TransformHandle
    let counters: TransformCounters
}

/// The state every connection of one server shares: the backend that runs requests, the
/// limits, the counters, the open connections and the shutdown switch.
///
/// Protocols run requests through ``backend`` (for the local ``TransformService``, only
/// registered transforms can be reached: its guarded lookup) and report to it. One instance per
/// server: nothing on the request path is global. Confined to the reactor thread.
public final class ServerState {
    /// What runs the requests: the local ``TransformService`` or another backend (a proxy).
    public let backend: any TransformBackend
    /// The backend when it is the local service: its handles give the ASCII fast path.
    let localService: TransformService?
    /// What transforms may use: clock, thread pool, limits.
    public let context: TransformContext
    /// The connection limits.
    public let limits: ServerLimits
    /// The per-connection limits every session shares (from ``limits``).
    let sessionConfiguration: SessionConfiguration
    /// The counters.
    public let stats: ServerStats
    /// The server's log.
    public let logger: Logger
    /// The reactor's clock.
    public let clock: any ReactorTime
    /// True once ``beginShutdown()`` was called.
    public var shuttingDown: Bool { isShuttingDown }
    // Unchecked, with `connections`: read when each connection registers and unregisters (a
    // checked access costs about 97 instructions, callgrind); no access spans a call.
    @exclusivity(unchecked) private var isShuttingDown = false
    /// Readiness and the figures `/metrics` adds to the counters.
    public let health = ServerHealth()
    /// Bounds asynchronous and thread-pool transforms, fairly across connections
    /// (`--max-concurrent-async`); nil: no bound and no queue.
    public let asyncGate: AsyncWorkGate?
    /// Turns this state's own report into the whole process's (`--reactors N`: every loop's
    /// counters summed); nil with one loop.
    public var combineReports: (([String]) -> [String])?
    /// The connection limit of each port (indexed by ``ServerPort``) shared with the other
    /// loops of `--reactors N`, so ``ServerLimits/maxConnections`` holds for the process; nil
    /// with one loop. Set before the server's ports are built.
    public var connectionBudgets: [ConnectionBudget]?

    /// The open connections, each knowing its index (no hashing per connection).
    @exclusivity(unchecked) var connections: [any DrainableConnection] = []
    /// The local transform each port's connections used last, with its counters (indexed by
    /// ``ServerPort``): a new connection asking for the same one skips the registry and the
    /// counters' dictionary, two hash lookups (about 300 instructions per connection, callgrind).
    /// Unchecked for the same measured reason as `connections`; no access spans a call.
    @exclusivity(unchecked) private var recentTransforms = [RecentTransform?](repeating: nil, count: ServerPort.allCases.count)
    var drainWaiters: [Deferred<Void>] = []

    /// - Parameters:
    ///   - backend: what runs the requests (the local ``TransformService``, or a proxy).
    ///   - clock: the reactor's clock (idle timeouts, asynchronous transforms).
    ///   - threadPool: where large inputs are transformed; nil runs them inline.
    ///   - limits: the limits.
    ///   - logger: where to log.
    ///   - maxConcurrentAsync: the most asynchronous and thread-pool transforms underway at once
    ///     (0: unbounded, but counted and resizable); nil makes no ``asyncGate``.
    public init(
        backend: any TransformBackend, clock: any ReactorTime, threadPool: (any ThreadPoolRunner)? = nil,
        limits: ServerLimits = ServerLimits(), logger: Logger = Logger(system: "transform-server"),
        maxConcurrentAsync: Int? = nil
    ) {
        self.asyncGate = maxConcurrentAsync.map { AsyncWorkGate(limit: $0, clock: clock) }
        self.backend = backend
        self.localService = backend as? TransformService
        self.clock = clock
        self.limits = limits
        sessionConfiguration = SessionConfiguration(
            maxPendingRequests: limits.maxPendingPerConnection, idleTimeout: limits.idleTimeout,
            requestTimeout: limits.requestTimeout, maxPendingBytes: limits.maxPendingBytesPerConnection)
        self.logger = logger
        self.stats = ServerStats(clock: clock)
        self.context = TransformContext(
            clock: clock, threadPool: threadPool, offloadThreshold: limits.offloadThreshold,
            maximumInputBytes: limits.maxRequestBytes)
    }

    /// The number of open connections on both ports.
    public var connectionCount: Int { connections.count }

    /// The transform `port` used last, if it is still registered and named `name`.
    func recentTransform(named name: UnsafeRawBufferPointer, port: ServerPort) -> RecentTransform? {
        guard let recent = recentTransforms[port.index], recent.handle.isRegistered, recent.handle.matches(name) else {
            return nil
        }
        return recent
    }

    /// Looks `name` up in the local service and remembers it, with its counters on `port`.
    func lookUpTransform(named name: UnsafeRawBufferPointer, in local: TransformService, port: ServerPort) -> RecentTransform? {
        guard let handle = local.lookup(name: name) else { return nil }
        let recent = RecentTransform(handle: handle, counters: stats.counters(for: handle.name, port: port))
        recentTransforms[port.index] = recent
        return recent
    }

    /// Adds an open connection (drained at once during shutdown).
    ///
    /// - Returns: its index, for ``unregister(at:port:)``.
    func register(_ connection: any DrainableConnection, port: ServerPort) -> Int {
        connections.append(connection)
        stats.connectionOpened(port: port)
        if shuttingDown { connection.drainJustAccepted() }
        return connections.count - 1
    }

    /// Removes the connection at `index`; the last one takes its place.
    func unregister(at index: Int, port: ServerPort) {
        guard index >= 0, index < connections.count else { return }
        let last = connections.removeLast()
        if index < connections.count {
            connections[index] = last
            last.registryIndex = index
        }
        stats.connectionClosed(port: port)
        if connections.isEmpty, shuttingDown {
            let waiters = drainWaiters
            drainWaiters.removeAll()
            for w in waiters { try? w.callback(()) }
        }
    }

    /// Starts a graceful shutdown: every connection stops taking new work (new requests are
    /// answered `shutting_down`) and closes once its owed replies are sent.
    ///
    /// - Returns: a Deferred that fires when every connection has closed.
    @discardableResult
    public func beginShutdown() -> Deferred<Void> {
        if !isShuttingDown {
            isShuttingDown = true
            logger.info("shutting down: draining \(connections.count) connection(s)")
            for c in connections { c.drain() }
        }
        if connections.isEmpty { return succeed(()) }
        let d = Deferred<Void>()
        drainWaiters.append(d)
        return d
    }

    /// Bytes all connections hold in pending work (see ``ServerLimits/maxPendingBytesTotal``).
    public var pendingBytes: Int { budget.bytes }
    /// Times the budget paused a connection.
    public var throttleCount: Int { budget.throttles }

    /// The pending-work budget's figures, in one value.
    struct PendingBudget {
        var bytes = 0
        var throttles = 0
        /// Connections paused for the budget, released together once it drains.
        var throttled: [ObjectIdentifier: any DrainableConnection] = [:]
    }
    // Unchecked: updated as every deferred request starts and completes (its checked accesses
    // cost about 840 instructions per proxy miss, callgrind); no access spans a call (the
    // connections to pause or release are called after the update).
    @exclusivity(unchecked) var budget = PendingBudget()

    /// A connection's pending work changed by `delta` (it now holds `holding` bytes). Over the
    /// budget, a connection holding more than the average share is paused (the heaviest
    /// readers stop first); once under 90 % of it, every paused connection is released.
    func pendingWorkChanged(by delta: Int, on connection: any DrainableConnection, holding: Int) {
        budget.bytes += delta
        let pending = budget.bytes
        let limit = limits.maxPendingBytesTotal
        stats.pendingBytes = pending
        if pending > limit {
            let share = pending / max(1, connections.count)
            let id = ObjectIdentifier(connection)
            if delta > 0, holding >= share, budget.throttled[id] == nil {
                budget.throttled[id] = connection
                budget.throttles += 1
                stats.throttles = budget.throttles
                connection.setThrottled(true)
            }
        } else if !budget.throttled.isEmpty, pending <= limit / 10 * 9 {
            let released = budget.throttled.values
            budget.throttled.removeAll()
            for c in released { c.setThrottled(false) }
        }
        if holding == 0, !budget.throttled.isEmpty,
            let c = budget.throttled.removeValue(forKey: ObjectIdentifier(connection))
        {
            c.setThrottled(false)
        }
    }

    /// At the connection limit of `port`: closes the oldest connection that has not completed a
    /// request (a slow or silent client), so a handful of those cannot fill the server.
    ///
    /// - Returns: true if one was closed.
    func evictOldestNewcomer(port: ServerPort) -> Bool {
        var victim: (any DrainableConnection)?
        var oldest: Int64 = 0
        for c in connections where c.port == port {
            if let since = c.evictableSince, victim == nil || since < oldest {
                victim = c
                oldest = since
            }
        }
        guard let victim else { return false }
        stats.connectionEvicted()
        victim.evict()
        return true
    }

    /// The transforms served, sorted by name.
    var transformNames: [String] { backend.catalog.map(\.name) }

    /// Why the transform names cannot be listed yet (a proxy before its upstream's first list),
    /// or nil when they can.
    var catalogUnknown: WireError? {
        backend.catalogIsKnown ? nil : .upstreamUnavailable("the upstream's transform list is not known yet; try again")
    }

    /// Maps a failure to its wire error.
    func wireError(_ error: any Error) -> WireError {
        WireError.from(error, maxBytes: limits.maxRequestBytes, shuttingDown: shuttingDown)
    }
}

/// The ports of a transform server (counters and log tags).
public enum ServerPort: String, Sendable, CaseIterable {
    /// The netstring port (protocol-spec/netstring.md).
    case netstring
    /// The line port (protocol-spec/line.md).
    case line
    /// The HTTP port (protocol-spec/http.md), when `--http-port` is given.
    case http
}
