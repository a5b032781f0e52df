import XformCore
import XformFraming
import XformTransforms

/// Builds a port's transform protocols (one per connection). The connection limit is not
/// its business: ``TransformServer`` wraps it in a ``ConnectionLimit``.
public class TransformProtocolFactory: LimitCountedFactory {
    /// The state the server's connections share.
    public let state: ServerState
    let make: (ServerState, SocketAddress) -> any LimitCountedConnection

    /// Summarises this port's refused connections (set by ``ServerState/limited(_:port:)``).
    var refusals: EventSummarizer?

    init(state: ServerState, make: @escaping (ServerState, SocketAddress) -> any LimitCountedConnection) {
        self.state = state
        self.make = make
    }

    /// Returns a protocol for the connection.
    public func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? {
        make(state, peer)
    }

    /// Returns a protocol for the connection, which counts itself in a ``ConnectionLimit``.
    public func buildCountedProtocol(peer: SocketAddress) -> (any LimitCountedConnection)? {
        make(state, peer)
    }

    /// The port stopped listening: writes the pending refusal summary.
    public func stopFactory() { refusals?.flush() }
}

/// Builds netstring transform protocols (protocol-spec/netstring.md).
public final class NetstringTransformFactory: TransformProtocolFactory {
    public init(state: ServerState) {
        super.init(state: state) { NetstringTransformProtocol(state: $0, peer: $1) }
    }
}

/// Builds line transform protocols (protocol-spec/line.md).
public final class LineTransformFactory: TransformProtocolFactory {
    public init(state: ServerState) {
        super.init(state: state) { LineTransformProtocol(state: $0, peer: $1) }
    }
}

extension ServerState {
    /// Wraps a port's factory in the connection limit (``ServerLimits/maxConnections`` per
    /// port, for all loops together when ``connectionBudgets`` is set); refusals are counted
    /// and logged.
    public func limited(_ factory: TransformProtocolFactory, port: ServerPort) -> ConnectionLimit {
        let limit = ConnectionLimit(wrapping: factory, maxConnections: limits.maxConnections)
        limit.budget = connectionBudgets?[port.index]
        // Strong captures: the state holds neither the limit nor the port, so there is no cycle;
        // a weak reference would give the state a side table and put every retain and release of
        // it, per connection and per request, on the runtime's slow path (callgrind).
        limit.makeRoom = { [self] in self.evictOldestNewcomer(port: port) }
        // The first refusal is logged in full, then one summary line per 10 s (issue 10 §4).
        let refusals = EventSummarizer(clock: clock, emit: { [logger] in logger.info($0) }) { n, t in
            "refused \(EventSummarizer.describe(n)) \(port.rawValue) connections in the last "
                + "\(EventSummarizer.describe(interval: t)) (connection limit reached)"
        }
        factory.refusals = refusals
        limit.onRefused = { [self] peer in
            self.stats.connectionRefused()
            refusals.record("refusing \(port.rawValue) connection from \(peer): connection limit reached")
        }
        return limit
    }
}

/// The connections as an application service: stopping it drains every connection of both
/// ports (in-flight requests finish, idle connections close). Starting it prepares the
/// transforms' tables.
public final class ConnectionDrainService: Service {
    /// The state the server's connections share.
    public let state: ServerState

    public init(state: ServerState) {
        self.state = state
        super.init(name: "transforms")
    }

    /// Builds the Unicode case tables now (about 35 ms, once), so no request pays for them.
    public override func startService() {
        PythonCase.prepareTables()
        super.startService()
    }

    /// Drains every port.
    ///
    /// - Returns: a Deferred that fires once every connection has closed.
    public override func stopService() -> Deferred<Void> {
        _ = super.stopService()
        return state.beginShutdown()
    }
}

/// Marks the server ready once every port listens (it starts last) and unready as soon as a
/// stop begins (it stops first): what `GET /readyz` reports.
final class ReadinessService: Service {
    let health: ServerHealth

    init(health: ServerHealth) {
        self.health = health
        super.init(name: "readiness")
    }

    override func startService() {
        super.startService()
        health.listening = true
    }

    override func stopService() -> Deferred<Void> {
        health.beginDrain()
        health.listening = false
        return super.stopService()
    }
}

/// The whole server as a service tree: `MultiService[transforms, netstring port, line port,
/// (http port), readiness]`, one backend behind every port.
///
/// Starting binds the ports (in the privileged step); stopping goes in reverse order: the
/// server turns unready, the ports stop listening, then the connections drain.
public final class TransformServer {
    /// The root service: start it, and stop it to shut down gracefully.
    public let root: MultiService
    /// The state both ports share.
    public let state: ServerState
    /// The netstring port's service; its `port` is set once bound.
    public let netstringServer: TCPServer
    /// The line port's service; its `port` is set once bound.
    public let lineServer: TCPServer
    /// The HTTP port's service, when there is one; its `port` is set once bound.
    public let httpServer: TCPServer?

    /// Opens a listening port for a factory: `reactor.listenTCP(...)`, or adopting a socket
    /// inherited from systemd.
    public typealias Binder = (any ServerFactory) throws -> any ListeningPort

    /// Assembles the server.
    ///
    /// - Parameters:
    ///   - state: the shared state (backend, clock, thread pool, limits, log).
    ///   - bindNetstring: opens the netstring port.
    ///   - bindLine: opens the line port.
    ///   - bindHTTP: opens the HTTP port (protocol-spec/http.md); nil for none.
    public init(
        state: ServerState, bindNetstring: @escaping Binder, bindLine: @escaping Binder, bindHTTP: Binder? = nil
    ) {
        self.state = state
        let netstringFactory = state.limited(NetstringTransformFactory(state: state), port: .netstring)
        let lineFactory = state.limited(LineTransformFactory(state: state), port: .line)
        netstringServer = TCPServer(name: "netstring", bind: { try bindNetstring(netstringFactory) })
        lineServer = TCPServer(name: "line", bind: { try bindLine(lineFactory) })
        if let bindHTTP {
            let httpFactory = state.limited(HTTPTransformFactory(state: state), port: .http)
            httpServer = TCPServer(name: "http", bind: { try bindHTTP(httpFactory) })
        } else {
            httpServer = nil
        }
        root = MultiService(name: "transform-server")
        // Names are distinct, so adding cannot fail.
        try? root.addService(ConnectionDrainService(state: state))
        try? root.addService(netstringServer)
        try? root.addService(lineServer)
        if let httpServer { try? root.addService(httpServer) }
        try? root.addService(ReadinessService(health: state.health))
    }

    /// Assembles the server around `backend` (the local ``TransformService`` or a proxy).
    public convenience init(
        backend: any TransformBackend, clock: any ReactorTime, threadPool: (any ThreadPoolRunner)? = nil,
        limits: ServerLimits = ServerLimits(), logger: Logger = Logger(system: "transform-server"),
        bindNetstring: @escaping Binder, bindLine: @escaping Binder
    ) {
        self.init(
            state: ServerState(backend: backend, clock: clock, threadPool: threadPool, limits: limits, logger: logger),
            bindNetstring: bindNetstring, bindLine: bindLine)
    }

    /// Convenience: listens with `reactor` on `interface` at the given ports (0 = any free port).
    public convenience init(
        state: ServerState, reactor: any ReactorTCP, interface: String, netstringPort: Int,
        linePort: Int, backlog: Int = 1024
    ) {
        self.init(
            state: state,
            bindNetstring: { try reactor.listenTCP(port: netstringPort, factory: $0, interface: interface, backlog: backlog) },
            bindLine: { try reactor.listenTCP(port: linePort, factory: $0, interface: interface, backlog: backlog) })
    }
}
