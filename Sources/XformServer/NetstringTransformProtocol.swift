import Glibc
import XformCore
import XformFraming
import XformTransforms

/// The netstring transform protocol (protocol-spec/netstring.md), one instance per connection.
///
/// A request in the original form (`name.text`) gets the original lifecycle: a bare reply, or a
/// close without reply on any error, and the connection closes once the requests of that read
/// are answered. A request in the extended form (`!name.text`, `?list`) gets a `+`/`-` typed
/// reply and keeps the connection open; pipelined requests are answered in order.
///
/// The hot path (an ASCII request to a transform with a byte fast path, nothing waiting) builds
/// the whole reply netstring in a reused scratch buffer and hands it to the transport in one
/// write: no allocation, no `String`.
public final class NetstringTransformProtocol: NetstringReceiver, ReplyPipelineOwner {
    static let portName = "netstring"

    let dispatcher: TransformDispatcher
    let scratch = ScratchBuffer()
    let replies: ReplyPipeline
    /// The client has used the extended form on this connection.
    @exclusivity(unchecked) var extendedSeen = false
    /// An original-form request arrived in the current read: close when its batch is answered.
    @exclusivity(unchecked) var originalInBatch = false
    /// The peer, for log lines (the per-connection log tag is only built when a line is logged).
    let peer: SocketAddress
    /// The last transform used and its counters: counting a request costs no hashing.
    @exclusivity(unchecked) var lastHandle: TransformHandle?
    @exclusivity(unchecked) var lastCounters: TransformCounters?

    /// Creates the protocol for one connection from `peer`.
    public init(dispatcher: TransformDispatcher, peer: SocketAddress) {
        self.dispatcher = dispatcher
        self.peer = peer
        self.replies = ReplyPipeline(dispatcher: dispatcher, port: Self.portName)
        super.init(maxLength: dispatcher.limits.maxRequestBytes)
        replies.owner = self
    }

    public override func connectionMade() {
        super.connectionMade()
        replies.connectionMade { [weak self] timeout in self?.debug("idle for \(timeout): closing") }
    }

    public override func dataReceived(_ data: UnsafeRawBufferPointer) {
        replies.received(data.count)
        super.dataReceived(data)
        if originalInBatch {
            // The original server answered one read's requests, then closed.
            originalInBatch = false
            transport?.pauseReading()
            replies.stopped = true
            replies.closeWhenFinished()
        } else {
            replies.finishIfDone()
        }
    }

    public override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        if replies.stopped { return }
        guard let first = payload.first else {
            fail(.badRequest("empty request"), extended: false, transform: nil)
            return
        }
        switch first {
        case UInt8(ascii: "!"):
            extendedSeen = true
            handleTransform(UnsafeRawBufferPointer(rebasing: payload.dropFirst()), extended: true)
        case UInt8(ascii: "?"):
            extendedSeen = true
            handleQuery(UnsafeRawBufferPointer(rebasing: payload.dropFirst()))
        default:
            originalInBatch = true
            handleTransform(payload, extended: false)
        }
    }

    func handleTransform(_ request: UnsafeRawBufferPointer, extended: Bool) {
        guard let dot = Self.firstDot(request) else {
            fail(.badRequest("the request has no '.' after the name"), extended: extended, transform: nil)
            return
        }
        let name = UnsafeRawBufferPointer(rebasing: request[..<dot])
        let text = UnsafeRawBufferPointer(rebasing: request[(dot + 1)...])
        if dispatcher.shuttingDown {
            fail(.shuttingDown, extended: extended, transform: nil)
            return
        }
        guard let handle = dispatcher.lookup(name, cached: lastHandle) else {
            fail(dispatcher.unknownTransformError(name), extended: extended, transform: nil)
            return
        }
        if replies.isIdle, let fast = handle.asciiFastPath, text.count <= dispatcher.limits.asciiInlineLimit,
            ASCIIBytes.isASCII(text)
        {
            writeFastReply(fast, text, extended: extended)
            countSuccess(handle)
            return
        }
        switch handle.apply(text, context: dispatcher.context) {
        case .done(let bytes):
            countSuccess(handle)
            replies.send(Self.frame(bytes, extended: extended))
        case .failed(let error):
            fail(
                WireError(error, maxBytes: dispatcher.limits.maxRequestBytes), extended: extended,
                transform: handle.name)
        case .pending(let deferred):
            let renderError: ((WireError) -> [UInt8])? = extended ? { Self.errorFrame($0) } : nil
            replies.await(
                deferred, transform: handle.name, render: { Self.frame($0, extended: extended) },
                renderError: renderError)
        }
    }

    /// The index of the first `.`, found with `memchr` (the generic `firstIndex(of:)` costs
    /// about a hundred instructions per request more).
    @inline(__always)
    static func firstDot(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, let hit = memchr(base, Int32(UInt8(ascii: ".")), bytes.count) else {
            return nil
        }
        return UnsafeRawPointer(hit) - base
    }

    @inline(__always)
    func countSuccess(_ handle: TransformHandle) {
        if handle !== lastHandle {
            lastHandle = handle
            lastCounters = dispatcher.stats.counters(for: handle.name)
        }
        lastCounters!.ok &+= 1
    }

    func handleQuery(_ query: UnsafeRawBufferPointer) {
        if query.elementsEqual("list".utf8) {
            let names = dispatcher.service.names.joined(separator: "\n")
            replies.send(Self.frame(Array(names.utf8), extended: true))
        } else {
            fail(.badRequest("unknown query (try ?list)"), extended: true, transform: nil)
        }
    }

    // MARK: Replies

    /// A success reply: the bare text (original form) or `+` and the text (extended form).
    static func frame(_ text: [UInt8], extended: Bool) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(text.count + 12)
        out.append(contentsOf: String(text.count + (extended ? 1 : 0)).utf8)
        out.append(UInt8(ascii: ":"))
        if extended { out.append(UInt8(ascii: "+")) }
        out.append(contentsOf: text)
        out.append(UInt8(ascii: ","))
        return out
    }

    /// An extended-form error reply: `-code message`.
    static func errorFrame(_ error: WireError) -> [UInt8] {
        var payload = [UInt8]()
        payload.append(UInt8(ascii: "-"))
        payload.append(contentsOf: error.code.utf8)
        payload.append(UInt8(ascii: " "))
        payload.append(contentsOf: error.message.utf8)
        var out = Array(String(payload.count).utf8)
        out.append(UInt8(ascii: ":"))
        out.append(contentsOf: payload)
        out.append(UInt8(ascii: ","))
        return out
    }

    /// The hot path: header, transformed bytes and trailer built in place, one transport write.
    @inline(__always)
    func writeFastReply(_ fast: ASCIIFastPath, _ text: UnsafeRawBufferPointer, extended: Bool) {
        guard let transport else { return }
        let length = text.count + (extended ? 1 : 0)
        let p = scratch.reserve(text.count + 24)
        var offset = writeDecimal(length, to: p)
        p.storeBytes(of: UInt8(ascii: ":"), toByteOffset: offset, as: UInt8.self)
        offset += 1
        if extended {
            p.storeBytes(of: UInt8(ascii: "+"), toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        fast(text, UnsafeMutableRawBufferPointer(start: p + offset, count: text.count))
        offset += text.count
        p.storeBytes(of: UInt8(ascii: ","), toByteOffset: offset, as: UInt8.self)
        offset += 1
        dispatcher.stats.bytesOut += offset
        transport.write(UnsafeRawBufferPointer(start: p, count: offset))
    }

    /// Answers a failed request: a typed error in the extended form; in the original form, the
    /// original's only signal, a close without reply (after the replies owed before it).
    /// Logs at debug level under this connection's tag (`netstring,<peer>`), building nothing when
    /// debug logging is off: client-triggered failures never cost more than a level check.
    func debug(_ message: @autoclosure () -> String) {
        let logger = dispatcher.logger
        guard logger.isEnabled(.debug) else { return }
        logger.with(system: "netstring,\(peer)").debug(message())
    }

    func fail(_ error: WireError, extended: Bool, transform: String?) {
        if let transform { dispatcher.stats.count(transform: transform, outcome: error.code) }
        debug("request failed: \(error)")
        if extended {
            replies.send(Self.errorFrame(error))
        } else {
            replies.closeAfterOwed()
        }
    }

    // MARK: Framing errors, EOF, shutdown, loss

    public override func framingError(_ error: NetstringError) {
        debug("malformed netstring: \(error)")
        if extendedSeen {
            let wire: WireError
            switch error {
            case .tooLong, .lengthPrefixTooLong:
                wire = .tooLarge("the request is longer than \(dispatcher.limits.maxRequestBytes) bytes")
            default:
                wire = .badRequest("malformed netstring")
            }
            replies.send(Self.errorFrame(wire))
        }
        replies.closeAfterOwed()
    }

    public override func inputEnded() {
        replies.closeWhenFinished()
    }

    func drain() {
        replies.closeWhenFinished()
    }

    public override func connectionLost(reason: ConnectionEnd) {
        replies.connectionLost()
        super.connectionLost(reason: reason)
    }
}
