/// CPython 3's `str.lower()`, `str.upper()` and `str.title()`, code point for code point.
///
/// The mappings are the full (SpecialCasing, unconditional) ones from the Swift runtime's Unicode
/// data; the one context-sensitive rule CPython applies, Final_Sigma for U+03A3, is implemented
/// exactly as CPython's `handle_capital_sigma` does it. Swift's `lowercased()` lacks that rule
/// (it maps every capital sigma to U+03C3), so it is not used.
public enum PythonCase {
    static let capitalSigma: Unicode.Scalar = "\u{03A3}"
    static let smallSigma: Unicode.Scalar = "\u{03C3}"
    static let finalSigma: Unicode.Scalar = "\u{03C2}"

    /// Python's `str.lower()`.
    public static func lower(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return asciiMap(text, ASCIIBytes.lowercase) }
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        out.reserveCapacity(text.utf8.count)
        // The last scalar before the current one that is not case-ignorable: is it cased?
        var previousIsCased = false
        for i in scalars.indices {
            let c = scalars[i]
            appendLower(c, at: i, in: scalars, previousIsCased: previousIsCased, to: &out)
            if !isCaseIgnorable(c) { previousIsCased = isCased(c) }
        }
        return String(out)
    }

    /// Python's `str.upper()`: the full uppercase mapping of each code point (`ß` becomes `SS`).
    public static func upper(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return asciiMap(text, ASCIIBytes.uppercase) }
        var out = String.UnicodeScalarView()
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            if c.value < 0x80 || !c.properties.changesWhenUppercased {
                out.append(c)
            } else {
                out.append(contentsOf: c.properties.uppercaseMapping.unicodeScalars)
            }
        }
        return String(out)
    }

    /// Python's `str.title()`: a code point right after a cased one is lowercased (Final_Sigma
    /// included), any other is titlecased. "Cased" is the Unicode Cased property of the code
    /// point itself, so `they're` becomes `They'Re`, as in Python.
    public static func title(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return asciiMap(text, ASCIIBytes.title) }
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        out.reserveCapacity(text.utf8.count)
        var previousIsCased = false  // for title's own rule: the previous code point
        var previousNonIgnorableIsCased = false  // for Final_Sigma's look-behind
        for i in scalars.indices {
            let c = scalars[i]
            if previousIsCased {
                appendLower(c, at: i, in: scalars, previousIsCased: previousNonIgnorableIsCased, to: &out)
            } else if c.value < 0x80 || !c.properties.changesWhenTitlecased {
                out.append(c)
            } else {
                out.append(contentsOf: c.properties.titlecaseMapping.unicodeScalars)
            }
            previousIsCased = isCased(c)
            if !isCaseIgnorable(c) { previousNonIgnorableIsCased = isCased(c) }
        }
        return String(out)
    }

    // MARK: Pieces

    @inline(__always)
    static func appendLower(
        _ c: Unicode.Scalar, at i: Int, in scalars: [Unicode.Scalar], previousIsCased: Bool,
        to out: inout String.UnicodeScalarView
    ) {
        if c.value < 0x80 {
            out.append(c.value &- 65 < 26 ? Unicode.Scalar(UInt8(c.value) | 0x20) : c)
        } else if c == capitalSigma {
            out.append(isFinalSigma(at: i, in: scalars, previousIsCased: previousIsCased) ? finalSigma : smallSigma)
        } else if !c.properties.changesWhenLowercased {
            out.append(c)
        } else {
            out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
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
        return c.properties.isCased
    }

    @inline(__always)
    static func isCaseIgnorable(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 {
            // ASCII Case_Ignorable: apostrophe, full stop, colon, circumflex, grave accent.
            return c == "'" || c == "." || c == ":" || c == "^" || c == "`"
        }
        return c.properties.isCaseIgnorable
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
