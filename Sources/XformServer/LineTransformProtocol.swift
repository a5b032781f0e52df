import XformCore
import XformFraming
import XformTransforms

/// The line transform protocol (protocol-spec/line.md), one instance per connection: a thin
/// codec (``LineTransformCodec``) around the connection's ``ConnectionSession``, made for a
/// person at a netcat prompt. Single-line requests `name text` with backslash escapes, block
/// requests (`name`, dot-stuffed lines, `.`) for multi-line text, and the commands `help`,
/// `list`, `stats` and `quit`. Every request gets an `OK` or `ERR` reply, in request order.
public final class LineTransformProtocol: LineReceiver, TransformSessionHost, LimitCountedConnection {
    /// `true`: the reply is a block (block request); `false`: one `OK` line.
    typealias ReplyStyle = Bool

    static let commands: Set<String> = ["help", "list", "stats", "quit"]

    /// A block request being collected.
    struct Block {
        var name: [UInt8]
        var text: [UInt8] = []
        var lines = 0
        var error: WireError?
    }

    let state: ServerState
    var port: ServerPort { .line }
    // Unchecked: read or written on every request, and a checked class property costs a
    // swift_beginAccess (about 76 instructions, measured with callgrind) per access. Safe: the
    // session's methods are pure (they call nothing that could re-enter), so no two accesses
    // can overlap.
    @exclusivity(unchecked) var host: SessionHostState
    /// Unchecked, with `netstringProbe`: read on every line and read (a checked access costs
    /// about 76 instructions, callgrind); no access to either spans a call.
    @exclusivity(unchecked) var block: Block?
    /// Until the first line is known not to start like a netstring (`<digits>:`): how many
    /// digits it starts with so far (nil once decided).
    @exclusivity(unchecked) var netstringProbe: Int? = 0

    /// Creates the protocol for one connection from `peer` (log lines read the peer from the
    /// transport: no copy per connection).
    public init(state: ServerState, peer: SocketAddress) {
        self.state = state
        self.host = SessionHostState(configuration: state.sessionConfiguration)
        super.init(maxLineLength: state.limits.maxLineLength)
    }

    deinit { host.membership.end() }

    public override func connectionMade() {
        super.connectionMade()
        startSession()
    }

    public override func dataReceived(_ data: UnsafeRawBufferPointer) {
        received(data.count)
        if netstringProbe != nil, probeForNetstring(data) { return }
        super.dataReceived(data)
        readEnded()
    }

    /// Issue 11: a netstring client pointed at the line port (`xform -p 10002`) sends no newline
    /// and would wait for ever; a first line that starts like a netstring is answered at once.
    ///
    /// - Returns: true when it was (the error is sent and the connection closes).
    func probeForNetstring(_ data: UnsafeRawBufferPointer) -> Bool {
        var digits = netstringProbe!
        for b in data {
            if b &- UInt8(ascii: "0") < 10 {
                digits += 1
                continue
            }
            netstringProbe = nil
            guard b == UInt8(ascii: ":"), digits > 0 else { return false }
            fail(
                .badRequest("this is the line port (one request per line: NAME TEXT); netstrings go to the netstring port"),
                style: false, countingAs: nil)
            perform(host.session.closeAfterOwed())
            return true
        }
        netstringProbe = digits
        return false
    }

    public override func lineReceived(_ line: UnsafeRawBufferPointer) {
        guard host.session.acceptsRequests else { return }
        if block != nil {
            blockLine(line)
            return
        }
        if line.isEmpty { return }
        let space = LineTransformCodec.firstSpace(line)
        guard space < line.count else {
            let word = String(decoding: line, as: UTF8.self)
            if Self.commands.contains(word) {
                command(word)
            } else if isServed(line) {
                block = Block(name: Array(line))
            } else {
                // Issue 11: no silent block for a name that reaches nothing.
                let error: TransformError =
                    TransformName.isValid(line) ? .unknownTransform(word) : .invalidName
                fail(WireError(error, maxBytes: state.limits.maxRequestBytes), style: false, countingAs: nil)
            }
            return
        }
        let name = UnsafeRawBufferPointer(start: line.baseAddress, count: space)
        let escaped = UnsafeRawBufferPointer(start: line.baseAddress! + space + 1, count: line.count - space - 1)
        if LineTransformCodec.isPlain(escaped) {
            // No escapes: the text is the rest of the line itself.
            runRequest(name: name, text: escaped, style: false)
            return
        }
        switch LineTransformCodec.unescape(escaped) {
        case .success(let text):
            text.withUnsafeBytes { runRequest(name: name, text: $0, style: false) }
        case .failure(let error):
            fail(.badRequest(error.message), style: false, countingAs: nil)
        }
    }

    /// True when `name` is a transform the backend serves (a block may start).
    func isServed(_ name: UnsafeRawBufferPointer) -> Bool {
        if let local = state.localService { return local.lookup(name: name) != nil }
        return state.backend.catalog.contains { $0.name.utf8.elementsEqual(name) }
    }

    func blockLine(_ line: UnsafeRawBufferPointer) {
        switch LineTransformCodec.decodeBlockLine(line) {
        case .end:
            let finished = block!
            block = nil
            if let error = finished.error {
                fail(error, style: true, countingAs: nil)
            } else {
                finished.name.withUnsafeBytes { name in
                    finished.text.withUnsafeBytes { runRequest(name: name, text: $0, style: true) }
                }
            }
        case .content(let content):
            guard block!.error == nil else { return }
            let added = content.count + (block!.lines > 0 ? 1 : 0)
            if block!.text.count + added > state.limits.maxRequestBytes {
                block!.error = .tooLarge("the text is longer than \(state.limits.maxRequestBytes) bytes")
                block!.text = []
                return
            }
            if block!.lines > 0 { block!.text.append(UInt8(ascii: "\n")) }
            block!.text.append(contentsOf: content)
            block!.lines += 1
        }
    }

    func command(_ word: String) {
        switch word {
        case "help":
            send(LineTransformCodec.blockReply(lines: helpLines()))
        case "list":
            if let unknown = state.catalogUnknown {
                fail(unknown, style: false, countingAs: nil)
                return
            }
            send(LineTransformCodec.blockReply(lines: state.transformNames))
        case "stats":
            send(LineTransformCodec.blockReply(lines: state.report()))
        default:  // quit
            send(Array("OK bye\n".utf8))
            perform(host.session.closeAfterOwed())
        }
    }

    func helpLines() -> [String] {
        var lines = [
            "xform line protocol: one request per line, replies OK or ERR.",
            "  NAME TEXT      transform TEXT (escapes: \\n \\r \\t \\\\); reply: OK RESULT",
            "  NAME           then the text's lines, then a line with a single '.'",
            "                 (a text line starting with '.' gets one more '.'); reply: OK, lines, '.'",
            "  list           the transform names",
            "  stats          the server's counters",
            "  quit           close the connection",
            "transforms:",
        ]
        let catalog = state.backend.catalog
        let width = max(13, catalog.map(\.name.count).max() ?? 0) + 2
        for (name, summary) in catalog {
            lines.append("  " + name + String(repeating: " ", count: width - name.count) + summary)
        }
        return lines
    }

    // MARK: Replies

    func successReply(_ text: [UInt8], style block: Bool) -> [UInt8] {
        LineTransformCodec.reply(text, block: block)
    }

    /// The hot path: `OK `, the transformed text and `\n` written in place in the transport's
    /// output buffer. A block, or a text that needs escapes after the transform, takes the
    /// general path (returns false).
    func writeFastReply(_ fast: CheckedASCIIFastPath, text: UnsafeRawBufferPointer, style block: Bool) -> Bool {
        guard !block else { return false }
        guard let transport else { return true }
        var length = 0
        transport.write(reserving: text.count + 4) { buffer in
            let p = buffer.baseAddress!
            let out = UnsafeMutableRawBufferPointer(start: p + 3, count: text.count)
            guard fast(text, out) else { return 0 }
            if LineTransformCodec.firstEscapable(UnsafeRawBufferPointer(out)) < text.count { return 0 }
            p.storeBytes(of: UInt8(ascii: "O"), toByteOffset: 0, as: UInt8.self)
            p.storeBytes(of: UInt8(ascii: "K"), toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: UInt8(ascii: " "), toByteOffset: 2, as: UInt8.self)
            p.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: 3 + text.count, as: UInt8.self)
            length = text.count + 4
            return length
        }
        state.stats.bytes.add(sent: length, port: .line)
        return length > 0
    }

    /// `ERR idle_timeout closing after 120s idle` (or `ERR request_timeout ...`): a person at a
    /// prompt learns why the connection closed.
    func expiryNotice(_ expiry: ConnectionSession<Deferred<[UInt8]>>.Expiry) -> [UInt8]? {
        switch expiry {
        case .idle(let t):
            return LineTransformCodec.errorReply(code: expiry.code, message: "closing after \(Self.seconds(t))s idle")
        case .request(let t):
            return LineTransformCodec.errorReply(
                code: expiry.code, message: "closing: the request was not complete \(Self.seconds(t))s after it began")
        case .drainGrace:
            return LineTransformCodec.errorReply(code: expiry.code, message: WireError.shuttingDown.message)
        }
    }

    /// `120`, or `0.5` for fractions.
    static func seconds(_ d: Duration) -> String {
        let c = d.components
        return c.attoseconds == 0 ? "\(c.seconds)" : String(Double(c.seconds) + Double(c.attoseconds) / 1e18)
    }

    /// A partial line, or a block still open.
    var hasPartialRequest: Bool { block != nil || hasPartialFrame }

    /// Errors are always one `ERR` line.
    func errorReply(_ error: WireError, style: Bool) -> [UInt8]? {
        LineTransformCodec.errorReply(code: error.code, message: error.message)
    }

    // MARK: Limits, EOF, loss

    public override func lineLengthExceeded() {
        let error = WireError.tooLarge("the line is longer than \(state.limits.maxLineLength) bytes")
        if block != nil {
            if block!.error == nil {
                block!.error = error
                block!.text = []
            }
        } else {
            fail(error, style: false, countingAs: nil)
        }
        // Returning without closing: the receiver skips the rest of the line and goes on.
    }

    public override func inputEnded() {
        if block != nil {
            block = nil
            fail(.badRequest("the block was not ended by a line with a single '.'"), style: false, countingAs: nil)
        }
        perform(host.session.inputEnded())
    }

    public override func connectionLost(reason: ConnectionEnd) {
        endSession()
        super.connectionLost(reason: reason)
    }
}
