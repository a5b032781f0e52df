import XformCore

/// A transport that records what is written to it: Twisted's `proto_helpers.StringTransport`.
///
/// Attach a protocol with ``connect(_:)``, feed it bytes with ``receive(_:)-([UInt8])``, and read
/// what it wrote with ``value()`` or ``string()``. Closing calls only set flags (``disconnecting``,
/// ``aborted``, ``writeClosed``) unless ``deliversConnectionLost`` is set, in which case the
/// protocol hears ``ConnectionProtocol/connectionLost(reason:)`` at once (Twisted's
/// `StringTransportWithDisconnection`). Confined to one thread.
public final class StringTransport: Transport {
    /// The bytes written so far (since the last ``clear()``).
    public private(set) var written: [UInt8] = []
    /// The number of `write` calls so far.
    public private(set) var writeCount = 0
    /// True once ``loseConnection()`` or ``abortConnection()`` was called.
    public private(set) var disconnecting = false
    /// True once ``abortConnection()`` was called.
    public private(set) var aborted = false
    /// True once ``loseWriteConnection()`` was called.
    public private(set) var writeClosed = false
    /// True between ``pauseReading()`` and ``resumeReading()``.
    public private(set) var readingPaused = false
    /// The number of ``pauseReading()`` calls (a protocol applying back-pressure).
    public private(set) var pauseCount = 0
    /// What ``Transport/bufferedByteCount`` reports; tests set it to fake a full buffer.
    public var bufferedByteCount = 0
    /// The remote endpoint.
    public var peer: SocketAddress
    /// The local endpoint.
    public var host: SocketAddress
    /// The protocol attached with ``connect(_:)``. Strong: the transport owns its protocol, as a
    /// reactor connection does.
    public var `protocol`: (any ConnectionProtocol)?
    /// When true, closing calls deliver `connectionLost` to the protocol at once (`.done` for
    /// ``loseConnection()``, `.lost(errno: 0)` for ``abortConnection()``).
    public var deliversConnectionLost: Bool
    /// The reason delivered to the protocol's `connectionLost`, once delivered.
    public private(set) var lostReason: ConnectionEnd?

    /// Creates a transport with the given endpoints.
    public init(
        peer: SocketAddress = SocketAddress(host: "127.0.0.1", port: 54321),
        host: SocketAddress = SocketAddress(host: "127.0.0.1", port: 12345),
        deliversConnectionLost: Bool = false
    ) {
        self.peer = peer
        self.host = host
        self.deliversConnectionLost = deliversConnectionLost
    }

    // MARK: Transport

    /// Records the bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        written.append(contentsOf: bytes)
        writeCount += 1
    }

    /// Marks the transport as disconnecting (and tells the protocol if ``deliversConnectionLost``).
    public func loseConnection() {
        disconnecting = true
        if deliversConnectionLost { deliverConnectionLost(.done) }
    }

    /// Marks the transport as aborted and disconnecting (and tells the protocol if
    /// ``deliversConnectionLost``).
    public func abortConnection() {
        disconnecting = true
        aborted = true
        if deliversConnectionLost { deliverConnectionLost(.lost(errno: 0)) }
    }

    /// Marks the write side as shut down.
    public func loseWriteConnection() { writeClosed = true }

    /// Marks reading as paused.
    public func pauseReading() {
        readingPaused = true
        pauseCount += 1
    }

    /// Marks reading as resumed.
    public func resumeReading() { readingPaused = false }

    // MARK: Inspecting output

    /// Returns the bytes written so far.
    public func value() -> [UInt8] { written }

    /// Returns the bytes written so far, decoded as UTF-8 (invalid sequences repaired).
    public func string() -> String { String(decoding: written, as: UTF8.self) }

    /// Forgets the bytes written so far.
    public func clear() {
        written.removeAll(keepingCapacity: true)
    }

    /// Returns the bytes written so far and forgets them.
    public func take() -> [UInt8] {
        defer { clear() }
        return written
    }

    // MARK: Driving the protocol

    /// Attaches `proto` and calls its `makeConnection(_:)` with this transport.
    public func connect(_ proto: any ConnectionProtocol) {
        self.protocol = proto
        proto.makeConnection(self)
    }

    /// Delivers bytes to the attached protocol, as if they arrived from the peer.
    ///
    /// - Precondition: a protocol is attached.
    public func receive(_ bytes: [UInt8]) {
        guard let p = self.protocol else { preconditionFailure("StringTransport has no protocol") }
        p.dataReceived(bytes)
    }

    /// Delivers a string's UTF-8 bytes to the attached protocol.
    public func receive(_ string: String) {
        receive(Array(string.utf8))
    }

    /// Tells the attached protocol the peer half-closed (`readConnectionLost`).
    public func receiveEOF() {
        self.protocol?.readConnectionLost()
    }

    /// Tells the attached protocol the connection is gone, once; later calls do nothing.
    public func deliverConnectionLost(_ reason: ConnectionEnd = .done) {
        guard lostReason == nil else { return }
        lostReason = reason
        disconnecting = true
        self.protocol?.connectionLost(reason: reason)
    }
}
