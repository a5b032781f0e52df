import XformCore
import XformTransforms

/// Builds a port's transform protocols, refusing connections beyond the connection limit.
public class TransformProtocolFactory: ServerFactory {
    /// The shared state behind both ports.
    public let dispatcher: TransformDispatcher
    let port: String
    let make: (TransformDispatcher, SocketAddress) -> any ConnectionProtocol

    /// Logs refused connections: the first in full, then one summary line per 10 s (issue 10 §4).
    lazy var refusals = EventSummarizer(clock: dispatcher.clock, emit: { [logger = dispatcher.logger] in logger.info($0) }) {
        [port] n, t in "refused \(EventSummarizer.describe(n)) \(port) connections in the last \(EventSummarizer.describe(interval: t)) (connection limit reached)"
    }

    init(dispatcher: TransformDispatcher, port: String, make: @escaping (TransformDispatcher, SocketAddress) -> any ConnectionProtocol) {
        self.dispatcher = dispatcher
        self.port = port
        self.make = make
    }

    /// Returns a protocol for the connection, or nil (close it) at the connection limit.
    public func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? {
        guard dispatcher.openConnections(port: port) < dispatcher.limits.maxConnections else {
            dispatcher.stats.connectionRefused()
            refusals.record("refusing \(port) connection from \(peer): connection limit reached")
            return nil
        }
        return make(dispatcher, peer)
    }

    /// The port stopped listening: writes the pending refusal summary.
    public func stopFactory() { refusals.flush() }
}

/// Builds netstring transform protocols (protocol-spec/netstring.md).
public final class NetstringTransformFactory: TransformProtocolFactory {
    public init(dispatcher: TransformDispatcher) {
        super.init(dispatcher: dispatcher, port: NetstringTransformProtocol.portName) {
            NetstringTransformProtocol(dispatcher: $0, peer: $1)
        }
    }
}

/// Builds line transform protocols (protocol-spec/line.md).
public final class LineTransformFactory: TransformProtocolFactory {
    public init(dispatcher: TransformDispatcher) {
        super.init(dispatcher: dispatcher, port: LineTransformProtocol.portName) {
            LineTransformProtocol(dispatcher: $0, peer: $1)
        }
    }
}

extension TransformDispatcher {
    /// Open connections on one port (`netstring` or `line`).
    public func openConnections(port: String) -> Int { stats.openConnections[port] ?? 0 }
}

/// The transform service as an application service: stopping it drains every connection of
/// both ports (in-flight requests finish, idle connections close).
public final class TransformServiceRunner: Service {
    /// The shared state behind both ports.
    public let dispatcher: TransformDispatcher

    public init(dispatcher: TransformDispatcher) {
        self.dispatcher = dispatcher
        super.init(name: "transforms")
    }

    /// Builds the Unicode case tables now (about 35 ms, once), so no request pays for them.
    public override func startService() {
        PythonCase.prepareTables()
        super.startService()
    }

    /// Drains both ports.
    ///
    /// - Returns: a Deferred that fires once every connection has closed.
    public override func stopService() -> Deferred<Void> {
        _ = super.stopService()
        return dispatcher.beginShutdown()
    }
}

/// The whole server as a service tree: `MultiService[transforms, netstring port, line port]`,
/// one `TransformService` behind both ports.
///
/// Starting binds both ports (in the privileged step); stopping goes in reverse order: both
/// ports stop listening, then the transform service drains the open connections.
public final class TransformServer {
    /// The root service: start it, and stop it to shut down gracefully.
    public let root: MultiService
    /// The state both ports share.
    public let dispatcher: TransformDispatcher
    /// The netstring port's service; its `port` is set once bound.
    public let netstringServer: TCPServer
    /// The line port's service; its `port` is set once bound.
    public let lineServer: TCPServer

    /// Opens a listening port for a factory: `reactor.listenTCP(...)`, or adopting a socket
    /// inherited from systemd.
    public typealias Binder = (any ServerFactory) throws -> any ListeningPort

    /// Assembles the server.
    ///
    /// - Parameters:
    ///   - dispatcher: the shared state (service, clock, thread pool, limits, log).
    ///   - bindNetstring: opens the netstring port.
    ///   - bindLine: opens the line port.
    public init(dispatcher: TransformDispatcher, bindNetstring: @escaping Binder, bindLine: @escaping Binder) {
        self.dispatcher = dispatcher
        let netstringFactory = NetstringTransformFactory(dispatcher: dispatcher)
        let lineFactory = LineTransformFactory(dispatcher: dispatcher)
        netstringServer = TCPServer(name: "netstring", bind: { try bindNetstring(netstringFactory) })
        lineServer = TCPServer(name: "line", bind: { try bindLine(lineFactory) })
        root = MultiService(name: "transform-server")
        // Names are distinct, so adding cannot fail.
        try? root.addService(TransformServiceRunner(dispatcher: dispatcher))
        try? root.addService(netstringServer)
        try? root.addService(lineServer)
    }

    /// Convenience: listens with `reactor` on `interface` at the given ports (0 = any free port).
    public convenience init(
        dispatcher: TransformDispatcher, reactor: any ReactorTCP, interface: String, netstringPort: Int,
        linePort: Int, backlog: Int = 1024
    ) {
        self.init(
            dispatcher: dispatcher,
            bindNetstring: { try reactor.listenTCP(port: netstringPort, factory: $0, interface: interface, backlog: backlog) },
            bindLine: { try reactor.listenTCP(port: linePort, factory: $0, interface: interface, backlog: backlog) })
    }
}
