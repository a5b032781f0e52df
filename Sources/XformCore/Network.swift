/// An IPv4 or IPv6 endpoint, as text host and numeric port.
///
/// An IPv4 address accepted by a port keeps its four bytes and is written as text only when
/// ``host`` is read: most peers are never logged (about 220 instructions per connection,
/// callgrind). Equal and hashed by their text, however made.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    private enum Host: Sendable {
        case text(String)
        /// In host byte order.
        case ipv4(UInt32)
    }

    private var storage: Host
    /// The port number.
    public var port: Int

    /// The host as text: a dotted quad, an IPv6 address, or a name.
    public var host: String {
        get {
            switch storage {
            case .text(let text): return text
            case .ipv4(let address): return Self.dottedQuad(address)
            }
        }
        set { storage = .text(newValue) }
    }

    /// An endpoint with `host` as text.
    public init(host: String, port: Int) {
        storage = .text(host)
        self.port = port
    }

    /// An IPv4 endpoint, `address` in host byte order (written as text when asked for).
    public init(ipv4 address: UInt32, port: Int) {
        storage = .ipv4(address)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        guard a.port == b.port else { return false }
        if case .ipv4(let x) = a.storage, case .ipv4(let y) = b.storage { return x == y }
        return a.host == b.host
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(host)
        hasher.combine(port)
    }

    /// `a.b.c.d` for an IPv4 address in host order, as `inet_ntop` writes it, in place:
    /// `inet_ntop` formats with `sprintf` (about 1,500 instructions, callgrind), and the text fits
    /// a small string (no allocation).
    static func dottedQuad(_ address: UInt32) -> String {
        String(unsafeUninitializedCapacity: 15) { out in
            var n = 0
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = UInt8(truncatingIfNeeded: address >> UInt32(shift))
                if octet >= 100 {
                    out[n] = 48 + octet / 100
                    n += 1
                }
                if octet >= 10 {
                    out[n] = 48 + (octet / 10) % 10
                    n += 1
                }
                out[n] = 48 + octet % 10
                n += 1
                if shift > 0 {
                    out[n] = UInt8(ascii: ".")
                    n += 1
                }
            }
            return n
        }
    }
}

/// The write side of a connection as a protocol sees it (Twisted's `ITransport`).
///
/// Writes are buffered and flushed by the reactor (one `write(2)` per read batch where possible).
/// Implementations are confined to the reactor thread.
public protocol Transport: AnyObject {
    /// Queues bytes for sending. Never blocks; the bytes are copied.
    func write(_ bytes: UnsafeRawBufferPointer)
    /// Queues up to `capacity` bytes that `fill` writes in place, straight into the output
    /// buffer where the transport has one (no intermediate copy); `fill` returns how many it
    /// wrote (0: nothing is queued).
    func write(reserving capacity: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Int)
    /// Sends what is buffered, then closes. Reading stops at once.
    func loseConnection()
    /// Closes at once, dropping buffered output.
    func abortConnection()
    /// Shuts down the write side once the buffer is flushed (half-close); reading goes on.
    func loseWriteConnection()
    /// Stops delivering `dataReceived` until ``resumeReading()``.
    func pauseReading()
    /// Resumes delivering `dataReceived` after ``pauseReading()``.
    func resumeReading()
    /// True once ``loseConnection()`` or ``abortConnection()`` was called.
    var disconnecting: Bool { get }
    /// Bytes queued and not yet written to the socket.
    var bufferedByteCount: Int { get }
    /// The remote endpoint.
    var peer: SocketAddress { get }
    /// The local endpoint.
    var host: SocketAddress { get }
}

extension Transport {
    /// The default: `fill` writes into a temporary buffer, which is then queued with `write(_:)`.
    public func write(reserving capacity: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Int) {
        withUnsafeTemporaryAllocation(byteCount: max(capacity, 1), alignment: 16) { buffer in
            let n = fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<capacity]))
            if n > 0 { write(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
        }
    }

    /// Queues a byte array for sending.
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Queues a string's UTF-8 bytes for sending.
    public func write(_ string: String) {
        var s = string
        s.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }
}

/// How a connection ended.
public enum ConnectionEnd: Error, Sendable, Equatable, CustomStringConvertible {
    /// Closed cleanly: by us, or by the peer's EOF after which we closed.
    case done
    /// Lost: reset by the peer, aborted, or an I/O error (with `errno`, 0 if none).
    case lost(errno: Int32)

    public var description: String {
        switch self {
        case .done: return "connection was closed cleanly"
        case .lost(let e): return e == 0 ? "connection was lost" : "connection was lost (errno \(e))"
        }
    }
}

/// Why an outgoing connection could not be made.
public enum ConnectError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing listens there (`ECONNREFUSED`).
    case refused
    /// The connect timeout ran out.
    case timedOut
    /// The host could not be resolved.
    case unknownHost(String)
    /// Another failure, with its `errno`.
    case failed(errno: Int32)
    /// The attempt was cancelled with `stopConnecting()`.
    case cancelled

    public var description: String {
        switch self {
        case .refused: return "connection refused"
        case .timedOut: return "connect timed out"
        case .unknownHost(let h): return "unknown host \(h)"
        case .failed(let e): return "connect failed (errno \(e))"
        case .cancelled: return "connect cancelled"
        }
    }
}

/// A connection's event handler (Twisted's `IProtocol`): one instance per connection.
///
/// The reactor calls these on its thread, in this order: ``makeConnection(_:)`` (which calls
/// ``connectionMade()``), any number of ``dataReceived(_:)``, perhaps ``readConnectionLost()``,
/// then exactly one ``connectionLost(reason:)``.
public protocol ConnectionProtocol: AnyObject {
    /// Attaches the transport and calls ``connectionMade()``.
    func makeConnection(_ transport: any Transport)
    /// The connection is up.
    func connectionMade()
    /// Bytes arrived. The buffer is only valid during the call: copy what you keep.
    func dataReceived(_ data: UnsafeRawBufferPointer)
    /// The peer half-closed (EOF) while we can still write. The default closes after flushing.
    func readConnectionLost()
    /// The write buffer went above its high watermark: stop producing output if you can.
    func writeBufferFull()
    /// The write buffer drained below its low watermark: producing may go on.
    func writeBufferDrained()
    /// The connection is gone. `reason` is a ``ConnectionEnd``.
    func connectionLost(reason: ConnectionEnd)
    /// For a large message under way: room in the protocol's own buffer that the transport may
    /// read straight into, saving a copy of every byte; nil (the default) for the usual
    /// ``dataReceived(_:)``. A transport asks only while its reads come back full.
    func directReadSpace() -> UnsafeMutableRawBufferPointer?
    /// `count` bytes were read into the room ``directReadSpace()`` returned: handle them as
    /// ``dataReceived(_:)`` would have.
    func directDataReceived(_ count: Int)
}

/// A convenient base class: stores the transport and provides default event handlers.
open class BaseProtocol: ConnectionProtocol {
    /// The transport, set by ``makeConnection(_:)`` and released by ``connectionLost(reason:)``
    /// (which breaks the transport <-> protocol cycle; overrides must call `super`). Strong, not
    /// weak: a weak reference costs an atomic load on every access and puts the transport's
    /// reference counts on the slow path, on every request.
    @inlinable public var transport: (any Transport)? { storedTransport }
    // Unchecked: read several times per request (a checked access costs about 76 instructions,
    // measured); only makeConnection and connectionLost write it. Inlinable through its getter:
    // a call per read cost about 33 instructions, twice per request (callgrind). Final: read
    // as a field, not through a getter call (about 15 instructions per read, callgrind).
    @usableFromInline @exclusivity(unchecked) internal private(set) final var storedTransport: (any Transport)?
    /// True between ``connectionMade()`` and ``connectionLost(reason:)`` (while the transport is
    /// held).
    public var connected: Bool { storedTransport != nil }

    public init() {}

    open func makeConnection(_ transport: any Transport) {
        storedTransport = transport
        connectionMade()
    }
    open func connectionMade() {}
    open func dataReceived(_ data: UnsafeRawBufferPointer) {}
    open func readConnectionLost() { transport?.loseConnection() }
    open func writeBufferFull() { transport?.pauseReading() }
    open func writeBufferDrained() { transport?.resumeReading() }
    open func connectionLost(reason: ConnectionEnd) {
        storedTransport = nil
    }
    /// None: bytes arrive through ``dataReceived(_:)``. Receivers of large frames override it.
    open func directReadSpace() -> UnsafeMutableRawBufferPointer? { nil }
    /// Never called while ``directReadSpace()`` is nil.
    open func directDataReceived(_ count: Int) {}
}

extension ConnectionProtocol {
    /// None: bytes arrive through ``dataReceived(_:)``.
    public func directReadSpace() -> UnsafeMutableRawBufferPointer? { nil }
    /// Never called while ``directReadSpace()`` is nil.
    public func directDataReceived(_ count: Int) {}

    /// Feeds bytes from an array (tests and tools).
    public func dataReceived(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { dataReceived($0) }
    }
}

/// Builds a protocol for each accepted connection (Twisted's `ServerFactory`).
public protocol ServerFactory: AnyObject {
    /// Returns the protocol for a new connection from `peer`, or nil to refuse (close) it.
    func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)?
    /// Called when a port starts listening with this factory.
    func startFactory()
    /// Called when the last port using this factory stops listening.
    func stopFactory()
}

extension ServerFactory {
    public func startFactory() {}
    public func stopFactory() {}
}

/// A listening TCP port (Twisted's `IListeningPort`).
public protocol ListeningPort: AnyObject {
    /// The bound address (the real port when 0 was asked for).
    var address: SocketAddress { get }
    /// Stops accepting. Open connections stay open.
    ///
    /// - Returns: a Deferred that fires once the socket is closed.
    func stopListening() -> Deferred<Void>
}

/// An outgoing connection attempt.
public protocol Connector: AnyObject {
    /// Abandons the attempt if it is still connecting (the factory's failure handler gets
    /// ``ConnectError/cancelled``), or closes the connection if it was made.
    func disconnect()
}

/// Receives the outcome of an outgoing connection (Twisted's `ClientFactory`).
public protocol ClientFactory: AnyObject {
    /// Returns the protocol for the new connection.
    func buildProtocol(peer: SocketAddress) -> any ConnectionProtocol
    /// The connection could not be made.
    func clientConnectionFailed(_ connector: any Connector, reason: ConnectError)
    /// A connection made by this factory ended.
    func clientConnectionLost(_ connector: any Connector, reason: ConnectionEnd)
}

extension ClientFactory {
    public func clientConnectionLost(_ connector: any Connector, reason: ConnectionEnd) {}
}

/// TCP as the reactor offers it (Twisted's `IReactorTCP`).
public protocol ReactorTCP: AnyObject {
    /// Listens on `interface:port` (port 0 picks a free port).
    ///
    /// - Throws: a bind or listen error, with its `errno` (`EADDRINUSE`, `EACCES`, ...).
    func listenTCP(port: Int, factory: any ServerFactory, interface: String, backlog: Int) throws
        -> any ListeningPort
    /// Starts connecting to `host:port`; the factory hears how it went.
    ///
    /// - Returns: the attempt, to cancel or disconnect it.
    @discardableResult
    func connectTCP(host: String, port: Int, factory: any ClientFactory, timeout: Duration) -> any Connector
}

/// Everything a reactor offers to protocol-level code: time, TCP and the thread door.
public protocol Reactor: ReactorTime, ReactorTCP {
    /// The thread-safe door into this reactor.
    var threading: any ReactorThreading { get }
}
