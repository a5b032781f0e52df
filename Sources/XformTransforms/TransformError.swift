/// Why a transform request produced no text.
///
/// These are the service's failures; each protocol maps them to its own wire errors (and the
/// original netstring protocol maps all of them to "close without a reply").
public enum TransformError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The name is well formed but no transform of that name is registered.
    case unknownTransform(String)
    /// The name breaks the name grammar (see ``TransformName``); it is not echoed back.
    case invalidName
    /// The text is not well-formed UTF-8.
    case invalidUTF8
    /// The text is longer than ``TransformContext/maximumInputBytes``.
    case tooLarge
    /// The transform itself failed; the reason is for people, not for parsing.
    case failed(String)
    /// The upstream servers a proxy backend forwards to could not answer; the message says why.
    case upstreamUnavailable(String)

    public var description: String {
        switch self {
        case .unknownTransform(let name): return "no such transform: \(name)"
        case .invalidName: return "invalid transform name"
        case .invalidUTF8: return "text is not valid UTF-8"
        case .tooLarge: return "text is too large"
        case .failed(let reason): return "transform failed: \(reason)"
        case .upstreamUnavailable(let why): return "upstream unavailable: \(why)"
        }
    }
}

/// Why ``TransformService/register(_:)`` refused a transform.
public enum TransformRegistrationError: Error, Equatable, Sendable {
    /// The name breaks the name grammar.
    case invalidName(String)
    /// A transform of this name is already registered.
    case duplicateName(String)
}

/// The grammar of transform names: `[a-z][a-z0-9_-]{0,63}`, ASCII only, compared byte for byte.
///
/// Names are matched exactly: no case folding, no trimming, no Unicode normalisation. A name
/// that breaks the grammar can never be registered, so it can never reach anything.
public enum TransformName {
    /// The longest valid name, in bytes.
    public static let maximumLength = 64

    /// True if `name` is a valid transform name.
    public static func isValid(_ name: UnsafeRawBufferPointer) -> Bool {
        guard name.count >= 1, name.count <= maximumLength else { return false }
        guard name[0] &- UInt8(ascii: "a") < 26 else { return false }
        for b in name.dropFirst() {
            let ok =
                b &- UInt8(ascii: "a") < 26 || b &- UInt8(ascii: "0") < 10 || b == UInt8(ascii: "_")
                || b == UInt8(ascii: "-")
            if !ok { return false }
        }
        return true
    }

    /// True if `name` is a valid transform name.
    public static func isValid(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { isValid(UnsafeRawBufferPointer($0)) }
    }
}
