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
public final class NetstringTransformProtocol: NetstringReceiver, TransformSessionHost {
    /// `true`: the extended form (`+`/`-` replies); `false`: the original form.
    typealias ReplyStyle = Bool

    let state: ServerState
    let peer: SocketAddress
    var registryIndex: Int {
        get { host.registryIndex }
        set { host.registryIndex = newValue }
    }
    var port: ServerPort { .netstring }
    // Unchecked: read or written on every request, and a checked class property costs a
    // swift_beginAccess (about 76 instructions, measured with callgrind) per access. Safe: the
    // session's methods are pure (they call nothing that could re-enter), so no two accesses
    // can overlap.
    @exclusivity(unchecked) var host: SessionHostState
    /// What the hot path keeps between requests.
    struct CodecState {
        /// The client has used the extended form on this connection.
        var extendedSeen = false
        /// The last local transform used: a repeated request skips the registry.
        var lastHandle: TransformHandle?
        /// The counters of `lastHandle`.
        var lastHandleCounters: TransformCounters?
        /// Where the hot path builds replies; allocated on first use.
        var scratch: ScratchBuffer?
    }

    // Unchecked for the same measured reason as `host`; no access spans a call.
    @exclusivity(unchecked) var codec = CodecState()

    /// Creates the protocol for one connection from `peer`.
    public init(state: ServerState, peer: SocketAddress) {
        self.state = state
        self.peer = peer
        self.host = SessionHostState(limits: state.limits)
        super.init(maxLength: state.limits.maxRequestBytes)
    }

    public override func connectionMade() {
        super.connectionMade()
        startSession()
    }

    public override func dataReceived(_ data: UnsafeRawBufferPointer) {
        received(data.count)
        super.dataReceived(data)
        perform(host.session.readEnded())
    }

    public override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        guard host.session.acceptsRequests else { return }
        switch NetstringTransformCodec.decodeRequest(payload) {
        case .transform(let name, let text, let extended):
            if extended { codec.extendedSeen = true } else { host.session.originalFormRequest() }
            handleTransform(name: name, text: text, extended: extended)
        case .query(let query):
            codec.extendedSeen = true
            handleQuery(query)
        case .malformed(let problem, let extended):
            if extended {
                codec.extendedSeen = true
            } else if !payload.isEmpty {
                host.session.originalFormRequest()
            }
            fail(.badRequest(problem.message), style: extended, countingAs: nil)
        }
    }

    func handleTransform(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, extended: Bool) {
        guard let local = state.localService, !host.session.draining else {
            runRequest(name: name, text: text, style: extended)
            return
        }
        // The local service: keep the handle, and take the ASCII fast path when nothing is owed.
        let handle: TransformHandle
        if let last = codec.lastHandle, last.isRegistered, last.matches(name) {
            handle = last
        } else if let found = local.lookup(name: name) {
            handle = found
            codec.lastHandle = found
            codec.lastHandleCounters = state.stats.counters(for: found.name)
        } else {
            answer(local.start(name: name, text: text, context: state.context), name: name, style: extended)
            return
        }
        if host.session.mayWriteNow, let fast = handle.asciiFastPath, text.count <= state.limits.asciiInlineLimit,
            ASCIIBytes.isASCII(text)
        {
            writeFastReply(fast, text, extended: extended)
            countSuccess(of: handle)
            return
        }
        answer(handle.apply(text, context: state.context), name: name, style: extended)
    }

    func handleQuery(_ query: UnsafeRawBufferPointer) {
        if query.elementsEqual("list".utf8) {
            let names = state.transformNames.joined(separator: "\n")
            send(successReply(Array(names.utf8), style: true))
        } else {
            fail(.badRequest("unknown query (try ?list)"), style: true, countingAs: nil)
        }
    }

    /// Counts one success of the local transform `handle` (the last one looked up).
    @inline(__always)
    func countSuccess(of handle: TransformHandle) {
        codec.lastHandleCounters?.ok &+= 1
    }

    /// The hot path: header, transformed bytes and trailer built in place, one transport write.
    @inline(__always)
    func writeFastReply(_ fast: ASCIIFastPath, _ text: UnsafeRawBufferPointer, extended: Bool) {
        guard let transport else { return }
        let buffer: ScratchBuffer
        if let scratch = codec.scratch {
            buffer = scratch
        } else {
            buffer = ScratchBuffer()
            codec.scratch = buffer
        }
        let p = buffer.reserve(text.count + NetstringTransformCodec.maxReplyOverhead)
        let length = NetstringTransformCodec.writeReply(textCount: text.count, extended: extended, to: p) {
            fast(text, $0)
        }
        state.stats.bytes.sent &+= length
        transport.write(UnsafeRawBufferPointer(start: p, count: length))
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

    // MARK: Framing errors, EOF, loss

    public override func framingError(_ error: NetstringError) {
        debug("malformed netstring: \(error)")
        if codec.extendedSeen {
            let wire: WireError
            switch error {
            case .tooLong, .lengthPrefixTooLong:
                wire = .tooLarge("the request is longer than \(state.limits.maxRequestBytes) bytes")
            default:
                wire = .badRequest("malformed netstring")
            }
            send(NetstringTransformCodec.errorReply(code: wire.code, message: wire.message))
        }
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
