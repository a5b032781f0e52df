import Glibc

/// A value that did not parse; `reason` (if any) is shown after the standard
/// `The value 'x' is invalid for '--opt <opt>'` message.
public struct ValueParseError: Error, Equatable, Sendable {
    /// Extra explanation, or `nil` when the standard message says enough.
    public var reason: String?

    /// Makes a parse error with an optional explanation.
    public init(_ reason: String?) { self.reason = reason }
}

/// Parsers for the value types daemons take on their command lines.
public enum ValueParsers {
    /// Parses a decimal integer within `range`.
    ///
    /// - Throws: ``ValueParseError`` with no reason for non-numbers, and with the bounds for
    ///   numbers out of range.
    public static func integer(_ text: String, in range: ClosedRange<Int> = Int.min...Int.max) throws(ValueParseError) -> Int {
        guard let n = Int(text) else { throw ValueParseError(nil) }
        guard range.contains(n) else {
            throw ValueParseError("must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return n
    }

    /// Parses a non-negative duration: a decimal number of seconds (`30`, `1.5`) or a number with
    /// a unit: `ms`, `s`, `m` or `h` (`250ms`, `2s`, `1m`, `1.5h`). Exact to the nanosecond; no
    /// floating point is involved.
    ///
    /// - Throws: ``ValueParseError`` describing the accepted forms.
    public static func duration(_ text: String) throws(ValueParseError) -> Duration {
        let bad = ValueParseError("expected a duration such as 30, 1.5, 250ms, 2s or 1m")
        let bytes = Array(text.utf8)
        var i = 0
        var whole: Int64 = 0
        var digits = 0
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
            let (m, o1) = whole.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
            if o1 || o2 { throw bad }
            whole = s
            digits += 1
            i += 1
        }
        // The fraction in units of 1e-9, truncated past nine digits.
        var fraction: Int64 = 0
        var fractionDigits = 0
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                if fractionDigits < 9 {
                    fraction = fraction * 10 + Int64(bytes[i] - 0x30)
                    fractionDigits += 1
                }
                digits += 1
                i += 1
            }
            if fractionDigits == 0 { throw bad }
            for _ in fractionDigits..<9 { fraction *= 10 }
        }
        guard digits > 0 else { throw bad }
        let unit = String(decoding: bytes[i...], as: UTF8.self)
        let unitNanos: Int64
        switch unit {
        case "ms": unitNanos = 1_000_000
        case "", "s": unitNanos = 1_000_000_000
        case "m": unitNanos = 60_000_000_000
        case "h": unitNanos = 3_600_000_000_000
        default: throw bad
        }
        let (wholeNanos, o1) = whole.multipliedReportingOverflow(by: unitNanos)
        if o1 { throw bad }
        // fraction * unitNanos / 1e9, kept in range: fraction < 1e9 and unitNanos / 1e6 <= 3.6e6.
        let fractionNanos = fraction * (unitNanos / 1_000_000) / 1000
        let (total, o2) = wholeNanos.addingReportingOverflow(fractionNanos)
        if o2 { throw bad }
        return .nanoseconds(total)
    }

    /// Parses an octal file-mode creation mask (`022`, `0077`, `0o27`), at most `0777`.
    ///
    /// - Throws: ``ValueParseError`` when the text is not octal or is too large.
    public static func umask(_ text: String) throws(ValueParseError) -> mode_t {
        var digits = Substring(text)
        if digits.hasPrefix("0o") || digits.hasPrefix("0O") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 4, let n = Int(digits, radix: 8), digits.allSatisfy({ $0 != "+" && $0 != "-" })
        else { throw ValueParseError("expected an octal mask such as 022 or 0077") }
        guard n <= 0o777 else { throw ValueParseError("expected an octal mask no larger than 0777") }
        return mode_t(n)
    }

    /// Parses a boolean as written in config files: `true/false`, `yes/no`, `on/off`, `1/0`.
    public static func boolean(_ text: String) throws(ValueParseError) -> Bool {
        switch text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ValueParseError("expected true or false")
        }
    }
}
