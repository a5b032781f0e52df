import XformCore

/// A protocol that receives and sends lines (Twisted's `LineOnlyReceiver`, liberal on input).
///
/// Override ``lineReceived(_:)``. A line ends at `\n`; one `\r` before it is dropped, so both
/// `\n` (netcat) and `\r\n` (telnet) work. Lines are sent with `\n` (``sendLine(_:)``).
///
/// A line longer than ``maxLineLength`` calls ``lineLengthExceeded()`` as soon as the part
/// buffered so far is over the limit. The default drops the connection, as in Twisted. An
/// override that keeps the connection (say, after sending an error reply) gets resynchronised:
/// the rest of the over-long line, up to and including its `\n`, is skipped and reception goes on
/// with the next line.
///
/// Lines are delivered without copying when they lie inside the chunk just read. Delivery stops
/// once the transport is disconnecting and while ``pauseDelivery()`` is in force;
/// ``resumeDelivery()`` delivers buffered lines at once. While paused, buffering more than
/// ``backlogLimit`` bytes pauses reading from the transport.
///
/// At the peer's EOF every line received before it is still delivered (after any pause); an
/// unterminated last line is delivered too when ``deliversUnterminatedLastLine`` is set (the
/// default: `echo -n "upper hi" | nc` works), and then ``inputEnded()`` is called.
open class LineReceiver: BackpressuredReceiver {
    /// The longest line accepted, in bytes, without its terminator (Twisted's `MAX_LENGTH`):
    /// the parser's, not a copy (8 bytes per connection).
    public var maxLineLength: Int { engine.parser.maxLength }
    /// While delivery is paused, buffering more than this many bytes pauses reading.
    public var backlogLimit: Int { engine.backlogLimit }
    /// Whether a last line without `\n` is delivered at EOF (true) or dropped (false).
    public var deliversUnterminatedLastLine = true

    private let engine: ReceiveEngine<LineParser>
    /// Creates a receiver accepting lines up to `maxLineLength` bytes (16,384 by default).
    /// `backlogLimit` defaults to one maximum line plus 64 KiB.
    public init(maxLineLength: Int = defaultMaxLineLength, backlogLimit: Int? = nil) {
        engine = ReceiveEngine(
            parser: LineParser(maxLength: maxLineLength),
            backlogLimit: backlogLimit ?? (maxLineLength + 65_536))
        super.init()
    }

    /// Called with each line received, without its terminator. Valid only during the call.
    open func lineReceived(_ line: UnsafeRawBufferPointer) {}

    /// Called when a line is longer than ``maxLineLength``. The default drops the connection;
    /// if an override leaves the connection open, the rest of that line is skipped.
    open func lineLengthExceeded() {
        transport?.loseConnection()
    }

    /// Called once the peer half-closed and every line received before that was delivered.
    /// The default closes the connection (after flushing).
    open func inputEnded() {
        transport?.loseConnection()
    }

    /// Sends `line` followed by `\n`.
    public func sendLine(_ line: UnsafeRawBufferPointer) {
        guard let transport else { return }
        LineEncoder.write(line, to: transport)
    }

    /// Sends `line` followed by `\n`.
    public func sendLine(_ line: [UInt8]) {
        line.withUnsafeBytes { sendLine($0) }
    }

    /// Sends the UTF-8 of `line` followed by `\n`.
    public func sendLine(_ line: String) {
        var s = line
        s.withUTF8 { sendLine(UnsafeRawBufferPointer($0)) }
    }

    /// Stops delivering lines; incoming bytes are buffered until ``resumeDelivery()``.
    public func pauseDelivery() {
        engine.pause()
    }

    /// Delivers the lines buffered while paused, at once, then goes on as usual.
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

    /// Delivers what is left, then calls ``inputEnded()``. Override ``inputEnded()`` instead.
    open override func readConnectionLost() {
        engine.endOfInput(sink: self, transport: transport)
    }

    open override func connectionLost(reason: ConnectionEnd) {
        engine.halt()
        super.connectionLost(reason: reason)
    }
}

extension LineReceiver: FrameSink {
    func deliverFrame(_ frame: UnsafeRawBufferPointer) {
        lineReceived(frame)
    }

    func handleFailure(_ failure: LineError, rest: UnsafeRawBufferPointer) -> Bool {
        lineLengthExceeded()
        return true
    }

    func inputEnded(leftover: UnsafeRawBufferPointer, midFrame: Bool) {
        if deliversUnterminatedLastLine && !leftover.isEmpty {
            var line = leftover
            if line[line.count - 1] == UInt8(ascii: "\r") {
                line = UnsafeRawBufferPointer(rebasing: line[0..<(line.count - 1)])
            }
            lineReceived(line)
            if transport?.disconnecting ?? false { return }
        }
        inputEnded()
    }

}
