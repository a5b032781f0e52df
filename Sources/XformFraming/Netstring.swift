import XformCore

/// Why a stream of netstrings could not be parsed (Twisted's `NetstringParseError`).
///
/// After any of these the stream is out of step: a netstring receiver closes the connection and
/// a decoder stays broken.
public enum NetstringError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The length prefix is not `0` or a decimal number without leading zeros (for example
    /// `abc`, `:aaa,` or `01:a,`).
    case badLength
    /// The length prefix has more digits than the maximum length, so it is refused before it is
    /// converted to a number at all.
    case lengthPrefixTooLong
    /// The declared length is over the maximum. `declared` is the length, or the part of it read
    /// so far, which is already over the maximum: the rest of the prefix is not waited for.
    case tooLong(declared: Int)
    /// A digit run was followed by something other than a digit or `:` (for example `3aaa,`).
    case missingColon
    /// The payload was not followed by `,` (more data than declared, for example `2:aaa,`).
    case missingComma
    /// The input ended inside a netstring; `buffered` bytes of it had arrived.
    case incompleteFrame(buffered: Int)

    public var description: String {
        switch self {
        case .badLength: return "netstring length is not a decimal number without leading zeros"
        case .lengthPrefixTooLong: return "netstring length prefix has too many digits"
        case .tooLong(let n): return "netstring length \(n) is over the maximum"
        case .missingColon: return "netstring length is not followed by ':'"
        case .missingComma: return "netstring payload is not followed by ','"
        case .incompleteFrame(let n): return "input ended inside a netstring (\(n) bytes buffered)"
        }
    }
}

/// Twisted's `NetstringReceiver.MAX_LENGTH`: the default largest payload, in bytes.
public let defaultNetstringMaxLength = 99_999

/// The largest maximum a netstring parser accepts: 18 decimal digits, so that no length prefix
/// it lets through can overflow an `Int`.
public let netstringMaxLengthLimit = 999_999_999_999_999_999

private let colon = UInt8(ascii: ":")
private let comma = UInt8(ascii: ",")
private let zero = UInt8(ascii: "0")

/// The netstring state machine: `(0|[1-9][0-9]*):` then the payload then `,`.
struct NetstringParser: InPlaceFrameParser {
    let maxLength: Int
    /// The length read so far, or the whole length once `inPayload` is set.
    private var length = 0
    // The small fields in bytes, together: the parser lives in every connection (memory per
    // idle connection, issue 8).
    /// How many decimal digits `maxLength` has (at most 18): a longer prefix is refused unread.
    let maxDigits: UInt8
    private var digits: UInt8 = 0
    private var inPayload = false

    init(maxLength: Int) {
        precondition(
            maxLength >= 0 && maxLength <= netstringMaxLengthLimit,
            "netstring maxLength must be in 0...\(netstringMaxLengthLimit)")
        self.maxLength = maxLength
        var d = 1
        var m = maxLength
        while m >= 10 {
            m /= 10
            d += 1
        }
        self.maxDigits = UInt8(d)
    }

    var isMidFrame: Bool { inPayload || digits > 0 }

    /// The payload length once the prefix has been read, else nil.
    var declaredLength: Int? { inPayload ? length : nil }

    /// The payload and its comma, once the prefix has been read.
    var partialFrameSize: Int? { inPayload ? length + 1 : nil }

    mutating func resync() {}

    mutating func step(_ input: UnsafeRawBufferPointer, from start: Int) -> ParseStep<NetstringError> {
        var i = start
        let end = input.count
        if !inPayload {
            var value = length
            var n = Int(digits)
            let maxDigits = Int(maxDigits)
            while true {
                if i == end {
                    length = value
                    digits = UInt8(truncatingIfNeeded: n)
                    return .needMore(keepFrom: end)
                }
                let b = input[i]
                let d = b &- zero
                if d < 10 {
                    // "0" may only stand alone.
                    if n > 0 && value == 0 { return .failed(.badLength, at: start) }
                    // Refuse an over-long prefix before it is turned into a number.
                    if n == maxDigits { return .failed(.lengthPrefixTooLong, at: start) }
                    value = value &* 10 &+ Int(d)
                    n += 1
                    if value > maxLength { return .failed(.tooLong(declared: value), at: start) }
                    i += 1
                } else if b == colon {
                    if n == 0 { return .failed(.badLength, at: start) }
                    i += 1
                    length = value
                    digits = 0
                    inPayload = true
                    break
                } else {
                    return .failed(n == 0 ? .badLength : .missingColon, at: start)
                }
            }
        }
        // The payload and its comma.
        if end - i > length {
            let payloadEnd = i + length
            if input[payloadEnd] != comma { return .failed(.missingComma, at: i) }
            inPayload = false
            length = 0
            return .frame(i..<payloadEnd, next: payloadEnd + 1)
        }
        return .needMore(keepFrom: i)
    }
}

/// A pure netstring decoder (Twisted's `NetstringReceiver` framing, without the connection).
///
/// Accepts `<length>:<payload>,` where the length is `0` or a decimal number without leading
/// zeros. A prefix with more digits than ``maxLength`` is refused before conversion, and a
/// declared length over ``maxLength`` is refused as soon as the digits read prove it, so a peer
/// cannot make the decoder allocate or wait for a huge payload. After an error the decoder is
/// broken: ``next()`` throws that error again.
///
/// Input is kept in one buffer read by index and compacted only when most of it is consumed, so
/// input fed a byte at a time costs amortised O(1) per byte.
public struct NetstringDecoder: FrameDecoder {
    /// One netstring's payload.
    public typealias Frame = [UInt8]

    /// The largest payload accepted, in bytes.
    public var maxLength: Int { input.parser.maxLength }

    private var input: BufferedParser<NetstringParser>
    private var error: NetstringError?

    /// Creates a decoder accepting payloads up to `maxLength` bytes (Twisted's 99,999 by default).
    public init(maxLength: Int = defaultNetstringMaxLength) {
        input = BufferedParser(NetstringParser(maxLength: maxLength))
    }

    /// Appends bytes to the input. Ignored once the decoder is broken.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard error == nil else { return }
        input.feed(bytes)
    }

    /// Returns the next payload, or nil when more bytes are needed.
    ///
    /// - Throws: ``NetstringError`` on malformed input, and the same error on every later call.
    public mutating func next() throws -> [UInt8]? {
        if let error { throw error }
        switch input.next() {
        case .frame(let payload): return payload
        case .needMore: return nil
        case .failed(let e, _):
            error = e
            input.removeAll()
            throw e
        }
    }

    /// Checks that the input ended between netstrings. Call after ``next()`` returned nil.
    ///
    /// - Throws: ``NetstringError/incompleteFrame(buffered:)`` when part of a netstring is left
    ///   over, or the error that broke the decoder.
    public mutating func finish() throws {
        if let error { throw error }
        if input.leftover > 0 || input.parser.isMidFrame {
            throw NetstringError.incompleteFrame(buffered: input.leftover)
        }
    }
}

/// Builds netstrings (Twisted's `NetstringReceiver.sendString` framing).
public enum NetstringEncoder {
    /// The most bytes a netstring header (`<digits>:`) can take.
    public static let maxHeaderSize = 21

    /// Writes the header `<length>:` at `p` (which must hold ``maxHeaderSize`` bytes).
    ///
    /// - Returns: how many bytes were written.
    @inline(__always)
    public static func writeHeader(length: Int, to p: UnsafeMutableRawPointer) -> Int {
        precondition(length >= 0, "netstring length must not be negative")
        var digits = 1
        var v = length
        while v >= 10 {
            v /= 10
            digits += 1
        }
        v = length
        var i = digits - 1
        while i >= 0 {
            p.storeBytes(of: zero &+ UInt8(truncatingIfNeeded: v % 10), toByteOffset: i, as: UInt8.self)
            v /= 10
            i -= 1
        }
        p.storeBytes(of: colon, toByteOffset: digits, as: UInt8.self)
        return digits + 1
    }

    /// Calls `body` with the header `<length>:` for a payload of `length` bytes, written into a
    /// stack buffer (no heap allocation). The bytes are valid only during the call.
    public static func withHeader<R>(length: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: maxHeaderSize, alignment: 1) { buf in
            let n = writeHeader(length: length, to: buf.baseAddress!)
            return try body(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
    }

    /// Appends `payload` as one netstring to `output`.
    public static func append(_ payload: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        withHeader(length: payload.count) { output.append(contentsOf: $0) }
        output.append(contentsOf: payload)
        output.append(comma)
    }

    /// Returns `payload` as one netstring.
    public static func encode(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 8)
        payload.withUnsafeBytes { append($0, to: &out) }
        return out
    }

    /// Writes `payload` as one netstring to `transport`: header, payload and comma, with no
    /// intermediate copy (the transport copies into its own buffer).
    public static func write(_ payload: UnsafeRawBufferPointer, to transport: any Transport) {
        withHeader(length: payload.count) { transport.write($0) }
        transport.write(payload)
        withUnsafeBytes(of: comma) { transport.write($0) }
    }
}

extension Transport {
    /// Writes `payload` as one netstring, without building it in an intermediate buffer.
    public func writeNetstring(_ payload: UnsafeRawBufferPointer) {
        NetstringEncoder.write(payload, to: self)
    }

    /// Writes `payload` as one netstring.
    public func writeNetstring(_ payload: [UInt8]) {
        payload.withUnsafeBytes { NetstringEncoder.write($0, to: self) }
    }
}
