import XformCore

// A strict, bounded HTTP/1.0 and HTTP/1.1 request decoder (RFC 9112), for the HTTP port
// (protocol-spec/http.md). Only what a metrics, health and transform endpoint needs: a request
// head of at most 8 KiB, and a body framed by Content-Length. No chunked bodies, no obs-fold,
// no leniency: anything malformed is an error that maps to a status code and closes the
// connection.

/// The HTTP versions the decoder accepts.
public enum HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    /// HTTP/1.0: the connection closes after each response unless the client asks to keep it.
    case http10
    /// HTTP/1.1: persistent unless the client says `Connection: close`.
    case http11

    public var description: String { self == .http10 ? "HTTP/1.0" : "HTTP/1.1" }
}

/// One header field as received: the name's case is kept, the value is trimmed of spaces and tabs.
public struct HTTPHeader: Sendable, Equatable {
    /// The field name (a token), compared case-insensitively.
    public var name: String
    /// The field value, without leading or trailing whitespace.
    public var value: String

    /// Creates a header field.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One complete request: its head and its Content-Length body.
public struct HTTPRequest: Sendable, Equatable {
    /// The method token, case-sensitive (`GET`, `POST`, ...).
    public var method: String
    /// The request target as sent (origin form, e.g. `/transform/upper?x=1`).
    public var target: String
    /// The protocol version of the request line.
    public var version: HTTPVersion
    /// The header fields, in the order received.
    public var headers: [HTTPHeader]
    /// The body (empty when the request has none).
    public var body: [UInt8]
    /// True when the connection stays open after the response: HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive` (RFC 9112 section 9.3).
    public var keepAlive: Bool

    /// Creates a request.
    public init(
        method: String, target: String, version: HTTPVersion = .http11, headers: [HTTPHeader] = [],
        body: [UInt8] = [], keepAlive: Bool = true
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The target's path: everything before a `?`.
    public var path: Substring { target.prefix { $0 != "?" } }

    /// The value of the first header field called `name` (compared case-insensitively), or nil.
    public func header(_ name: String) -> String? {
        headers.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }
}

/// Why a request was refused. Each case has the status code the server answers before it closes
/// the connection (``status``).
public enum HTTPRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Malformed request line or header field (400). The reason is for people.
    case badRequest(String)
    /// A body sent with `Transfer-Encoding: chunked` (411: send a Content-Length instead).
    case lengthRequired
    /// A transfer coding other than chunked (501).
    case notImplemented(String)
    /// The declared Content-Length is over the maximum body size (413).
    case payloadTooLarge(declared: String)
    /// The request line alone is longer than the head limit (414).
    case uriTooLong
    /// The request line and header fields are longer than the head limit, or there are too
    /// many header fields (431).
    case headersTooLarge
    /// An `Expect` other than `100-continue` (417).
    case expectationFailed
    /// A well-formed `HTTP/x.y` version other than 1.0 and 1.1 (505).
    case versionNotSupported
    /// The input ended inside a request (the connection closed mid-request; no response).
    case incompleteRequest

    /// The response status code for this error.
    public var status: Int {
        switch self {
        case .badRequest: return 400
        case .lengthRequired: return 411
        case .notImplemented: return 501
        case .payloadTooLarge: return 413
        case .uriTooLong: return 414
        case .headersTooLarge: return 431
        case .expectationFailed: return 417
        case .versionNotSupported: return 505
        case .incompleteRequest: return 400
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let why): return "bad request: \(why)"
        case .lengthRequired: return "chunked bodies are not supported; send a Content-Length"
        case .notImplemented(let coding): return "transfer coding not implemented: \(coding)"
        case .payloadTooLarge(let declared): return "body too large (Content-Length: \(declared))"
        case .uriTooLong: return "request line too long"
        case .headersTooLarge: return "request header fields too large"
        case .expectationFailed: return "only Expect: 100-continue is supported"
        case .versionNotSupported: return "HTTP version not supported"
        case .incompleteRequest: return "input ended inside a request"
        }
    }
}

/// The limits of ``HTTPRequestDecoder``.
public struct HTTPRequestLimits: Sendable, Equatable {
    /// The longest request head (request line, header fields, their CRLFs and the empty line),
    /// in bytes. 8 KiB by default.
    public var maxHeadBytes: Int
    /// The most header fields in one request. 100 by default.
    public var maxHeaderCount: Int
    /// The longest body, in bytes (the server passes its `--max-request-bytes`).
    public var maxBodyBytes: Int

    /// Creates limits.
    public init(maxHeadBytes: Int = 8192, maxHeaderCount: Int = 100, maxBodyBytes: Int = 99_999) {
        precondition(maxHeadBytes >= 16 && maxHeaderCount >= 1 && maxBodyBytes >= 0, "HTTP limits too small")
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

private let cr = UInt8(ascii: "\r")
private let lf = UInt8(ascii: "\n")
private let space = UInt8(ascii: " ")
private let tab = UInt8(ascii: "\t")
private let colon = UInt8(ascii: ":")

/// RFC 9110 `tchar`: the characters of a token (method, header name).
@inline(__always)
private func isTokenChar(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

/// True if `a` and `b` are equal ignoring ASCII case.
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    for (p, q) in zip(x, y) where p != q {
        let lp = p &- UInt8(ascii: "A") < 26 ? p | 0x20 : p
        let lq = q &- UInt8(ascii: "A") < 26 ? q | 0x20 : q
        if lp != lq { return false }
    }
    return true
}

/// The parsed head of a request whose body is still being read.
struct HTTPRequestHead {
    var method: String
    var target: String
    var version: HTTPVersion
    var headers: [HTTPHeader]
    var bodyLength: Int
    var keepAlive: Bool
    var expectsContinue: Bool
}

/// The request state machine: find the end of the head (CRLF CRLF) within the limit, parse and
/// validate it, then wait for Content-Length body bytes. Frames are body ranges; the head of
/// the last frame is kept in ``completedHead``.
struct HTTPRequestParser: InPlaceFrameParser {
    let limits: HTTPRequestLimits
    /// Bytes after the current head's start known to hold no CRLF CRLF.
    private var scanned = 0
    /// The head whose body is awaited, once parsed.
    private(set) var head: HTTPRequestHead?
    /// The head of the frame the last step returned.
    private(set) var completedHead: HTTPRequestHead?

    init(limits: HTTPRequestLimits) { self.limits = limits }

    var isMidFrame: Bool { head != nil }

    /// Requests are not resynchronised after an error: the connection closes.
    mutating func resync() {}

    /// Drops the parsed head's `Expect: 100-continue` once it has been answered.
    mutating func clearExpectation() { head?.expectsContinue = false }

    mutating func step(_ input: UnsafeRawBufferPointer, from start: Int) -> ParseStep<HTTPRequestError> {
        var start = start
        let end = input.count
        if let h = head {
            guard end - start >= h.bodyLength else { return .needMore(keepFrom: start) }
            head = nil
            completedHead = h
            return .frame(start..<start + h.bodyLength, next: start + h.bodyLength)
        }
        // RFC 9112 section 2.2: ignore empty lines before the request line (consumed, never buffered).
        while scanned == 0, end - start >= 2, input[start] == cr, input[start + 1] == lf { start += 2 }
        if scanned == 0, end - start == 1, input[start] == cr { return .needMore(keepFrom: start) }
        // Look for CRLF CRLF, restarting 3 bytes back in case it straddles two feeds.
        var i = max(start, start + scanned - 3)
        var headEnd: Int?
        while i + 3 < end {
            if input[i + 3] != lf {
                i += input[i + 3] == cr ? 1 : 4
                continue
            }
            if input[i] == cr, input[i + 1] == lf, input[i + 2] == cr {
                headEnd = i + 4
                break
            }
            i += 1
        }
        guard let headEnd else {
            scanned = end - start
            if scanned > limits.maxHeadBytes { return .failed(tooLarge(input, start, end), at: start) }
            return .needMore(keepFrom: start)
        }
        scanned = 0
        if headEnd - start > limits.maxHeadBytes { return .failed(tooLarge(input, start, headEnd), at: start) }
        switch parseHead(UnsafeRawBufferPointer(rebasing: input[start..<headEnd - 2])) {
        case .failure(let e):
            return .failed(e, at: start)
        case .success(let h):
            if h.bodyLength == 0 || end - headEnd >= h.bodyLength {
                completedHead = h
                return .frame(headEnd..<headEnd + h.bodyLength, next: headEnd + h.bodyLength)
            }
            head = h
            return .needMore(keepFrom: headEnd)
        }
    }

    /// 414 when no request line ended within the limit, else 431.
    private func tooLarge(_ input: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> HTTPRequestError {
        let stop = min(end, start + limits.maxHeadBytes)
        var i = start
        while i + 1 < stop {
            if input[i] == cr && input[i + 1] == lf { return .headersTooLarge }
            i += 1
        }
        return .uriTooLong
    }

    /// Parses `head`: the request line and header lines, each ending in CRLF.
    private func parseHead(_ head: UnsafeRawBufferPointer) -> Result<HTTPRequestHead, HTTPRequestError> {
        var lines: [Range<Int>] = []
        var lineStart = 0
        var i = 0
        while i < head.count {
            let b = head[i]
            if b == cr {
                guard i + 1 < head.count, head[i + 1] == lf else { return .failure(.badRequest("bare CR")) }
                lines.append(lineStart..<i)
                i += 2
                lineStart = i
                continue
            }
            if b == lf { return .failure(.badRequest("bare LF")) }
            i += 1
        }
        guard let requestLine = lines.first else { return .failure(.badRequest("no request line")) }
        if lines.count - 1 > limits.maxHeaderCount { return .failure(.headersTooLarge) }

        // request-line = method SP request-target SP HTTP-version
        let rl = UnsafeRawBufferPointer(rebasing: head[requestLine])
        guard let sp1 = rl.firstIndex(of: space), sp1 > 0 else { return .failure(.badRequest("malformed request line")) }
        guard let sp2 = rl[(sp1 + 1)...].firstIndex(of: space), sp2 > sp1 + 1 else {
            return .failure(.badRequest("malformed request line"))
        }
        let method = rl[0..<sp1], target = rl[(sp1 + 1)..<sp2], versionBytes = rl[(sp2 + 1)...]
        guard method.allSatisfy(isTokenChar) else { return .failure(.badRequest("malformed method")) }
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .failure(.badRequest("malformed target")) }
        let version: HTTPVersion
        switch Array(versionBytes) {
        case Array("HTTP/1.1".utf8): version = .http11
        case Array("HTTP/1.0".utf8): version = .http10
        case let v
        where v.count == 8 && v.starts(with: "HTTP/".utf8) && v[5] &- UInt8(ascii: "0") < 10 && v[6] == UInt8(ascii: ".")
            && v[7] &- UInt8(ascii: "0") < 10:
            return .failure(.versionNotSupported)
        default:
            return .failure(.badRequest("malformed HTTP version"))
        }

        var headers: [HTTPHeader] = []
        headers.reserveCapacity(lines.count - 1)
        for r in lines.dropFirst() {
            let line = UnsafeRawBufferPointer(rebasing: head[r])
            if let first = line.first, first == space || first == tab {
                return .failure(.badRequest("obsolete line folding"))
            }
            guard let c = line.firstIndex(of: colon), c > 0 else { return .failure(.badRequest("malformed header field")) }
            guard line[0..<c].allSatisfy(isTokenChar) else { return .failure(.badRequest("malformed header name")) }
            var vs = c + 1, ve = line.count
            while vs < ve, line[vs] == space || line[vs] == tab { vs += 1 }
            while ve > vs, line[ve - 1] == space || line[ve - 1] == tab { ve -= 1 }
            // field-vchar / SP / HTAB; obs-text (0x80-0xFF) is kept as bytes.
            guard line[vs..<ve].allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == tab }) else {
                return .failure(.badRequest("invalid character in header value"))
            }
            headers.append(
                HTTPHeader(
                    name: String(decoding: line[0..<c], as: UTF8.self),
                    value: String(decoding: line[vs..<ve], as: UTF8.self)))
        }
        return interpret(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
            version: version, headers: headers)
    }

    /// Applies the message-framing and connection rules to the parsed fields.
    private func interpret(method: String, target: String, version: HTTPVersion, headers: [HTTPHeader])
        -> Result<HTTPRequestHead, HTTPRequestError>
    {
        var contentLength: String?
        var transferEncoding: String?
        var hosts = 0
        var close = false, keepAliveToken = false
        var expectsContinue = false
        for h in headers {
            if asciiCaseInsensitiveEquals(h.name, "content-length") {
                if let seen = contentLength, seen != h.value {
                    return .failure(.badRequest("conflicting Content-Length fields"))
                }
                contentLength = h.value
            } else if asciiCaseInsensitiveEquals(h.name, "transfer-encoding") {
                transferEncoding = (transferEncoding.map { $0 + "," } ?? "") + h.value
            } else if asciiCaseInsensitiveEquals(h.name, "host") {
                hosts += 1
            } else if asciiCaseInsensitiveEquals(h.name, "connection") {
                for token in h.value.split(separator: ",") {
                    let t = String(token.trimmingASCIIWhitespace)
                    if asciiCaseInsensitiveEquals(t, "close") { close = true }
                    if asciiCaseInsensitiveEquals(t, "keep-alive") { keepAliveToken = true }
                }
            } else if asciiCaseInsensitiveEquals(h.name, "expect") {
                guard asciiCaseInsensitiveEquals(h.value, "100-continue") else { return .failure(.expectationFailed) }
                expectsContinue = version == .http11
            }
        }
        if version == .http11 && hosts != 1 {
            return .failure(.badRequest(hosts == 0 ? "missing Host field" : "more than one Host field"))
        }
        if hosts > 1 { return .failure(.badRequest("more than one Host field")) }
        if let te = transferEncoding {
            // A body framed two ways is a smuggling attempt (RFC 9112 section 6.1).
            if contentLength != nil { return .failure(.badRequest("both Transfer-Encoding and Content-Length")) }
            let last = te.split(separator: ",").last.map { String($0.trimmingASCIIWhitespace) } ?? ""
            return .failure(asciiCaseInsensitiveEquals(last, "chunked") ? .lengthRequired : .notImplemented(te))
        }
        var bodyLength = 0
        if let cl = contentLength {
            guard !cl.isEmpty, cl.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else {
                return .failure(.badRequest("malformed Content-Length"))
            }
            // Compare as digits first, so a huge value is refused without overflowing.
            let digits = cl.drop { $0 == "0" }
            guard digits.count <= String(limits.maxBodyBytes).count, let n = Int(digits.isEmpty ? "0" : digits),
                n <= limits.maxBodyBytes
            else { return .failure(.payloadTooLarge(declared: cl)) }
            bodyLength = n
        }
        let keepAlive = version == .http11 ? !close : keepAliveToken && !close
        return .success(
            HTTPRequestHead(
                method: method, target: target, version: version, headers: headers, bodyLength: bodyLength,
                keepAlive: keepAlive, expectsContinue: expectsContinue && bodyLength > 0))
    }
}

extension Substring {
    /// The substring without leading and trailing spaces and tabs.
    fileprivate var trimmingASCIIWhitespace: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}

/// A pure HTTP/1.x request decoder: bytes in, whole requests out (single-step, like the netstring
/// and line decoders), for the HTTP port (protocol-spec/http.md).
///
/// Strict and bounded: the request line and header fields must fit in
/// ``HTTPRequestLimits/maxHeadBytes`` (8 KiB) and at most ``HTTPRequestLimits/maxHeaderCount``
/// fields; lines end in CRLF (a bare CR or LF is an error); header names are matched
/// case-insensitively; obsolete line folding is refused; HTTP/1.1 requests need exactly one
/// `Host`. Bodies are framed only by `Content-Length` (at most
/// ``HTTPRequestLimits/maxBodyBytes``, refused as soon as the head is read); chunked requests
/// get 411. Several requests in one buffer (pipelining) come out one by one, in order.
///
/// After an error ``next()`` throws it again on every call: the connection is answered with
/// ``HTTPRequestError/status`` and closed.
public struct HTTPRequestDecoder: FrameDecoder {
    /// One request.
    public typealias Frame = HTTPRequest

    private var input: BufferedParser<HTTPRequestParser>
    private var error: HTTPRequestError?

    /// Creates a decoder with `limits`.
    public init(limits: HTTPRequestLimits = HTTPRequestLimits()) {
        input = BufferedParser(HTTPRequestParser(limits: limits))
    }

    /// The decoder's limits.
    public var limits: HTTPRequestLimits { input.parser.limits }

    /// Appends bytes to the input.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        input.feed(bytes)
    }

    /// Returns the next complete request, or nil when more bytes are needed.
    ///
    /// - Throws: ``HTTPRequestError`` on a malformed or over-limit request, and the same error
    ///   on every later call.
    public mutating func next() throws -> HTTPRequest? {
        if let error { throw error }
        switch input.next() {
        case .frame(let body):
            let h = input.parser.completedHead!
            return HTTPRequest(
                method: h.method, target: h.target, version: h.version, headers: h.headers, body: body,
                keepAlive: h.keepAlive)
        case .needMore:
            return nil
        case .failed(let e, let at):
            input.readIndex = at
            error = e
            throw e
        }
    }

    /// True when a request's head has been read, it carries `Expect: 100-continue`, and its body
    /// has not all arrived: the server should send `100 Continue` (``HTTPResponseEncoder/continueResponse``)
    /// and then call ``continueSent()``.
    public var awaitsContinue: Bool { input.parser.head?.expectsContinue ?? false }

    /// Records that `100 Continue` was sent for the request being read.
    public mutating func continueSent() { input.parser.clearExpectation() }

    /// Bytes fed and not yet consumed (a partial request, or requests not yet taken).
    public var bufferedByteCount: Int { input.leftover }

    /// True when no byte of an unfinished request is buffered (empty lines between requests aside).
    public var isIdle: Bool { !input.parser.isMidFrame && input.leftover == 0 }

    /// Called at end of input.
    ///
    /// - Throws: ``HTTPRequestError/incompleteRequest`` when part of a request is left over.
    public mutating func finish() throws {
        if let error { throw error }
        if input.parser.isMidFrame || input.leftover > 0 { throw HTTPRequestError.incompleteRequest }
    }
}
