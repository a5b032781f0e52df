import XformCore

/// Connects a client protocol and a server protocol in memory: Twisted's
/// `iosim.connectedServerAndClient`.
///
/// Each side gets a ``PumpTransport``. Nothing moves until the test calls ``pump()`` or
/// ``flush(maxIterations:)``, which deliver buffered bytes across, honour ``Transport/pauseReading()``,
/// and carry closes over: ``Transport/loseConnection()`` delivers what was written, then both sides
/// hear `connectionLost(.done)`; ``Transport/abortConnection()`` drops buffered output and both
/// sides hear `connectionLost(.lost(errno: 0))`; ``Transport/loseWriteConnection()`` delivers what was
/// written, then the peer hears `readConnectionLost()`. Confined to one thread.
public final class IOPump {
    /// Which end of the connection.
    public enum Side: Sendable, Equatable {
        case client, server
    }

    /// The client's transport.
    public let clientTransport: PumpTransport
    /// The server's transport.
    public let serverTransport: PumpTransport
    /// Advanced by zero on every pump iteration, so `callLater(.zero, ...)` work runs as the
    /// reactor would run it.
    public let clock: ManualClock?
    /// Called once per side when that side's protocol has been told `connectionLost`.
    public var onConnectionLost: ((Side, ConnectionEnd) -> Void)?

    init(client: PumpTransport, server: PumpTransport, clock: ManualClock?) {
        self.clientTransport = client
        self.serverTransport = server
        self.clock = clock
    }

    /// Connects `client` and `server`: the server's `makeConnection` runs first, then the
    /// client's; then, if `greet` is true, the pump is flushed so greetings are exchanged.
    ///
    /// - Returns: the pump, which owns both transports (and through them both protocols).
    public static func connect(
        client: any ConnectionProtocol, server: any ConnectionProtocol, clock: ManualClock? = nil,
        clientAddress: SocketAddress = SocketAddress(host: "127.0.0.1", port: 50001),
        serverAddress: SocketAddress = SocketAddress(host: "127.0.0.1", port: 40000),
        greet: Bool = true
    ) -> IOPump {
        let ct = PumpTransport(protocol: client, host: clientAddress, peer: serverAddress)
        let st = PumpTransport(protocol: server, host: serverAddress, peer: clientAddress)
        let pump = IOPump(client: ct, server: st, clock: clock)
        ct.pump = pump
        st.pump = pump
        ct.other = st
        st.other = ct
        server.makeConnection(st)
        client.makeConnection(ct)
        if greet { pump.flush() }
        return pump
    }

    /// The client protocol.
    public var client: any ConnectionProtocol { clientTransport.protocol }
    /// The server protocol.
    public var server: any ConnectionProtocol { serverTransport.protocol }

    /// True once both sides have been told `connectionLost`.
    public var isClosed: Bool { clientTransport.lost != nil && serverTransport.lost != nil }

    /// Runs one round: time by zero, bytes both ways, then pending closes.
    ///
    /// - Returns: true if anything happened.
    @discardableResult
    public func pump() -> Bool {
        var progress = false
        if let clock, let due = clock.nextDeadline, due <= clock.now {
            clock.advance(by: .zero)
            progress = true
        }
        progress = clientTransport.deliver() || progress
        progress = serverTransport.deliver() || progress
        progress = closeIfDue() || progress
        return progress
    }

    /// Pumps until nothing more happens, at most `maxIterations` rounds.
    ///
    /// - Returns: true if the pump went quiet, false if it hit the bound (a livelock).
    @discardableResult
    public func flush(maxIterations: Int = 10_000) -> Bool {
        for _ in 0..<maxIterations where !pump() { return true }
        return false
    }

    func closeIfDue() -> Bool {
        let c = clientTransport
        let s = serverTransport
        guard c.lost == nil || s.lost == nil else { return false }
        if c.aborted || s.aborted {
            finish(.lost(errno: 0))
            return true
        }
        // A side that called loseConnection closes once its output has been delivered.
        if (c.disconnecting && c.outgoing.isEmpty) || (s.disconnecting && s.outgoing.isEmpty) {
            finish(.done)
            return true
        }
        // Both write sides shut and drained: nothing more can flow.
        if c.writeClosed, s.writeClosed, c.outgoing.isEmpty, s.outgoing.isEmpty, c.eofDelivered, s.eofDelivered {
            finish(.done)
            return true
        }
        return false
    }

    func finish(_ reason: ConnectionEnd) {
        for (side, t) in [(Side.server, serverTransport), (Side.client, clientTransport)] where t.lost == nil {
            t.lost = reason
            t.disconnecting = true
            t.outgoing.removeAll()
            t.protocol.connectionLost(reason: reason)
            onConnectionLost?(side, reason)
        }
    }
}

/// One end of an ``IOPump`` connection.
public final class PumpTransport: Transport {
    /// The protocol this transport serves. Strong: the transport owns its protocol.
    public let `protocol`: any ConnectionProtocol
    weak var pump: IOPump?
    weak var other: PumpTransport?
    /// Written bytes not yet delivered to the peer.
    public internal(set) var outgoing: [UInt8] = []
    /// Every byte this side wrote, in order (for assertions on what crossed the wire).
    public internal(set) var written: [UInt8] = []
    public internal(set) var disconnecting = false
    /// True once ``abortConnection()`` was called.
    public internal(set) var aborted = false
    /// True once ``loseWriteConnection()`` was called.
    public internal(set) var writeClosed = false
    /// True while reading is paused.
    public internal(set) var readingPaused = false
    /// True once this side's write-close reached the peer as `readConnectionLost`.
    var eofDelivered = false
    /// The reason this side's protocol was given, once `connectionLost` was delivered.
    public internal(set) var lost: ConnectionEnd?
    public let host: SocketAddress
    public let peer: SocketAddress

    init(protocol: any ConnectionProtocol, host: SocketAddress, peer: SocketAddress) {
        self.protocol = `protocol`
        self.host = host
        self.peer = peer
    }

    public var bufferedByteCount: Int { outgoing.count }

    /// Queues bytes for the peer; ignored after the write side is closed or the connection is gone.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard lost == nil, !writeClosed, !aborted else { return }
        outgoing.append(contentsOf: bytes)
        written.append(contentsOf: bytes)
    }

    public func loseConnection() {
        guard lost == nil else { return }
        disconnecting = true
    }

    public func abortConnection() {
        guard lost == nil else { return }
        disconnecting = true
        aborted = true
        outgoing.removeAll()
    }

    public func loseWriteConnection() {
        guard lost == nil else { return }
        writeClosed = true
    }

    public func pauseReading() { readingPaused = true }
    public func resumeReading() { readingPaused = false }

    /// Delivers this side's outgoing bytes to the peer, and a half-close once they are delivered.
    func deliver() -> Bool {
        guard lost == nil, let other, other.lost == nil else { return false }
        // Reading stops at once on a side that is closing.
        if other.disconnecting {
            let had = !outgoing.isEmpty
            outgoing.removeAll()
            return had
        }
        if other.readingPaused { return false }
        var progress = false
        if !outgoing.isEmpty {
            let bytes = outgoing
            outgoing.removeAll(keepingCapacity: true)
            other.protocol.dataReceived(bytes)
            progress = true
        }
        if writeClosed, !eofDelivered, outgoing.isEmpty, lost == nil, other.lost == nil {
            eofDelivered = true
            other.protocol.readConnectionLost()
            progress = true
        }
        return progress
    }
}
