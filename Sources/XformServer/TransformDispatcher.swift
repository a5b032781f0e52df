import XformCore
import XformTransforms

/// A connection that can be asked to finish and close, for graceful shutdown.
protocol DrainableConnection: AnyObject {
    /// Stop taking new work; close once the replies already owed are sent.
    func drain()
}

/// The state both ports share: the one `TransformService`, the limits, the counters, the
/// open connections, and the shutdown switch.
///
/// Protocols ask it for transforms (only registered ones can be reached: the service's guarded
/// lookup) and report to it. Confined to the reactor thread.
public final class TransformDispatcher {
    /// The one service instance behind both ports.
    public let service: TransformService
    /// What transforms may use: clock, thread pool, limits.
    public let context: TransformContext
    /// The connection limits.
    public let limits: ServerLimits
    /// The counters.
    public let stats: ServerStats
    /// The server's log.
    public let logger: Logger
    /// The reactor's clock.
    public let clock: any ReactorTime
    /// True once ``beginShutdown()`` was called.
    @exclusivity(unchecked) public private(set) var shuttingDown = false

    var connections: [ObjectIdentifier: any DrainableConnection] = [:]
    var drainWaiters: [Deferred<Void>] = []

    /// - Parameters:
    ///   - service: the transforms.
    ///   - clock: the reactor's clock (idle timeouts, asynchronous transforms).
    ///   - threadPool: where large inputs are transformed; nil runs them inline.
    ///   - limits: the limits.
    ///   - logger: where to log.
    public init(
        service: TransformService, clock: any ReactorTime, threadPool: (any ThreadPoolRunner)? = nil,
        limits: ServerLimits = ServerLimits(), logger: Logger = Logger(system: "transform-server")
    ) {
        self.service = service
        self.clock = clock
        self.limits = limits
        self.logger = logger
        self.stats = ServerStats(clock: clock)
        self.context = TransformContext(
            clock: clock, threadPool: threadPool, offloadThreshold: limits.offloadThreshold,
            maximumInputBytes: limits.maxRequestBytes)
    }

    /// The number of open connections on both ports.
    public var connectionCount: Int { connections.count }

    func register(_ connection: any DrainableConnection, port: String) {
        connections[ObjectIdentifier(connection)] = connection
        stats.connectionOpened(port: port)
        if shuttingDown { connection.drain() }
    }

    func unregister(_ connection: any DrainableConnection, port: String) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
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
        if !shuttingDown {
            shuttingDown = true
            logger.info("shutting down: draining \(connections.count) connection(s)")
            for c in Array(connections.values) { c.drain() }
        }
        if connections.isEmpty { return succeed(()) }
        let d = Deferred<Void>()
        drainWaiters.append(d)
        return d
    }

    /// Finds a registered transform by its name's bytes; `cached`, the caller's last handle, is
    /// tried first (one byte comparison instead of a registry scan).
    ///
    /// - Returns: the handle, or nil: answer ``unknownTransformError(_:)``.
    @inline(__always)
    func lookup(_ name: UnsafeRawBufferPointer, cached: TransformHandle?) -> TransformHandle? {
        if let cached, cached.isRegistered, cached.matches(name) { return cached }
        return service.lookup(name: name)
    }

    /// The wire error for a name that reaches nothing. A name outside the name grammar is not
    /// echoed back.
    func unknownTransformError(_ name: UnsafeRawBufferPointer) -> WireError {
        TransformName.isValid(name) ? .unknownTransform(String(decoding: name, as: UTF8.self)) : .unknownTransform(nil)
    }

    /// Maps a failure to its wire error.
    func wireError(_ error: any Error) -> WireError {
        WireError.from(error, maxBytes: limits.maxRequestBytes, shuttingDown: shuttingDown)
    }
}
