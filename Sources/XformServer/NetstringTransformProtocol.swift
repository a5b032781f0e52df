import XformCore
import XformFraming
import XformTransforms

/// The netstring transform protocol (protocol-spec/netstring.md), one instance per connection:
/// a thin codec (``NetstringTransformCodec``) around the connection's ``ConnectionSession``.
///
/// A request in the original form (`name.text`) gets the original lifecycle: a bare reply, or a
/// close without reply on any error, and the connection closes once the requests of that read
/// are answered. A request in the extended form (`!name.text`, `?list`) gets a `+`/`-` typed
/// reply and keeps the connection open; pipelined requests are answered in order.
///
/// The hot path (an ASCII request to a local transform with a byte fast path, nothing owed)
/// builds the whole reply netstring in a reused scratch buffer and hands it to the transport in
/// one write: no allocation, no `String`.
public final class NetstringTransformProtocol: NetstringReceiver, TransformSessionHost, LimitCountedConnection {
    /// `true`: the extended form (`+`/`-` replies); `false`: the original form.
    typealias ReplyStyle = Bool

    let state: ServerState
    var port: ServerPort { .netstring }
    // Unchecked: read or written on every request, and a checked class property costs a
    // swift_beginAccess (about 76 instructions, measured with callgrind) per access. Safe: the
    // session's methods are pure (they call nothing that could re-enter), so no two accesses
    // can overlap.
    @exclusivity(unchecked) var host: SessionHostState
    /// The client has used the extended form on this connection (framing errors then get a
    /// typed reply). Unchecked for the same measured reason as `host`: set on every request.
    @exclusivity(unchecked) var extendedSeen = false
    /// After an over-long length prefix in the original form: the bytes read so far, until the
    /// first payload byte tells `-too_large` (`!`) from a bare close (anything else).
    /// Unchecked: tested on every read (a checked access costs about 76 instructions, callgrind).
    @exclusivity(unchecked) var peekedPrefix: [UInt8]?

    /// Creates the protocol for one connection from `peer` (log lines read the peer from the
    /// transport: no copy per connection).
    public init(state: ServerState, peer: SocketAddress) {
        self.state = state
        self.host = SessionHostState(configuration: state.sessionConfiguration)
        super.init(maxLength: state.limits.maxRequestBytes)
    }

    deinit { host.membership.end() }

    public override func connectionMade() {
        super.connectionMade()
        startSession()
    }

    public override func dataReceived(_ data: UnsafeRawBufferPointer) {
        received(data.count)
        if peekedPrefix != nil {
            peekedPrefix!.append(contentsOf: data.prefix(NetstringReceiver.failedInputKept))
            decideOverLongRequest()
            return
        }
        super.dataReceived(data)
        readEnded()
    }

    public override func directDataReceived(_ count: Int) {
        received(count)
        super.directDataReceived(count)
        readEnded()
    }

    public override func readConnectionLost() {
        if peekedPrefix != nil {
            peekedPrefix = nil
            perform(host.session.closeAfterOwed())
            return
        }
        super.readConnectionLost()
    }

    public override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        guard host.session.acceptsRequests else { return }
        switch NetstringTransformCodec.decodeRequest(payload) {
        case .transform(let name, let text, let extended):
            if extended { extendedSeen = true } else { host.session.originalFormRequest() }
            runRequest(name: name, text: text, style: extended)
        case .query(let query):
            extendedSeen = true
            handleQuery(query)
        case .malformed(let problem, let extended):
            if extended {
                extendedSeen = true
            } else if !payload.isEmpty {
                host.session.originalFormRequest()
            }
            fail(.badRequest(problem.message), style: extended, countingAs: nil)
        }
    }

    func handleQuery(_ query: UnsafeRawBufferPointer) {
        if query.elementsEqual("list".utf8) {
            if let unknown = state.catalogUnknown {
                fail(unknown, style: true, countingAs: nil)
                return
            }
            let names = state.transformNames.joined(separator: "\n")
            send(successReply(Array(names.utf8), style: true))
        } else if query.elementsEqual("limits".utf8) {
            // protocol-spec/netstring.md 3.1: the longest payload counts the whole request.
            let limits = "max_request_bytes=\(state.limits.maxRequestBytes)\nmax_line_length=\(state.limits.maxLineLength)\n"
            send(successReply(Array(limits.utf8), style: true))
        } else {
            fail(.badRequest("unknown query (try ?list or ?limits)"), style: true, countingAs: nil)
        }
    }

    /// The hot path: header, transformed bytes and trailer written in place in the transport's
    /// output buffer.
    func writeFastReply(_ fast: CheckedASCIIFastPath, text: UnsafeRawBufferPointer, style extended: Bool) -> Bool {
        guard let transport else { return true }
        var length = 0
        transport.write(reserving: text.count + NetstringTransformCodec.maxReplyOverhead) { buffer in
            length = NetstringTransformCodec.writeReply(textCount: text.count, extended: extended, to: buffer.baseAddress!) {
                fast(text, $0)
            }
            return length
        }
        state.stats.bytes.add(sent: length, port: .netstring)
        return length > 0
    }

    // MARK: Replies

    func successReply(_ text: [UInt8], style extended: Bool) -> [UInt8] {
        NetstringTransformCodec.reply(text, extended: extended)
    }

    /// A typed error in the extended form; in the original form, none: the original's only
    /// signal is a close without reply.
    func errorReply(_ error: WireError, style extended: Bool) -> [UInt8]? {
        extended ? NetstringTransformCodec.errorReply(code: error.code, message: error.message) : nil
    }

    /// The netstring port closes an idle or late connection without a word (protocol-spec 4).
    func expiryNotice(_ expiry: ConnectionSession<Deferred<[UInt8]>>.Expiry) -> [UInt8]? { nil }

    var hasPartialRequest: Bool { hasPartialFrame }

    // MARK: Framing errors, EOF, loss

    public override func framingError(_ error: NetstringError) {
        debug("malformed netstring: \(error)")
        let wire: WireError
        switch error {
        case .tooLong, .lengthPrefixTooLong:
            wire = tooLarge
            if !extendedSeen {
                // Issue 11: the first payload byte tells an extended request (`!`: answer
                // `-too_large`) from an original one (close without a reply, as the original).
                peekedPrefix = failedInput
                decideOverLongRequest()
                return
            }
        default:
            wire = .badRequest("malformed netstring")
        }
        state.stats.countRejected(wire.code)
        if extendedSeen { send(NetstringTransformCodec.errorReply(code: wire.code, message: wire.message)) }
        perform(host.session.closeAfterOwed())
    }

    var tooLarge: WireError { .tooLarge("the request is longer than \(state.limits.maxRequestBytes) bytes") }

    /// With the bytes of an over-long request read so far (from its length prefix on): waits for
    /// the first payload byte, then answers `-too_large` and closes if it is `!`, or closes.
    func decideOverLongRequest() {
        guard let bytes = peekedPrefix else { return }
        var i = 0
        while i < bytes.count, bytes[i] &- UInt8(ascii: "0") < 10 { i += 1 }
        if i == bytes.count, i < NetstringReceiver.failedInputKept { return }  // more digits may come
        var extended = false
        if i < bytes.count, bytes[i] == UInt8(ascii: ":") {
            if i + 1 == bytes.count { return }  // the first payload byte has not arrived yet
            extended = bytes[i + 1] == UInt8(ascii: "!")
        }
        peekedPrefix = nil
        state.stats.countRejected(tooLarge.code)
        if extended { send(NetstringTransformCodec.errorReply(code: tooLarge.code, message: tooLarge.message)) }
        perform(host.session.closeAfterOwed())
    }

    public override func inputEnded() {
        perform(host.session.inputEnded())
    }

    public override func connectionLost(reason: ConnectionEnd) {
        endSession()
        super.connectionLost(reason: reason)
    }
}
