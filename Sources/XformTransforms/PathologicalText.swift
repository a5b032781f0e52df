/// Inputs built to make text transforms slow, for the linear-cost benchmark and test
/// (issue 10 §3): each is the worst case we know for some Unicode algorithm.
///
/// Every generator returns text of about `bytes` UTF-8 bytes (never more), so doubling `bytes`
/// doubles the input.
public enum PathologicalText {
    /// One named input shape.
    public struct Shape: Sendable {
        /// A short name for reports (`regional-indicators`).
        public let name: String
        /// Makes about `bytes` bytes of this shape.
        public let make: @Sendable (_ bytes: Int) -> String
    }

    /// Repeats `unit` while it fits in `bytes`.
    static func repeating(_ unit: String, _ bytes: Int) -> String {
        String(repeating: unit, count: max(1, bytes / unit.utf8.count))
    }

    /// The shapes: a run of regional indicators (flags pair up, found backwards only by counting
    /// the whole run), one base letter with an endless run of combining marks (one huge
    /// cluster), a zero-width-joiner chain of emoji (one huge cluster), Hangul jamo L V T runs,
    /// U+FFFD runs (what lone surrogates become), and Final_Sigma contexts (capital sigmas, each
    /// followed by case-ignorable marks before a cased letter, so every sigma looks ahead).
    public static let shapes: [Shape] = [
        Shape(name: "regional-indicators") { repeating("\u{1F1EB}", $0) },
        Shape(name: "combining-marks") { "a" + repeating("\u{0301}", $0 - 1) },
        Shape(name: "zwj-chain") { "\u{1F469}" + repeating("\u{200D}\u{1F469}", $0 - 4) },
        Shape(name: "hangul-jamo") { repeating("\u{1100}\u{1161}\u{11A8}", $0) },
        Shape(name: "replacement-chars") { repeating("\u{FFFD}", $0) },
        Shape(name: "final-sigma") { repeating("A\u{03A3}\u{0301}\u{0301}\u{0301}.'", $0) },
        Shape(name: "sigma-run") { "A" + repeating("\u{03A3}", $0 - 1) },
    ]
}
