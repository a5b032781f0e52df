import XformCore

/// A protocol that receives and sends netstrings (Twisted's `NetstringReceiver`).
///
/// Override ``stringReceived(_:)``. Security features, as in Twisted: messages are limited in
/// size (``maxLength``, refused from the length prefix alone, before the payload is read or
/// buffered), and the connection is dropped on an illegal message (``framingError(_:)``).
///
/// Payloads are delivered without copying when a whole netstring lies inside the chunk just read;
/// otherwise from the receiver's buffer. Either way the bytes are valid only during the call.
///
/// Delivery stops once the transport is disconnecting (a request that closed the connection is
/// not followed by the rest of its packet), and while ``pauseDelivery()`` is in force, which lets
/// a server answer pipelined requests in order while one of them is being handled asynchronously;
/// ``resumeDelivery()`` delivers what was buffered at once. While delivery is paused and more than
/// ``backlogLimit`` bytes are buffered, reading from the transport is paused too.
///
/// At the peer's EOF (``readConnectionLost()``) every netstring that arrived before it is still
/// delivered (after any pause), and then ``inputEnded()`` is called; a partial netstring left at
/// EOF is a ``framingError(_:)`` with ``NetstringError/incompleteFrame(buffered:)`` instead.
open class NetstringReceiver: BackpressuredReceiver {
    /// The largest payload accepted, in bytes (Twisted's `MAX_LENGTH`): the parser's, not a
    /// copy (8 bytes per connection).
    public var maxLength: Int { engine.parser.maxLength }
    /// While delivery is paused, buffering more than this many bytes pauses reading.
    public var backlogLimit: Int { engine.backlogLimit }

    private let engine: ReceiveEngine<NetstringParser>

    /// Creates a receiver accepting payloads up to `maxLength` bytes (99,999 by default).
    /// `backlogLimit` defaults to one maximum netstring plus 64 KiB.
    public init(maxLength: Int = defaultNetstringMaxLength, backlogLimit: Int? = nil) {
        engine = ReceiveEngine(
            parser: NetstringParser(maxLength: maxLength),
            backlogLimit: backlogLimit ?? (maxLength + 65_536))
        super.init()
    }

    /// Called with each payload received. The bytes are valid only during the call.
    open func stringReceived(_ payload: UnsafeRawBufferPointer) {}

    /// How many bytes of the malformed input ``failedInput`` keeps.
    public static let failedInputKept = 64

    /// The first bytes of the malformed netstring (up to ``failedInputKept``), from its first
    /// byte: set before ``framingError(_:)`` is called, so an override can look at them (the
    /// transform server peeks at the first payload byte of an over-long request).
    public private(set) var failedInput: [UInt8] = []

    /// Called once on malformed input; nothing more is delivered afterwards. The default drops
    /// the connection, as Twisted's `_handleParseError` does.
    open func framingError(_ error: NetstringError) {
        transport?.loseConnection()
    }

    /// Called once the peer half-closed and every netstring received before that was delivered.
    /// The default closes the connection (after flushing), like ``BaseProtocol/readConnectionLost()``.
    open func inputEnded() {
        transport?.loseConnection()
    }

    /// Sends `payload` as one netstring.
    public func sendString(_ payload: UnsafeRawBufferPointer) {
        guard let transport else { return }
        NetstringEncoder.write(payload, to: transport)
    }

    /// Sends `payload` as one netstring.
    public func sendString(_ payload: [UInt8]) {
        payload.withUnsafeBytes { sendString($0) }
    }

    /// Stops delivering netstrings; incoming bytes are buffered until ``resumeDelivery()``.
    public func pauseDelivery() {
        engine.pause()
    }

    /// Delivers the netstrings buffered while paused, at once, then goes on as usual.
    public func resumeDelivery() {
        engine.resume(sink: self, transport: transport)
    }

    /// True while ``pauseDelivery()`` is in force.
    public var isDeliveryPaused: Bool { engine.paused }

    /// Bytes received and not yet delivered.
    public var bufferedByteCount: Int { engine.bufferedByteCount }

    /// True when part of a frame has arrived and the rest has not (a request in progress).
    public var hasPartialFrame: Bool { engine.hasPartialFrame }

    open override func dataReceived(_ data: UnsafeRawBufferPointer) {
        engine.receive(data, sink: self, transport: transport)
    }

    /// The rest of a large netstring (256 KiB or more) under way: the transport reads it straight
    /// into the receiver's buffer instead of copying it there from its own.
    open override func directReadSpace() -> UnsafeMutableRawBufferPointer? {
        engine.directReadSpace()
    }

    /// Takes bytes read into ``directReadSpace()`` as ``dataReceived(_:)`` takes a chunk.
    open override func directDataReceived(_ count: Int) {
        engine.receiveDirect(count, sink: self, transport: transport)
    }

    /// Delivers what is left, then calls ``inputEnded()``. Override ``inputEnded()`` instead.
    open override func readConnectionLost() {
        engine.endOfInput(sink: self, transport: transport)
    }

    open override func connectionLost(reason: ConnectionEnd) {
        engine.halt()
        super.connectionLost(reason: reason)
    }
}

extension NetstringReceiver: FrameSink {
    func deliverFrame(_ frame: UnsafeRawBufferPointer) {
        stringReceived(frame)
    }

    func handleFailure(_ failure: NetstringError, rest: UnsafeRawBufferPointer) -> Bool {
        failedInput = Array(rest.prefix(Self.failedInputKept))
        framingError(failure)
        return false
    }

    func inputEnded(leftover: UnsafeRawBufferPointer, midFrame: Bool) {
        if midFrame || !leftover.isEmpty {
            framingError(.incompleteFrame(buffered: leftover.count))
        } else {
            inputEnded()
        }
    }

}
