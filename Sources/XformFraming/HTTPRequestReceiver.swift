import XformCore

/// A protocol that receives whole HTTP requests (the HTTP counterpart of `LineReceiver` and
/// `NetstringReceiver`): bytes go through an ``HTTPRequestDecoder`` and each complete request
/// is handed to ``requestReceived(_:)``, in order, pipelined requests included.
///
/// Delivery can be paused (``pauseDelivery()``) while replies are computed; bytes that keep
/// arriving are buffered, and reading stops once more than ``backlogLimit`` are. A malformed or
/// over-limit request stops delivery for good and calls ``requestRefused(_:)``: answer it with
/// `HTTPResponse.error(_:)` and close.
open class HTTPRequestReceiver: BackpressuredReceiver {
    private var decoder: HTTPRequestDecoder
    private var paused = false
    private var delivering = false
    private var halted = false
    private var eof = false
    private var endDelivered = false

    /// While delivery is paused, buffering more than this many bytes stops reading.
    public let backlogLimit: Int

    /// Creates a receiver with the decoder's `limits`; the backlog limit defaults to one
    /// largest request (head and body).
    public init(limits: HTTPRequestLimits = HTTPRequestLimits(), backlogLimit: Int? = nil) {
        decoder = HTTPRequestDecoder(limits: limits)
        self.backlogLimit = backlogLimit ?? (limits.maxHeadBytes + limits.maxBodyBytes)
        super.init()
    }

    /// One complete request. Override it.
    open func requestReceived(_ request: HTTPRequest) {}

    /// A request was malformed or over a limit: nothing more is delivered. Override it to answer
    /// `error.status` and close; the default closes at once.
    open func requestRefused(_ error: HTTPRequestError) {
        transport?.loseConnection()
    }

    /// A request's head asked for `100 Continue` and its body is still to come. The default
    /// writes the interim response; override it to hold it back while earlier responses are owed
    /// (the client then sends the body after its own timeout).
    open func continueRequested() {
        transport?.write(HTTPResponseEncoder.continueResponse)
    }

    /// The peer half-closed and every complete request before that was delivered (a partial
    /// one is dropped). The default does nothing.
    open func inputEnded() {}

    /// Stops delivering requests until ``resumeDelivery()``.
    public func pauseDelivery() { paused = true }

    /// Delivers the buffered requests and goes on.
    public func resumeDelivery() {
        guard paused else { return }
        paused = false
        backlogChanged(overLimit: false)
        deliver()
    }

    /// True while ``pauseDelivery()`` is in force.
    public var isDeliveryPaused: Bool { paused }

    /// Bytes received and not yet delivered.
    public var bufferedByteCount: Int { decoder.bufferedByteCount }

    open override func dataReceived(_ data: UnsafeRawBufferPointer) {
        if halted || eof || data.isEmpty { return }
        decoder.feed(data)
        deliver()
    }

    /// Delivers what is complete, then calls ``inputEnded()``. Override ``inputEnded()`` instead.
    open override func readConnectionLost() {
        if halted || eof { return }
        eof = true
        deliver()
    }

    open override func connectionLost(reason: ConnectionEnd) {
        halted = true
        decoder = HTTPRequestDecoder(limits: decoder.limits)
        super.connectionLost(reason: reason)
    }

    private func deliver() {
        if delivering { return }  // a handler fed more bytes or resumed: the running loop goes on
        delivering = true
        defer { delivering = false }
        while !paused && !halted && !(transport?.disconnecting ?? false) {
            let request: HTTPRequest?
            do {
                request = try decoder.next()
            } catch let error as HTTPRequestError {
                halted = true
                requestRefused(error)
                return
            } catch {
                halted = true
                transport?.loseConnection()
                return
            }
            guard let request else {
                if decoder.awaitsContinue {
                    decoder.continueSent()
                    continueRequested()
                }
                break
            }
            requestReceived(request)
        }
        if paused && decoder.bufferedByteCount > backlogLimit { backlogChanged(overLimit: true) }
        if eof && !paused && !halted && !endDelivered && !(transport?.disconnecting ?? false) {
            endDelivered = true
            inputEnded()
        }
    }
}
