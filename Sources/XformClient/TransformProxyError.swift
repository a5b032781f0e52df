import XformCore

/// Where a transform server listens: a host (name or literal) and a TCP port.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address literal.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// Names an endpoint.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Hashes the port and the host's length only: a proxy has few endpoints, and hashing the
    /// host's characters was most of each pool lookup on every upstream call (callgrind). Equal
    /// endpoints still hash equal.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(port)
        hasher.combine(host.utf8.count)
    }
}

/// Why a ``TransformProxy`` call failed: every failure of its Deferreds is one of these.
///
/// The cases say what happened, so callers (and the `xform` tool) can react without parsing
/// text. ``isTransient`` says whether the proxy's default retry policy tries again:
///
/// | case | transient |
/// |---|---|
/// | `connectionRefused`, `connectFailed`, `connectionLost`, `shuttingDown` | yes |
/// | `timedOut` | once, unless ``TransformProxy/Configuration/timeoutRetries`` says otherwise |
/// | `closedWithoutReply` | once (see ``TransformProxy``) |
/// | `protocolError`, `unknownHost`, `unknownTransform`, `badRequest`, `tooLarge`, `invalidUTF8`, `transformFailed`, `notSupported`, `cancelled` | no |
///
/// A protocol error is not retried: a reply that is not what the protocol says (for example the
/// line port's `ERR ...` reaching a netstring client pointed at the wrong port) will not change
/// on the next attempt, and retrying only hides the mistake (issue 11).
public enum TransformProxyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing listens at the endpoint (`ECONNREFUSED`).
    case connectionRefused(Endpoint)
    /// The connection could not be made for another reason (connect timeout, unreachable
    /// network...): `reason` says which.
    case connectFailed(Endpoint, reason: String)
    /// The endpoint's host name could not be resolved.
    case unknownHost(Endpoint)
    /// The connection was closed or reset before a complete reply arrived.
    case connectionLost(Endpoint)
    /// No reply arrived within the per-call timeout.
    case timedOut(after: Duration)
    /// The server has no transform of that name (`unknown_transform`).
    case unknownTransform(name: String, message: String)
    /// The server refused the request as malformed (`bad_request`), or the proxy refused to
    /// send it (an invalid transform name).
    case badRequest(String)
    /// The request was over the server's size limit (`too_large`).
    case tooLarge(String)
    /// The text (or a reply) was not valid UTF-8 (`invalid_utf8`).
    case invalidUTF8(String)
    /// The transform itself failed on the server (`transform_failed`, or an unknown code).
    case transformFailed(String)
    /// The server is shutting down (`shutting_down`); another endpoint or a later try may work.
    case shuttingDown(Endpoint)
    /// The server broke the protocol: a malformed netstring or line, a reply of an unknown
    /// shape, or a close in the middle of a reply.
    case protocolError(Endpoint, detail: String)
    /// A server speaking the original protocol closed the connection without a reply: the
    /// request failed, and the original protocol cannot say why.
    case closedWithoutReply(Endpoint)
    /// The server cannot do this (for example `list` on an original-protocol server).
    case notSupported(String)
    /// The call was cancelled (its Deferred or its Task).
    case cancelled

    /// True for failures worth another attempt: refused, connect failures, lost connections,
    /// timeouts, a server shutting down, and a close without reply. The proxy bounds the retries
    /// of timeouts and closes without reply further (see ``TransformProxy``).
    public var isTransient: Bool {
        switch self {
        case .connectionRefused, .connectFailed, .connectionLost, .timedOut, .shuttingDown, .closedWithoutReply:
            return true
        case .protocolError, .unknownHost, .unknownTransform, .badRequest, .tooLarge, .invalidUTF8,
            .transformFailed, .notSupported, .cancelled:
            return false
        }
    }

    public var description: String {
        switch self {
        case .connectionRefused(let e): return "connection refused by \(e)"
        case .connectFailed(let e, let reason): return "cannot connect to \(e): \(reason)"
        case .unknownHost(let e): return "unknown host '\(e.host)'"
        case .connectionLost(let e): return "connection to \(e) lost before a complete reply"
        case .timedOut(let d): return "no reply within \(Self.format(d))"
        case .unknownTransform(_, let m): return "unknown transform: \(m)"
        case .badRequest(let m): return "bad request: \(m)"
        case .tooLarge(let m): return "request too large: \(m)"
        case .invalidUTF8(let m): return "invalid UTF-8: \(m)"
        case .transformFailed(let m): return "transform failed: \(m)"
        case .shuttingDown(let e): return "server \(e) is shutting down"
        case .protocolError(let e, let d): return "protocol error from \(e): \(d)"
        case .closedWithoutReply(let e):
            return "server \(e) closed the connection without a reply (original protocol: failed, cause unknown)"
        case .notSupported(let m): return "not supported: \(m)"
        case .cancelled: return "the call was cancelled"
        }
    }

    /// `1.5s`, `250ms`: a duration the way people write it.
    public static func format(_ d: Duration) -> String {
        let c = d.components
        let ms = c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        if ms < 1000 { return "\(ms)ms" }
        return "\(Double(ms) / 1000)s"
    }

    /// Maps a typed error reply (`-code message` or `ERR code message`) to its case.
    /// Unknown codes are `transformFailed`, as protocol-spec/netstring.md requires.
    static func fromWire(code: String, message: String, request: RequestKind, endpoint: Endpoint)
        -> TransformProxyError
    {
        switch code {
        case "unknown_transform":
            if case .transform(let r) = request { return .unknownTransform(name: r.name, message: message) }
            return .unknownTransform(name: "", message: message)
        case "bad_request": return .badRequest(message)
        case "too_large": return .tooLarge(message)
        case "invalid_utf8": return .invalidUTF8(message)
        case "shutting_down": return .shuttingDown(endpoint)
        default: return .transformFailed(code == "transform_failed" ? message : "\(code) \(message)")
        }
    }

    /// Any failure as a proxy error: cancellation and Deferred timeouts are mapped, a
    /// ``RetryExhaustedError`` gives its last failure; anything else is a `transformFailed`.
    public static func from(_ error: any Error) -> TransformProxyError {
        switch error {
        case let e as TransformProxyError: return e
        case is CancelledError: return .cancelled
        case let e as TimeoutError: return .timedOut(after: e.timeout)
        case let e as RetryExhaustedError: return from(e.lastFailure)
        case let e as FirstError: return from(e.underlying)
        default: return .transformFailed(String(describing: error))
        }
    }
}

/// What one request asks for.
enum RequestKind: Equatable {
    /// Apply a transform to a text.
    case transform(TransformRequest)
    /// List the transforms.
    case list
    /// Ask for the server's limits (`?limits`, protocol-spec/netstring.md section 3.1).
    case limits
}

/// A transform request as bytes: the name followed by the text, in one array (the transform
/// proxy's cache key, shared rather than copied), so a call goes out without a `String`.
struct TransformRequest: Equatable {
    /// The name's bytes, then the text's.
    let bytes: [UInt8]
    /// How many of ``bytes`` are the name.
    let nameCount: Int

    init(bytes: [UInt8], nameCount: Int) {
        self.bytes = bytes
        self.nameCount = nameCount
    }

    init(name: String, text: String) {
        self.init(bytes: Array(name.utf8) + Array(text.utf8), nameCount: name.utf8.count)
    }

    /// The name (for error messages).
    var name: String { String(decoding: bytes[..<nameCount], as: UTF8.self) }
    /// The text's length in bytes.
    var textCount: Int { bytes.count - nameCount }

    /// Calls `body` with the name's and the text's bytes.
    @inline(__always)
    func withBuffers<R>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> R) -> R {
        bytes.withUnsafeBytes { all in
            body(UnsafeRawBufferPointer(rebasing: all[..<nameCount]), UnsafeRawBufferPointer(rebasing: all[nameCount...]))
        }
    }
}
