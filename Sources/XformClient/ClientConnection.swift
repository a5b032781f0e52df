import XformCore
import XformFraming

/// Which wire protocol a ``TransformProxy`` speaks.
public enum WireFormat: String, Sendable, Equatable {
    /// The netstring protocol (protocol-spec/netstring.md), extended form with typed errors and
    /// keep-alive; falls back to the original form against an original-protocol server.
    case netstring
    /// The line protocol (protocol-spec/line.md): single-line escaped requests, `OK`/`ERR`
    /// replies, keep-alive.
    case line
}

/// How one connection talks.
enum ConnectionMode: Equatable {
    /// Netstring, `!name.text` requests, `+`/`-` replies, pipelined on a kept-alive connection.
    case extended
    /// Netstring, original `name.text` form: one request per connection, bare reply, then close.
    case original
    /// The line protocol, pipelined on a kept-alive connection.
    case line
}

/// One request's attempt on the wire: what it asks, where its result goes, and which connection
/// carries it. Confined to the reactor thread.
///
/// A call's *fast* first attempt (``TransformProxy``) is one of these and nothing more: no
/// ``RetryingCall``, no timer of its own (its ``deadline`` is watched by its connection's one
/// timer). Only when it fails in a way worth retrying does the proxy start a retrying call
/// (``retry``), whose result then fires ``deferred``.
final class PendingRequest {
    // `@exclusivity(unchecked)`: for the reason given at `TransformProxy.pools` (short accesses only).
    let kind: RequestKind
    let endpoint: Endpoint
    /// The attempt's Deferred (for a fast attempt, the call's); nil once it fired (or was cancelled).
    @exclusivity(unchecked) var deferred: Deferred<[UInt8]>?
    /// The connection carrying (or about to carry) the request.
    weak var connection: ClientConnection?
    /// Written to the connection.
    @exclusivity(unchecked) var sent = false
    /// Cancelled after being sent: its reply, when it comes, is dropped.
    @exclusivity(unchecked) var abandoned = false
    /// The attempt's own timeout timer (attempts of a retrying call).
    @exclusivity(unchecked) var timer: (any DelayedCall)?
    /// When a fast attempt times out (watched by its connection's timer), and the timeout it had.
    @exclusivity(unchecked) var deadline: Duration?
    @exclusivity(unchecked) var timeout: Duration = .zero
    /// The proxy, told of the attempt's end (statistics) and, for a fast attempt, of a failure
    /// worth retrying.
    weak var proxy: TransformProxy?
    /// When the call began (a fast attempt: for the deadline of the retries that may follow).
    @exclusivity(unchecked) var callStart: Duration = .zero
    /// When the attempt began (for ``TransformProxy/onAttempt``); nil when nobody observes.
    @exclusivity(unchecked) var started: Duration?
    /// A fast first attempt: a retryable failure goes to the proxy instead of ``deferred``.
    @exclusivity(unchecked) var isFast = false
    /// The retrying call that took over after a fast attempt failed.
    @exclusivity(unchecked) var retry: Deferred<[UInt8]>?

    init(kind: RequestKind, endpoint: Endpoint) {
        self.kind = kind
        self.endpoint = endpoint
    }

    var isLive: Bool { deferred != nil && !abandoned && retry == nil }

    /// Fires the attempt's Deferred once; later outcomes are ignored. A fast attempt's failure
    /// worth retrying starts the retrying call instead.
    func resolve(_ outcome: Result<[UInt8], TransformProxyError>) {
        timer?.cancel()
        timer = nil
        guard deferred != nil, retry == nil else { return }
        if let started, let proxy {
            proxy.attemptEnded(endpoint, started: started, outcome: outcome)
        }
        if isFast, case .failure(let error) = outcome, let proxy, proxy.shouldRetryFastAttempt(error) {
            isFast = false
            connection = nil
            let r = proxy.retry(self, after: error)
            // The retrying call may have ended at once (no attempt left).
            if deferred != nil { retry = r }
            return
        }
        let d = deferred!
        deferred = nil
        // Not `mapError`: a generic Result conversion looks up metadata (callgrind).
        switch outcome {
        case .success(let bytes): try? d.callback(bytes)
        case .failure(let error): try? d.errback(error)
        }
    }

    /// The retrying call that took over has its result.
    func retryFinished(_ outcome: Result<[UInt8], any Error>) {
        retry = nil
        guard let d = deferred else { return }
        deferred = nil
        try? d.fire(outcome)
    }

    /// The Deferred's canceller: withdraw from the connection (closing it if nothing else
    /// needs it), or cancel the retrying call. The Deferred then fails with `CancelledError`,
    /// fired by `cancel()` itself.
    func cancelled() {
        timer?.cancel()
        timer = nil
        deferred = nil
        if let r = retry {
            retry = nil
            r.cancel()
            return
        }
        connection?.withdraw(self, abort: false)
    }

    /// The timeout ran out: fail with `timedOut` and close the connection, whose
    /// other requests are stuck behind this one's reply anyway (replies come in order).
    func timedOut(after timeout: Duration) {
        timer = nil
        guard deferred != nil, retry == nil else { return }
        let c = connection
        resolve(.failure(.timedOut(after: timeout)))
        c?.withdraw(self, abort: true)
    }
}

/// Callbacks from a connection to the proxy that owns its endpoint's pool.
protocol ConnectionOwner: AnyObject {
    /// The connection is gone (or going); take it out of the pool.
    func connectionClosed(_ connection: ClientConnection)
    /// A fresh connection was closed without any reply to extended requests: perhaps an
    /// original-protocol server. `requests` are to be sent again.
    func closedWithoutAnyReply(_ endpoint: Endpoint, requests: [PendingRequest])
    /// A reply arrived on an extended connection to `endpoint`.
    func replyReceived(from endpoint: Endpoint)
    /// True once the proxy was closed: failures are then reported as cancellations.
    var isClosed: Bool { get }
}

/// One client connection to one endpoint: the `ClientFactory` given to `connectTCP`, the queue
/// of requests it carries in order, and the bridge between the wire protocol and those
/// requests. Confined to the reactor thread.
final class ClientConnection: ClientFactory {
    enum State { case connecting, connected, closed }
    // `@exclusivity(unchecked)`: for the reason given at `TransformProxy.pools` (short accesses only).

    weak var owner: (any ConnectionOwner)?
    let endpoint: Endpoint
    let mode: ConnectionMode
    let maxReplyLength: Int
    var connector: (any Connector)?
    /// The wire protocol, once connected. Weak: the transport owns it.
    weak var wire: (any ClientWire)?
    @exclusivity(unchecked) var state = State.connecting
    /// Requests in the order they were (or will be) written; replies pop from the front.
    @exclusivity(unchecked) var queue: [PendingRequest] = []
    /// Set once any reply arrived: a close after that is never taken for an original-form server.
    @exclusivity(unchecked) var gotReply = false
    /// No new requests may be put on this connection.
    @exclusivity(unchecked) var draining = false
    /// Sent requests whose caller gave up and whose replies are still to come. While there are
    /// any, the connection takes no new requests, and it closes once nothing live is left on it,
    /// so the server stops the abandoned work (Part 19: a cancelled call costs the server nothing
    /// more) instead of a steady trickle of new calls keeping that work alive.
    @exclusivity(unchecked) var abandonedCount = 0
    /// We closed it; its end is not the peer's doing.
    @exclusivity(unchecked) var abortedByUs = false
    /// Where the fast attempts' deadlines are watched.
    let clock: any ReactorTime
    /// The one timer watching the fast attempts' deadlines (instead of one timer per request):
    /// armed for the earliest, it fails whichever have passed when it fires and re-arms.
    @exclusivity(unchecked) var deadlineTimer: (any DelayedCall)?

    init(owner: any ConnectionOwner, endpoint: Endpoint, mode: ConnectionMode, maxReplyLength: Int, clock: any ReactorTime) {
        self.clock = clock
        self.owner = owner
        self.endpoint = endpoint
        self.mode = mode
        self.maxReplyLength = maxReplyLength
        // The original protocol answers one request per connection.
        draining = mode == .original
    }

    /// Live requests on this connection (sent or waiting to be).
    var load: Int { queue.reduce(0) { $0 + ($1.isLive ? 1 : 0) } }

    /// Can carry another request: not draining, not closed, and no abandoned work ahead of it.
    var usable: Bool { !draining && abandonedCount == 0 && state != .closed }

    /// Adds a request: written at once when connected, else when the connection is made.
    func enqueue(_ request: PendingRequest) {
        request.connection = self
        request.sent = false
        request.abandoned = false
        queue.append(request)
        if state == .connected { write(request) }
        if deadlineTimer == nil, let deadline = request.deadline { armDeadline(deadline) }
    }

    func armDeadline(_ deadline: Duration) {
        deadlineTimer = clock.callLater(max(deadline - clock.now, .zero)) { [weak self] in self?.deadlineReached() }
    }

    /// The deadline timer fired: the live fast attempt with the earliest deadline times out if
    /// that deadline has passed (closing the connection, as a per-request timeout does), else
    /// the timer is armed for it.
    func deadlineReached() {
        deadlineTimer = nil
        guard state != .closed else { return }
        var earliest: PendingRequest?
        for r in queue where r.isLive {
            if let d = r.deadline, d < (earliest?.deadline ?? .seconds(Int64.max)) { earliest = r }
        }
        guard let r = earliest, let deadline = r.deadline else { return }
        if deadline <= clock.now {
            r.timedOut(after: r.timeout)
        } else {
            armDeadline(deadline)
        }
    }

    func stopDeadlineTimer() {
        deadlineTimer?.cancel()
        deadlineTimer = nil
    }

    func write(_ request: PendingRequest) {
        guard let wire else { return }
        request.sent = true
        wire.send(request.kind, mode: mode)
    }

    /// Takes a request back (cancelled or timed out). An unsent request just leaves the queue; a
    /// sent one keeps its slot so the reply that will come is dropped, and the connection takes
    /// no new requests until that reply came. With `abort`, or when no live request is left, the
    /// connection is closed.
    func withdraw(_ request: PendingRequest, abort: Bool) {
        guard let i = queue.firstIndex(where: { $0 === request }) else { return }
        request.connection = nil
        if request.sent {
            request.abandoned = true
            abandonedCount += 1
        } else {
            queue.remove(at: i)
        }
        if abort || load == 0 { self.abort() }
    }

    /// Closes at once; live requests fail with `connectionLost` when the close is reported.
    func abort() {
        guard state != .closed, !abortedByUs else { return }
        abortedByUs = true
        draining = true
        owner?.connectionClosed(self)
        switch state {
        case .connecting: connector?.disconnect()
        case .connected: wire?.abortTransport()
        case .closed: break
        }
    }

    // MARK: Events from the wire

    /// The connection is up: write what waited for it.
    func connected() {
        guard state == .connecting else { return }
        state = .connected
        for r in queue where !r.sent { write(r) }
    }

    /// One complete reply, for the oldest request.
    func replyReceived(_ outcome: Result<[UInt8], TransformProxyError>) {
        if !gotReply, mode == .extended { owner?.replyReceived(from: endpoint) }
        gotReply = true
        guard !queue.isEmpty else {
            protocolFailure("a reply arrived with no request waiting for it")
            return
        }
        let r = queue.removeFirst()
        if case .failure(.shuttingDown) = outcome {
            draining = true
            owner?.connectionClosed(self)
        }
        if r.abandoned { abandonedCount -= 1 } else { r.resolve(outcome) }
        if mode == .original {
            // The original server closes after its reply; close our side too, gracefully.
            abortedByUs = true
            owner?.connectionClosed(self)
            wire?.closeTransport()
            return
        }
        if draining, queue.isEmpty { abort() }
        // Only abandoned work is left: close, so the server stops it.
        if abandonedCount > 0, load == 0 { abort() }
    }

    /// The peer broke the protocol: every request fails with a protocol error and the
    /// connection is dropped.
    func protocolFailure(_ detail: String) {
        let pending = takePending()
        abort()
        for r in pending { r.resolve(.failure(.protocolError(endpoint, detail: detail))) }
    }

    /// The connection closed in the middle of a reply: a lost connection (the server died or
    /// restarted), retried like one; not a protocol error, which is not retried.
    func lostMidReply() {
        let pending = takePending()
        abort()
        for r in pending { r.resolve(.failure(.connectionLost(endpoint))) }
    }

    /// The connection ended. `midReply` tells that part of a reply had arrived.
    func lost(_ reason: ConnectionEnd, midReply: Bool) {
        let wasOurs = abortedByUs
        stopDeadlineTimer()
        let pending = takePending()
        if !abortedByUs {
            abortedByUs = true
            owner?.connectionClosed(self)
        }
        state = .closed
        guard !pending.isEmpty else { return }
        if owner?.isClosed ?? true {
            for r in pending { r.resolve(.failure(.cancelled)) }
            return
        }
        if midReply {
            // A server that died or restarted mid-reply: transient, unlike a protocol error.
            for r in pending { r.resolve(.failure(.connectionLost(endpoint))) }
            return
        }
        if mode == .extended, !wasOurs, !gotReply, reason == .done, pending.contains(where: { $0.sent }),
            let owner
        {
            owner.closedWithoutAnyReply(endpoint, requests: pending)
            return
        }
        let e: TransformProxyError =
            mode == .original && reason == .done && !wasOurs ? .closedWithoutReply(endpoint) : .connectionLost(endpoint)
        for r in pending { r.resolve(.failure(e)) }
    }

    /// Empties the queue, returning the live requests (detached from this connection).
    func takePending() -> [PendingRequest] {
        let live = queue.filter { $0.isLive }
        queue.removeAll()
        abandonedCount = 0
        for r in live { r.connection = nil }
        return live
    }

    // MARK: ClientFactory

    func buildProtocol(peer: SocketAddress) -> any ConnectionProtocol {
        let w: any ClientWire & ConnectionProtocol
        switch mode {
        case .extended, .original: w = NetstringClientWire(owner: self, maxLength: maxReplyLength)
        case .line: w = LineClientWire(owner: self, maxLength: maxReplyLength)
        }
        wire = w
        return w
    }

    func clientConnectionFailed(_ connector: any Connector, reason: ConnectError) {
        stopDeadlineTimer()
        let pending = takePending()
        if !abortedByUs {
            abortedByUs = true
            owner?.connectionClosed(self)
        }
        state = .closed
        let e: TransformProxyError
        if owner?.isClosed ?? true {
            e = .cancelled
        } else {
            switch reason {
            case .refused: e = .connectionRefused(endpoint)
            case .unknownHost: e = .unknownHost(endpoint)
            case .cancelled: e = .connectionLost(endpoint)
            case .timedOut: e = .connectFailed(endpoint, reason: "connect timed out")
            case .failed: e = .connectFailed(endpoint, reason: reason.description)
            }
        }
        for r in pending { r.resolve(.failure(e)) }
    }
}

// MARK: - Wire protocols

/// What a ``ClientConnection`` needs from its wire protocol.
protocol ClientWire: AnyObject {
    /// Writes one request.
    func send(_ kind: RequestKind, mode: ConnectionMode)
    /// Drops the connection at once.
    func abortTransport()
    /// Closes the connection after flushing.
    func closeTransport()
}

/// A wire protocol is a receiver (for replies) with an encoder (for requests).
protocol ClientCodecWire: ClientWire, BaseProtocol {
    /// One request in this wire format.
    func encode(_ kind: RequestKind, mode: ConnectionMode) -> [UInt8]
}

extension ClientCodecWire {
    func send(_ kind: RequestKind, mode: ConnectionMode) { transport?.write(encode(kind, mode: mode)) }
    func abortTransport() { transport?.abortConnection() }
    func closeTransport() { transport?.loseConnection() }
}

extension ClientConnection {
    /// A reply's bytes, checked to be UTF-8 (an all-ASCII reply needs no decoding to tell).
    func validated(_ bytes: UnsafeRawBufferPointer) -> Result<[UInt8], TransformProxyError> {
        guard bytes.allSatisfy({ $0 < 0x80 }) || String(validating: bytes, as: UTF8.self) != nil else {
            return .failure(.protocolError(endpoint, detail: "the reply is not valid UTF-8"))
        }
        return .success([UInt8](bytes))
    }
}

extension ClientConnection {
    /// A typed error reply (`-code message` or `ERR code message`) for the oldest request.
    func typedErrorReceived(code: String, message: String) {
        let kind = queue.first?.kind ?? .list
        replyReceived(.failure(.fromWire(code: code, message: message, request: kind, endpoint: endpoint)))
    }
}

/// The netstring side of a client connection, in the extended or the original form.
final class NetstringClientWire: NetstringReceiver, ClientCodecWire {
    let owner: ClientConnection

    init(owner: ClientConnection, maxLength: Int) {
        self.owner = owner
        super.init(maxLength: maxLength)
    }

    override func connectionMade() {
        super.connectionMade()
        owner.connected()
    }

    /// Writes a transform request straight into the transport's output buffer; others through
    /// ``encode(_:mode:)``.
    func send(_ kind: RequestKind, mode: ConnectionMode) {
        guard case .transform(let request) = kind else {
            transport?.write(encode(kind, mode: mode))
            return
        }
        request.withBuffers { name, text in
            transport?.write(reserving: name.count + text.count + NetstringTransformCodec.maxRequestOverhead) {
                NetstringTransformCodec.writeRequest(name: name, text: text, extended: mode == .extended, to: $0.baseAddress!)
            }
        }
    }

    func encode(_ kind: RequestKind, mode: ConnectionMode) -> [UInt8] {
        var request: [UInt8] = []
        switch kind {
        case .transform(let r):
            r.withBuffers { name, text in
                let length = name.count + text.count + NetstringTransformCodec.maxRequestOverhead
                request = [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
                    count = NetstringTransformCodec.writeRequest(
                        name: name, text: text, extended: mode == .extended, to: buffer.baseAddress!)
                }
            }
        case .list:
            NetstringTransformCodec.appendQuery("list", to: &request)
        case .limits:
            NetstringTransformCodec.appendQuery("limits", to: &request)
        }
        return request
    }

    override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        switch NetstringTransformCodec.decodeReply(payload, extended: owner.mode != .original) {
        case .success(let text):
            owner.replyReceived(owner.validated(text))
        case .failure(let code, let message):
            owner.typedErrorReceived(code: code, message: message)
        case .malformed(let reason):
            owner.protocolFailure(reason)
        }
    }

    override func framingError(_ error: NetstringError) {
        if case .incompleteFrame = error {
            owner.lostMidReply()
        } else {
            owner.protocolFailure("malformed netstring (\(error))")
        }
        transport?.abortConnection()
    }

    override func connectionLost(reason: ConnectionEnd) {
        let midReply = bufferedByteCount > 0
        super.connectionLost(reason: reason)
        owner.lost(reason, midReply: midReply)
    }
}

/// The line-protocol side of a client connection.
final class LineClientWire: LineReceiver, ClientCodecWire {
    let owner: ClientConnection
    /// The lines of an `OK` block being read, if one is.
    var block: [String]?

    init(owner: ClientConnection, maxLength: Int) {
        self.owner = owner
        super.init(maxLineLength: maxLength)
        // A last line without its newline is a reply cut short, never a reply.
        deliversUnterminatedLastLine = false
    }

    override func connectionMade() {
        super.connectionMade()
        owner.connected()
    }

    func encode(_ kind: RequestKind, mode: ConnectionMode) -> [UInt8] {
        var request: [UInt8] = []
        switch kind {
        case .transform(let r):
            r.withBuffers { LineTransformCodec.appendRequest(name: $0, text: $1, to: &request) }
        case .list:
            LineTransformCodec.appendCommand("list", to: &request)
        case .limits:
            // Never queued: the line protocol has no limits query (TransformProxy.dispatch).
            preconditionFailure("?limits on a line connection")
        }
        return request
    }

    override func lineReceived(_ line: UnsafeRawBufferPointer) {
        if block != nil {
            switch LineTransformCodec.decodeBlockLine(line) {
            case .end:
                let lines = block!
                block = nil
                owner.replyReceived(.success(Array(lines.joined(separator: "\n").utf8)))
            case .content(let content):
                guard let s = String(validating: content, as: UTF8.self) else {
                    owner.protocolFailure("the reply is not valid UTF-8")
                    return
                }
                block!.append(s)
            }
            return
        }
        guard String(validating: line, as: UTF8.self) != nil else {
            owner.protocolFailure("the reply is not valid UTF-8")
            return
        }
        switch LineTransformCodec.decodeReply(line) {
        case .blockStart:
            block = []
        case .text(let text):
            // Valid UTF-8 with escapes decoded stays valid UTF-8.
            owner.replyReceived(.success([UInt8](text)))
        case .failure(let code, let message):
            owner.typedErrorReceived(code: code, message: message)
        case .malformed(let reason):
            owner.protocolFailure(reason)
        }
    }

    override func lineLengthExceeded() {
        owner.protocolFailure("a reply line longer than \(maxLineLength) bytes")
        transport?.abortConnection()
    }

    override func connectionLost(reason: ConnectionEnd) {
        let midReply = bufferedByteCount > 0 || block != nil
        super.connectionLost(reason: reason)
        owner.lost(reason, midReply: midReply)
    }
}
