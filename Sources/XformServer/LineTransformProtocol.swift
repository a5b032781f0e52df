import XformCore
import XformFraming
import XformTransforms

/// The line transform protocol (protocol-spec/line.md), one instance per connection: made for
/// a person at a netcat prompt. Single-line requests `name text` with backslash escapes, block
/// requests (`name`, dot-stuffed lines, `.`) for multi-line text, and the commands `help`,
/// `list`, `stats` and `quit`. Every request gets an `OK` or `ERR` reply, in request order.
public final class LineTransformProtocol: LineReceiver, ReplyPipelineOwner {
    static let portName = "line"
    static let commands: Set<String> = ["help", "list", "stats", "quit"]

    /// A block request being collected.
    struct Block {
        var name: [UInt8]
        var text: [UInt8] = []
        var lines = 0
        var error: WireError?
    }

    let dispatcher: TransformDispatcher
    let replies: ReplyPipeline
    var block: Block?
    /// The peer, for log lines (the per-connection log tag is only built when a line is logged).
    let peer: SocketAddress

    /// Creates the protocol for one connection from `peer`.
    public init(dispatcher: TransformDispatcher, peer: SocketAddress) {
        self.dispatcher = dispatcher
        self.peer = peer
        self.replies = ReplyPipeline(dispatcher: dispatcher, port: Self.portName)
        super.init(maxLineLength: dispatcher.limits.maxLineLength)
        replies.owner = self
    }

    public override func connectionMade() {
        super.connectionMade()
        replies.connectionMade { [weak self] timeout in self?.debug("idle for \(timeout): closing") }
    }

    public override func dataReceived(_ data: UnsafeRawBufferPointer) {
        replies.received(data.count)
        super.dataReceived(data)
        replies.finishIfDone()
    }

    public override func lineReceived(_ line: UnsafeRawBufferPointer) {
        if replies.stopped { return }
        if block != nil {
            blockLine(line)
            return
        }
        if line.isEmpty { return }
        guard let space = line.firstIndex(of: UInt8(ascii: " ")) else {
            let word = String(decoding: line, as: UTF8.self)
            if Self.commands.contains(word) {
                command(word)
            } else {
                block = Block(name: Array(line))
            }
            return
        }
        let name = UnsafeRawBufferPointer(rebasing: line[..<space])
        let escaped = UnsafeRawBufferPointer(rebasing: line[(space + 1)...])
        switch LineEscaping.unescape(escaped) {
        case .success(let text):
            text.withUnsafeBytes { transform(name: name, text: $0, block: false) }
        case .failure(let error):
            fail(error, transform: nil)
        }
    }

    func blockLine(_ line: UnsafeRawBufferPointer) {
        if line.count == 1, line[0] == UInt8(ascii: ".") {
            let finished = block!
            block = nil
            if let error = finished.error {
                fail(error, transform: nil)
            } else {
                finished.name.withUnsafeBytes { name in
                    finished.text.withUnsafeBytes { transform(name: name, text: $0, block: true) }
                }
            }
            return
        }
        guard block!.error == nil else { return }
        var content = line
        if content.first == UInt8(ascii: ".") { content = UnsafeRawBufferPointer(rebasing: content.dropFirst()) }
        let added = content.count + (block!.lines > 0 ? 1 : 0)
        if block!.text.count + added > dispatcher.limits.maxRequestBytes {
            block!.error = .tooLarge("the text is longer than \(dispatcher.limits.maxRequestBytes) bytes")
            block!.text = []
            return
        }
        if block!.lines > 0 { block!.text.append(UInt8(ascii: "\n")) }
        block!.text.append(contentsOf: content)
        block!.lines += 1
    }

    func transform(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, block: Bool) {
        if dispatcher.shuttingDown {
            fail(.shuttingDown, transform: nil)
            return
        }
        guard let handle = dispatcher.lookup(name, cached: nil) else {
            fail(dispatcher.unknownTransformError(name), transform: nil)
            return
        }
        let render: ([UInt8]) -> [UInt8] = block ? { Self.blockReply($0) } : { Self.lineReply($0) }
        switch handle.apply(text, context: dispatcher.context) {
        case .done(let bytes):
            dispatcher.stats.count(transform: handle.name, outcome: "ok")
            replies.send(render(bytes))
        case .failed(let error):
            fail(WireError(error, maxBytes: dispatcher.limits.maxRequestBytes), transform: handle.name)
        case .pending(let deferred):
            replies.await(deferred, transform: handle.name, render: render, renderError: { Self.errorReply($0) })
        }
    }

    func command(_ word: String) {
        switch word {
        case "help":
            replies.send(Self.blockReply(lines: helpLines()))
        case "list":
            replies.send(Self.blockReply(lines: dispatcher.service.names))
        case "stats":
            replies.send(Self.blockReply(lines: dispatcher.stats.report()))
        default:  // quit
            replies.send(Array("OK bye\n".utf8))
            replies.closeAfterOwed()
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
        let names = dispatcher.service.names
        let width = max(13, names.map(\.count).max() ?? 0) + 2
        for name in names {
            let summary = dispatcher.service.lookup(name).map(\.summary) ?? ""
            lines.append("  " + name + String(repeating: " ", count: width - name.count) + summary)
        }
        return lines
    }

    /// Logs at debug level under this connection's tag (`line,<peer>`), building nothing when
    /// debug logging is off: client-triggered failures never cost more than a level check.
    func debug(_ message: @autoclosure () -> String) {
        let logger = dispatcher.logger
        guard logger.isEnabled(.debug) else { return }
        logger.with(system: "line,\(peer)").debug(message())
    }

    func fail(_ error: WireError, transform: String?) {
        if let transform { dispatcher.stats.count(transform: transform, outcome: error.code) }
        debug("request failed: \(error)")
        replies.send(Self.errorReply(error))
    }

    // MARK: Reply rendering

    /// `OK <escaped text>\n`.
    static func lineReply(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("OK ".utf8)
        out.reserveCapacity(text.count + 8)
        text.withUnsafeBytes { LineEscaping.escape($0, into: &out) }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// `OK\n`, the text's lines dot-stuffed, `.\n`.
    static func blockReply(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = Array("OK\n".utf8)
        out.reserveCapacity(text.count + 8)
        if !text.isEmpty {
            var lineStart = true
            for byte in text {
                if lineStart, byte == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
                out.append(byte)
                lineStart = byte == UInt8(ascii: "\n")
            }
            out.append(UInt8(ascii: "\n"))
        }
        out.append(contentsOf: ".\n".utf8)
        return out
    }

    static func blockReply(lines: [String]) -> [UInt8] {
        blockReply(Array(lines.joined(separator: "\n").utf8))
    }

    /// `ERR <code> <message>\n`.
    static func errorReply(_ error: WireError) -> [UInt8] {
        Array("ERR \(error.code) \(error.message)\n".utf8)
    }

    // MARK: Limits, EOF, shutdown, loss

    public override func lineLengthExceeded() {
        let error = WireError.tooLarge("the line is longer than \(dispatcher.limits.maxLineLength) bytes")
        if block != nil {
            if block!.error == nil {
                block!.error = error
                block!.text = []
            }
        } else {
            fail(error, transform: nil)
        }
        // Returning without closing: the receiver skips the rest of the line and goes on.
    }

    public override func inputEnded() {
        if block != nil {
            block = nil
            fail(.badRequest("the block was not ended by a line with a single '.'"), transform: nil)
        }
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

/// The line protocol's escapes: `\n`, `\r`, `\t`, `\\`.
public enum LineEscaping {
    /// Decodes escapes.
    ///
    /// - Returns: the text, or a `bad_request` error naming the invalid escape.
    public static func unescape(_ escaped: UnsafeRawBufferPointer) -> Result<[UInt8], WireError> {
        var out = [UInt8]()
        out.reserveCapacity(escaped.count)
        var i = 0
        while i < escaped.count {
            let b = escaped[i]
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            guard i + 1 < escaped.count else {
                return .failure(.badRequest("invalid escape '\\' at the end of the text"))
            }
            switch escaped[i + 1] {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "\\"): out.append(92)
            case let other:
                let shown = (32..<127).contains(other) ? String(UnicodeScalar(other)) : "\\x" + String(other, radix: 16)
                return .failure(.badRequest("invalid escape '\\\(shown)' (use \\n \\r \\t \\\\)"))
            }
            i += 2
        }
        return .success(out)
    }

    /// Appends `text` with newlines, carriage returns, tabs and backslashes escaped.
    public static func escape(_ text: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        for b in text {
            switch b {
            case 10: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 13: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 9: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 92: out.append(contentsOf: [92, 92])
            default: out.append(b)
            }
        }
    }
}
