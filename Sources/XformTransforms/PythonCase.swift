/// CPython 3.11's `str.lower()`, `str.upper()` and `str.title()`, code point for code point.
///
/// The mappings are the full (SpecialCasing, unconditional) ones from the Swift runtime's Unicode
/// data, pinned to Unicode 14.0.0 (the data of Python 3.11, the reference): code points assigned
/// after 14.0 are left unchanged and count as neither cased nor case-ignorable, as they do in
/// Python 3.11, and the few Unicode 14 code points whose data changed since are corrected by
/// ``Unicode14``. The one context-sensitive rule CPython applies, Final_Sigma for U+03A3, is
/// implemented exactly as CPython's `handle_capital_sigma` does it. Swift's `lowercased()` lacks
/// that rule (it maps every capital sigma to U+03C3), so it is not used.
public enum PythonCase {
    static let capitalSigma: Unicode.Scalar = "\u{03A3}"
    static let smallSigma: Unicode.Scalar = "\u{03C3}"
    static let finalSigma: Unicode.Scalar = "\u{03C2}"

    /// Builds the lookup tables the non-ASCII paths use, if not built yet (the first non-ASCII
    /// call otherwise builds them). Safe from any thread. Returns the tables' size in bytes.
    @discardableResult
    public static func prepareTables() -> Int { CaseTable.shared.byteCount }

    /// Python's `str.lower()`.
    public static func lower(_ text: String) -> String {
        if ASCIIBytes.isASCII(text) { return asciiMap(text, ASCIIBytes.lowercase) }
        return lowerFast(text)
    }

    /// `lower` code point by code point, without the ASCII shortcut or the tables:
    /// the reference the tables are checked against.
    static func lowerScalars(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        // The last scalar before the current one that is not case-ignorable: is it cased?
        var previousIsCased = false
        for i in scalars.indices {
            let c = scalars[i]
            appendLower(c, at: i, in: scalars, previousIsCased: previousIsCased, to: &out)
            if !isCaseIgnorable(c) { previousIsCased = isCased(c) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Python's `str.upper()`: the full uppercase mapping of each code point (`ß` becomes `SS`).
    public static func upper(_ text: String) -> String {
        if ASCIIBytes.isASCII(text) { return asciiMap(text, ASCIIBytes.uppercase) }
        return upperFast(text)
    }

    /// `upper` code point by code point, without the ASCII shortcut or the tables:
    /// the reference the tables are checked against.
    static func upperScalars(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        for c in text.unicodeScalars { appendUpperMapping(c, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Python's `str.title()`: a code point right after a cased one is lowercased (Final_Sigma
    /// included), any other is titlecased. "Cased" is the Unicode Cased property of the code
    /// point itself, so `they're` becomes `They'Re`, as in Python.
    public static func title(_ text: String) -> String {
        if ASCIIBytes.isASCII(text) { return asciiMap(text, ASCIIBytes.title) }
        return titleFast(text)
    }

    /// `title` code point by code point, without the ASCII shortcut or the tables:
    /// the reference the tables are checked against.
    static func titleScalars(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        var previousIsCased = false  // for title's own rule: the previous code point
        var previousNonIgnorableIsCased = false  // for Final_Sigma's look-behind
        for i in scalars.indices {
            let c = scalars[i]
            if previousIsCased {
                appendLower(c, at: i, in: scalars, previousIsCased: previousNonIgnorableIsCased, to: &out)
            } else {
                appendTitleMapping(c, to: &out)
            }
            previousIsCased = isCased(c)
            if !isCaseIgnorable(c) { previousNonIgnorableIsCased = isCased(c) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Pieces

    @inline(__always)
    static func appendLower(
        _ c: Unicode.Scalar, at i: Int, in scalars: [Unicode.Scalar], previousIsCased: Bool,
        to out: inout [UInt8]
    ) {
        if c == capitalSigma {
            appendUTF8(isFinalSigma(at: i, in: scalars, previousIsCased: previousIsCased) ? finalSigma : smallSigma, to: &out)
        } else {
            appendLowerMapping(c, to: &out)
        }
    }

    /// Appends the full lowercase mapping of `c` as UTF-8, without context (so capital sigma
    /// becomes U+03C3; the callers apply Final_Sigma).
    @inline(__always)
    static func appendLowerMapping(_ c: Unicode.Scalar, to out: inout [UInt8]) {
        if c.value < 0x80 {
            out.append(c.value &- 65 < 26 ? UInt8(c.value) | 0x20 : UInt8(c.value))
        } else if !c.properties.changesWhenLowercased || !Unicode14.isAssigned(c) {
            appendUTF8(c, to: &out)
        } else {
            out.append(contentsOf: c.properties.lowercaseMapping.utf8)
        }
    }

    /// Appends the full uppercase mapping of `c` as UTF-8.
    @inline(__always)
    static func appendUpperMapping(_ c: Unicode.Scalar, to out: inout [UInt8]) {
        if c.value < 0x80 {
            out.append(c.value &- 97 < 26 ? UInt8(c.value) & 0xDF : UInt8(c.value))
        } else if !c.properties.changesWhenUppercased || !Unicode14.hasUpperOrTitleMapping(c) {
            appendUTF8(c, to: &out)
        } else {
            out.append(contentsOf: c.properties.uppercaseMapping.utf8)
        }
    }

    /// Appends the full titlecase mapping of `c` as UTF-8.
    @inline(__always)
    static func appendTitleMapping(_ c: Unicode.Scalar, to out: inout [UInt8]) {
        if c.value < 0x80 {
            out.append(c.value &- 97 < 26 ? UInt8(c.value) & 0xDF : UInt8(c.value))
        } else if !c.properties.changesWhenTitlecased || !Unicode14.hasUpperOrTitleMapping(c) {
            appendUTF8(c, to: &out)
        } else {
            out.append(contentsOf: c.properties.titlecaseMapping.utf8)
        }
    }

    /// Appends the UTF-8 form of `c`. (Building a `String.UnicodeScalarView` with
    /// `append(contentsOf:)` copied the whole output per call in Swift 6.3: quadratic.)
    @inline(__always)
    static func appendUTF8(_ c: Unicode.Scalar, to out: inout [UInt8]) {
        let v = c.value
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(0xC0 | UInt8(v >> 6))
            out.append(0x80 | UInt8(v & 0x3F))
        } else if v < 0x10000 {
            out.append(0xE0 | UInt8(v >> 12))
            out.append(0x80 | UInt8((v >> 6) & 0x3F))
            out.append(0x80 | UInt8(v & 0x3F))
        } else {
            out.append(0xF0 | UInt8(v >> 18))
            out.append(0x80 | UInt8((v >> 12) & 0x3F))
            out.append(0x80 | UInt8((v >> 6) & 0x3F))
            out.append(0x80 | UInt8(v & 0x3F))
        }
    }

    /// CPython's Final_Sigma test: `\p{cased} \p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased})`.
    /// `previousIsCased` tells whether the nearest preceding code point that is not
    /// case-ignorable exists and is cased.
    static func isFinalSigma(at i: Int, in scalars: [Unicode.Scalar], previousIsCased: Bool) -> Bool {
        guard previousIsCased else { return false }
        var j = i + 1
        while j < scalars.count, isCaseIgnorable(scalars[j]) { j += 1 }
        return j == scalars.count || !isCased(scalars[j])
    }

    @inline(__always)
    static func isCased(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return (UInt8(c.value) | 0x20) &- 97 < 26 }
        return Unicode14.isCased(c)
    }

    @inline(__always)
    static func isCaseIgnorable(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 {
            // ASCII Case_Ignorable: apostrophe, full stop, colon, circumflex, grave accent.
            return c == "'" || c == "." || c == ":" || c == "^" || c == "`"
        }
        return Unicode14.isCaseIgnorable(c)
    }

    static func asciiMap(
        _ text: String, _ map: (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void
    ) -> String {
        var text = text
        return text.withUTF8 { input in
            String(unsafeUninitializedCapacity: input.count) { output in
                map(UnsafeRawBufferPointer(input), UnsafeMutableRawBufferPointer(output))
                return input.count
            }
        }
    }
}

/// The Swift runtime's Unicode properties as Unicode 14.0.0 (Python 3.11) had them.
///
/// The runtime carries newer data (Unicode 17 in Swift 6.3). The exceptions below are every
/// difference for code points assigned in 14.0, as found by the exhaustive fixture scan in the
/// tests; a toolchain with other data makes that scan fail and name the code points to add here.
public enum Unicode14 {
    /// True if `c` was assigned in Unicode 14.0 or earlier.
    @inline(__always)
    public static func isAssigned(_ c: Unicode.Scalar) -> Bool {
        guard let age = c.properties.age else { return false }
        return age.major <= 14
    }

    /// False for code points that had no upper- or titlecase mapping in 14.0 but gained one
    /// later (U+019B and U+0264 in 16.0, U+A7D3 and U+A7D5 with their new capitals), and for
    /// code points assigned after 14.0.
    public static func hasUpperOrTitleMapping(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x019B, 0x0264, 0xA7D3, 0xA7D5: return false
        default: return isAssigned(c)
        }
    }

    /// The Cased property in 14.0.
    public static func isCased(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x0295: return true  // Ll in 14.0; not Cased in the runtime's newer data
        case 0x10FC, 0xA7F2...0xA7F4, 0xAB69: return false  // became Other_Lowercase later
        default: return c.properties.isCased && isAssigned(c)
        }
    }

    /// The Case_Ignorable property in 14.0.
    public static func isCaseIgnorable(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x1171E: return true  // AHOM CONSONANT SIGN MEDIAL RA: Mn in 14.0, Mc later
        default: return c.properties.isCaseIgnorable && isAssigned(c)
        }
    }
}
