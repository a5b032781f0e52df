import Synchronization
import XformCore

/// Limits how many connections a server factory has open at once (Twisted's
/// `policies.LimitTotalConnectionsFactory`), by wrapping the factory.
///
/// Beyond ``maxConnections`` a new connection is refused: ``buildProtocol(peer:)`` returns nil
/// and the port closes it. Each accepted connection's protocol is wrapped in a thin forwarding
/// protocol that tells the limit when the connection ends, so the count goes down on
/// ``ConnectionProtocol/connectionLost(reason:)``; the wrapped protocol sees the real transport.
/// A ``LimitCountedConnection`` tells the limit itself and is returned unwrapped.
public final class ConnectionLimit: ServerFactory {
    /// The factory that builds the real protocols.
    public let wrapped: any ServerFactory
    /// The most connections open at once.
    public var maxConnections: Int {
        get { limit }
        set { limit = newValue }
    }
    /// Connections open now.
    public var openConnections: Int { open }
    // Unchecked, these two: read and written as each connection opens and closes (a checked
    // access costs about 97 instructions, callgrind); plain integers, no access spans a call.
    @exclusivity(unchecked) private var limit: Int
    @exclusivity(unchecked) private var open = 0
    /// Connections refused because the limit was reached, since creation.
    public private(set) var refusedConnections = 0
    /// Called with the peer of each connection refused at the limit (to count or log it).
    public var onRefused: ((SocketAddress) -> Void)?
    /// Called at the limit before refusing: returns true when it closed a connection to make
    /// room (the new one is then accepted; the count is over the limit until that one ends).
    public var makeRoom: (() -> Bool)?
    /// When set, the limit holds for every ``ConnectionLimit`` sharing this budget together
    /// (one per event loop of `--reactors N`) instead of ``maxConnections`` for this one alone.
    public var budget: ConnectionBudget? {
        get { sharedBudget }
        set { sharedBudget = newValue }
    }
    // Unchecked: read as each connection opens and closes (a checked access costs about 97
    // instructions, callgrind); set once, before the port listens.
    @exclusivity(unchecked) private var sharedBudget: ConnectionBudget?
    /// `wrapped`, when all its protocols count themselves: asked without a cast per connection.
    private let countingFactory: (any LimitCountedFactory)?

    /// Wraps `factory`, allowing at most `maxConnections` open connections.
    public init(wrapping factory: any ServerFactory, maxConnections: Int) {
        precondition(maxConnections >= 0, "maxConnections must not be negative")
        self.wrapped = factory
        self.limit = maxConnections
        countingFactory = factory as? any LimitCountedFactory
    }

    /// Returns the wrapped factory's protocol, counted, or nil (refuse) when at the limit or when
    /// the wrapped factory refuses.
    public func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? {
        let room = sharedBudget.map { $0.take() } ?? (open < limit)
        guard room || (makeRoom?() ?? false) else {
            refusedConnections += 1
            onRefused?(peer)
            return nil
        }
        if !room { sharedBudget?.takeAnyway() }
        if let countingFactory {
            guard let counted = countingFactory.buildCountedProtocol(peer: peer) else {
                sharedBudget?.give()
                return nil
            }
            open += 1
            counted.limitMembership = Membership(limit: self)
            return counted
        }
        guard let inner = wrapped.buildProtocol(peer: peer) else {
            sharedBudget?.give()
            return nil
        }
        open += 1
        if let counted = inner as? any LimitCountedConnection {
            counted.limitMembership = Membership(limit: self)
            return counted
        }
        return CountedConnection(inner, limit: self)
    }

    /// Forwards to the wrapped factory.
    public func startFactory() { wrapped.startFactory() }

    /// Forwards to the wrapped factory.
    public func stopFactory() { wrapped.stopFactory() }

    fileprivate func connectionClosed() {
        open -= 1
        sharedBudget?.give()
    }
}

extension ConnectionLimit {
    /// A connection's place in the count of the ``ConnectionLimit`` that accepted it, held by a
    /// ``LimitCountedConnection``: ``end()`` gives the place back, once.
    public struct Membership {
        // Strong, as ``CountedConnection``'s: the limit holds no connection.
        private var limit: ConnectionLimit?

        /// No place in any count.
        public init() {}

        fileprivate init(limit: ConnectionLimit) { self.limit = limit }

        /// The connection ended (or its protocol is going without one): the limit counts it out.
        /// Only the first call counts.
        public mutating func end() {
            guard let limit else { return }
            self.limit = nil
            limit.connectionClosed()
        }
    }
}

/// A protocol that tells the ``ConnectionLimit`` counting it when its connection ends, so the
/// limit returns it as it is instead of wrapped in a ``CountedConnection`` (an object of about
/// 60 bytes per connection and a forwarding call per event).
///
/// The limit sets ``limitMembership`` when it accepts the connection; the protocol calls its
/// ``ConnectionLimit/Membership/end()`` in `connectionLost(reason:)` and in `deinit` (a
/// protocol dropped before its connection was made).
public protocol LimitCountedConnection: ConnectionProtocol {
    /// This connection's place in the limit's count.
    var limitMembership: ConnectionLimit.Membership { get set }
}

/// A factory whose protocols all count themselves (``LimitCountedConnection``): a
/// ``ConnectionLimit`` wrapping it calls ``buildCountedProtocol(peer:)``, and spares each
/// connection a dynamic cast (a conformance lookup of about 250 instructions, callgrind).
public protocol LimitCountedFactory: ServerFactory {
    /// Returns the protocol for a new connection from `peer`, or nil to refuse (close) it.
    func buildCountedProtocol(peer: SocketAddress) -> (any LimitCountedConnection)?
}

/// A connection limit shared by several ``ConnectionLimit``s on different threads (the event
/// loops of `--reactors N`, one limit each for the same port), so `--max-connections` holds for
/// the process, not for each loop. Touched once when a connection opens and once when it
/// closes, never per request. Thread-safe (one atomic counter).
public final class ConnectionBudget: Sendable {
    /// The most connections open at once, all sharers together.
    public let limit: Int
    private let open = Atomic<Int>(0)

    /// A budget of `limit` connections.
    public init(limit: Int) {
        precondition(limit >= 0, "the connection limit must not be negative")
        self.limit = limit
    }

    /// Connections open now, all sharers together.
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// Takes one connection from the budget; false (and nothing taken) when none is left.
    func take() -> Bool {
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
        open.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    /// Takes one connection over the limit (``ConnectionLimit/makeRoom`` closed another).
    func takeAnyway() { open.wrappingAdd(1, ordering: .relaxed) }

    /// Gives one connection back.
    func give() { open.wrappingSubtract(1, ordering: .relaxed) }
}

/// Forwards every event to the real protocol and tells the limit when the connection ends.
///
/// It counts a connection once, even if it is never made (a connection the port drops before
/// ``makeConnection(_:)`` is released when this object is deinitialised).
public final class CountedConnection: ConnectionProtocol {
    /// The real protocol.
    public let inner: any ConnectionProtocol
    /// Strong: the limit holds no connection, so there is no cycle, and a weak reference would
    /// give the limit a side table (its every retain and release on the slow path).
    private let limit: ConnectionLimit
    // Unchecked: read as the connection ends (a checked access costs about 97 instructions).
    @exclusivity(unchecked) private var counted = true

    fileprivate init(_ inner: any ConnectionProtocol, limit: ConnectionLimit) {
        self.inner = inner
        self.limit = limit
    }

    deinit {
        release()
    }

    private func release() {
        if counted {
            counted = false
            limit.connectionClosed()
        }
    }

    public func makeConnection(_ transport: any Transport) { inner.makeConnection(transport) }
    public func connectionMade() { inner.connectionMade() }
    public func dataReceived(_ data: UnsafeRawBufferPointer) { inner.dataReceived(data) }
    public func readConnectionLost() { inner.readConnectionLost() }
    public func writeBufferFull() { inner.writeBufferFull() }
    public func writeBufferDrained() { inner.writeBufferDrained() }
    public func directReadSpace() -> UnsafeMutableRawBufferPointer? { inner.directReadSpace() }
    public func directDataReceived(_ count: Int) { inner.directDataReceived(count) }

    public func connectionLost(reason: ConnectionEnd) {
        release()
        inner.connectionLost(reason: reason)
    }
}
