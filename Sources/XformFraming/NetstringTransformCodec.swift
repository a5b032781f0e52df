#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One request payload of the netstring transform protocol (protocol-spec/netstring.md), as
/// ``NetstringTransformCodec/decodeRequest(_:)`` reads it. The buffers point into the payload
/// and are valid only as long as it is.
public enum NetstringRequest {
    /// `name.text` (original form, `extended` false) or `!name.text` (extended form).
    case transform(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, extended: Bool)
    /// `?query` (extended form): the bytes after the `?`.
    case query(UnsafeRawBufferPointer)
    /// Not a request; `extended` tells the form it was sent in.
    case malformed(NetstringRequestProblem, extended: Bool)
}

/// Why a netstring payload is not a request (a plain value: decoding allocates nothing).
public enum NetstringRequestProblem: Sendable, Equatable {
    /// The payload is empty.
    case empty
    /// No `.` separates the name from the text.
    case noDot

    /// The explanation for people (the `bad_request` message).
    public var message: String {
        switch self {
        case .empty: return "empty request"
        case .noDot: return "the request has no '.' after the name"
        }
    }
}

/// One reply payload of the netstring transform protocol, as a client reads it.
public enum NetstringReply {
    /// The transformed text (or a query's answer); points into the payload.
    case success(UnsafeRawBufferPointer)
    /// An extended-form typed error: `-code message`.
    case failure(code: String, message: String)
    /// Not a reply of the form expected; `reason` says why.
    case malformed(reason: String)
}

/// The netstring transform protocol's request and reply codec, shared by the server and the
/// client: the one place that knows the `!`/`?`/`+`/`-` markers, the `.` after the name and the
/// netstring framing of replies.
public enum NetstringTransformCodec {
    /// The most bytes a reply adds around its text: the header (`<digits>:`), the `+` and `,`.
    public static let maxReplyOverhead = NetstringEncoder.maxHeaderSize + 2

    // MARK: Requests

    /// Reads one request payload (the bytes inside the netstring).
    public static func decodeRequest(_ payload: UnsafeRawBufferPointer) -> NetstringRequest {
        guard let base = payload.baseAddress, !payload.isEmpty else { return .malformed(.empty, extended: false) }
        // Pointer arithmetic, not `dropFirst()`: the generic slice costs about 45 instructions
        // per request (callgrind).
        let rest = UnsafeRawBufferPointer(start: base + 1, count: payload.count - 1)
        switch base.load(as: UInt8.self) {
        case UInt8(ascii: "!"):
            return splitTransform(rest, extended: true)
        case UInt8(ascii: "?"):
            return .query(rest)
        default:
            return splitTransform(payload, extended: false)
        }
    }

    @inline(__always)
    static func splitTransform(_ request: UnsafeRawBufferPointer, extended: Bool) -> NetstringRequest {
        guard let dot = firstDot(request), let base = request.baseAddress else {
            return .malformed(.noDot, extended: extended)
        }
        return .transform(
            name: UnsafeRawBufferPointer(start: base, count: dot),
            text: UnsafeRawBufferPointer(start: base + dot + 1, count: request.count - dot - 1), extended: extended)
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

    /// The most bytes a transform request's netstring adds to its name and text (header, `!`,
    /// `.` and trailer): what ``writeRequest(name:text:extended:to:)`` needs beyond them.
    public static let maxRequestOverhead = NetstringEncoder.maxHeaderSize + 3

    /// Writes a transform request as one netstring at `p`: `!name.text` (extended) or
    /// `name.text`. `p` must hold `name.count + text.count + maxRequestOverhead` bytes.
    ///
    /// - Returns: the request's length.
    @inline(__always)
    public static func writeRequest(
        name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, extended: Bool, to p: UnsafeMutableRawPointer
    ) -> Int {
        var offset = NetstringEncoder.writeHeader(length: (extended ? 1 : 0) + name.count + 1 + text.count, to: p)
        if extended {
            p.storeBytes(of: UInt8(ascii: "!"), toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        if let base = name.baseAddress, !name.isEmpty { (p + offset).copyMemory(from: base, byteCount: name.count) }
        offset += name.count
        p.storeBytes(of: UInt8(ascii: "."), toByteOffset: offset, as: UInt8.self)
        offset += 1
        if let base = text.baseAddress, !text.isEmpty { (p + offset).copyMemory(from: base, byteCount: text.count) }
        offset += text.count
        p.storeBytes(of: UInt8(ascii: ","), toByteOffset: offset, as: UInt8.self)
        return offset + 1
    }

    /// Appends a transform request as one netstring: `!name.text` (extended) or `name.text`.
    public static func appendRequest(name: String, text: String, extended: Bool, to out: inout [UInt8]) {
        let length = (extended ? 1 : 0) + name.utf8.count + 1 + text.utf8.count
        out.reserveCapacity(out.count + length + NetstringEncoder.maxHeaderSize + 1)
        NetstringEncoder.withHeader(length: length) { out.append(contentsOf: $0) }
        if extended { out.append(UInt8(ascii: "!")) }
        out.append(contentsOf: name.utf8)
        out.append(UInt8(ascii: "."))
        out.append(contentsOf: text.utf8)
        out.append(UInt8(ascii: ","))
    }

    /// Appends a query (`?list`) as one netstring.
    public static func appendQuery(_ query: String, to out: inout [UInt8]) {
        let payload = Array(("?" + query).utf8)
        payload.withUnsafeBytes { NetstringEncoder.append($0, to: &out) }
    }

    // MARK: Replies

    /// Appends a success reply: the bare text (original form) or `+` and the text (extended).
    public static func appendReply(_ text: UnsafeRawBufferPointer, extended: Bool, to out: inout [UInt8]) {
        out.reserveCapacity(out.count + text.count + maxReplyOverhead)
        NetstringEncoder.withHeader(length: text.count + (extended ? 1 : 0)) { out.append(contentsOf: $0) }
        if extended { out.append(UInt8(ascii: "+")) }
        out.append(contentsOf: text)
        out.append(UInt8(ascii: ","))
    }

    /// A success reply (see ``appendReply(_:extended:to:)``).
    public static func reply(_ text: [UInt8], extended: Bool) -> [UInt8] {
        var out: [UInt8] = []
        text.withUnsafeBytes { appendReply($0, extended: extended, to: &out) }
        return out
    }

    /// An extended-form error reply: the netstring of `-code message`.
    public static func errorReply(code: String, message: String) -> [UInt8] {
        let payload = Array("-\(code) \(message)".utf8)
        var out: [UInt8] = []
        payload.withUnsafeBytes { NetstringEncoder.append($0, to: &out) }
        return out
    }

    /// Writes a success reply around a text produced in place, for the server's hot path:
    /// the header goes at `p`, then `fill` writes the `textCount` bytes of text where they
    /// belong, then the trailer. `p` must hold `textCount + maxReplyOverhead` bytes.
    ///
    /// - Returns: the reply's length, or 0 when `fill` returned false (nothing is to be sent).
    @inline(__always)
    public static func writeReply(
        textCount: Int, extended: Bool, to p: UnsafeMutableRawPointer, fill: (UnsafeMutableRawBufferPointer) -> Bool
    ) -> Int {
        var offset = NetstringEncoder.writeHeader(length: textCount + (extended ? 1 : 0), to: p)
        if extended {
            p.storeBytes(of: UInt8(ascii: "+"), toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        guard fill(UnsafeMutableRawBufferPointer(start: p + offset, count: textCount)) else { return 0 }
        offset += textCount
        p.storeBytes(of: UInt8(ascii: ","), toByteOffset: offset, as: UInt8.self)
        return offset + 1
    }

    /// Reads one reply payload. An original-form reply is the bare text; an extended one starts
    /// with `+` (success) or `-` (typed error).
    public static func decodeReply(_ payload: UnsafeRawBufferPointer, extended: Bool) -> NetstringReply {
        guard extended else { return .success(payload) }
        guard let first = payload.first else { return .malformed(reason: "an empty reply (expected '+' or '-')") }
        let body = UnsafeRawBufferPointer(rebasing: payload.dropFirst())
        switch first {
        case UInt8(ascii: "+"):
            return .success(body)
        case UInt8(ascii: "-"):
            let (code, message) = splitError(body)
            return .failure(code: code, message: message)
        default:
            return .malformed(reason: "a reply that starts with neither '+' nor '-'")
        }
    }
}

/// Splits `code message` at the first space (spaces after it are dropped): how both wire
/// formats carry a typed error.
func splitError(_ bytes: UnsafeRawBufferPointer) -> (code: String, message: String) {
    let text = String(decoding: bytes, as: UTF8.self)
    let code = text.prefix { $0 != " " }
    let message = text.dropFirst(code.count).drop { $0 == " " }
    return (String(code), String(message))
}
