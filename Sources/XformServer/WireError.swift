import XformTransforms

/// A typed error as both wire protocols carry it: a stable code for programs and a message for
/// people (see protocol-spec/netstring.md, "Error codes").
public struct WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The stable code, e.g. `unknown_transform`.
    public let code: String
    /// A human-readable explanation; never parsed.
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code) \(message)" }

    /// No transform of that name is registered (a name outside the grammar is a `bad_request`).
    public static func unknownTransform(_ name: String?) -> WireError {
        WireError(
            code: "unknown_transform",
            message: name.map { "no transform named '\($0)'" } ?? "the name is not a valid transform name")
    }
    /// The request is malformed.
    public static func badRequest(_ why: String) -> WireError { WireError(code: "bad_request", message: why) }
    /// The request exceeds a limit.
    public static func tooLarge(_ why: String) -> WireError { WireError(code: "too_large", message: why) }
    /// The text is not UTF-8.
    public static let invalidUTF8 = WireError(code: "invalid_utf8", message: "the text is not valid UTF-8")
    /// The transform failed.
    public static func transformFailed(_ why: String) -> WireError {
        WireError(code: "transform_failed", message: why)
    }
    /// The upstream servers a proxy forwards to could not answer.
    public static func upstreamUnavailable(_ why: String) -> WireError {
        WireError(code: "upstream_unavailable", message: why)
    }
    /// The server is stopping.
    public static let shuttingDown = WireError(code: "shutting_down", message: "the server is shutting down")

    /// Maps a service failure to its wire error.
    public init(_ error: TransformError, maxBytes: Int) {
        switch error {
        case .unknownTransform(let name): self = .unknownTransform(name)
        case .invalidName: self = .badRequest("the name is not a valid transform name")
        case .invalidUTF8: self = .invalidUTF8
        case .tooLarge: self = .tooLarge("the text is longer than \(maxBytes) bytes")
        case .failed(let why): self = .transformFailed(why)
        case .upstreamUnavailable(let why): self = .upstreamUnavailable(why)
        }
    }

    /// Maps any failure of a pending transform to its wire error.
    static func from(_ error: any Error, maxBytes: Int, shuttingDown: Bool) -> WireError {
        if let e = error as? TransformError { return WireError(e, maxBytes: maxBytes) }
        if let e = error as? WireError { return e }
        if shuttingDown { return .shuttingDown }
        return .transformFailed(String(describing: error))
    }
}
