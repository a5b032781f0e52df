import XformCore

/// The transforms every ``TransformService`` starts with (unless made with `builtins: false`).
public enum BuiltinTransforms {
    /// How long `slowcummingsify` waits before answering.
    public static let slowDelay: Duration = .milliseconds(100)

    /// `cummingsify`: lowercase, byte-identical to Python 3's `str.lower()`.
    public static var cummingsify: Transform {
        Transform(
            name: "cummingsify", summary: "lowercase the text (Python's str.lower(), Final_Sigma included)",
            body: .synchronous(PythonCase.lower), asciiFastPath: ASCIIBytes.lowercase,
            checkedFastPath: ASCIIBytes.lowercaseChecked, cost: .caseMapping)
    }

    /// `upper`: Python 3's `str.upper()` (full mappings: `ß` becomes `SS`).
    public static var upper: Transform {
        Transform(
            name: "upper", summary: "uppercase the text (Python's str.upper(): ß becomes SS)",
            body: .synchronous(PythonCase.upper), asciiFastPath: ASCIIBytes.uppercase,
            checkedFastPath: ASCIIBytes.uppercaseChecked, cost: .caseMapping)
    }

    /// `title`: Python 3's `str.title()`.
    public static var title: Transform {
        Transform(
            name: "title", summary: "titlecase each run of letters (Python's str.title())",
            body: .synchronous(PythonCase.title), asciiFastPath: ASCIIBytes.title, cost: .caseMapping)
    }

    /// `rot13`: rotates ASCII letters by 13; everything else is unchanged.
    public static var rot13: Transform {
        Transform(
            name: "rot13", summary: "rotate ASCII letters by 13 places; other characters unchanged",
            body: .synchronous(rot13Text), asciiFastPath: ASCIIBytes.rot13, cost: .bytewise)
    }

    /// `reverse`: the text's grapheme clusters in reverse order.
    public static var reverse: Transform {
        Transform(
            name: "reverse", summary: "reverse the text by grapheme cluster (emoji and accents survive)",
            body: .synchronous(reverseText), asciiFastPath: ASCIIBytes.reverse, cost: .graphemes)
    }

    /// `wordcount`: the number of words, as decimal digits.
    public static var wordcount: Transform {
        Transform(
            name: "wordcount", summary: "count the whitespace-separated words; replies with the number",
            body: .synchronous({ String(wordCount($0)) }), cost: .scalarProperties)
    }

    /// `slowcummingsify`: `cummingsify`, answered ``slowDelay`` later by the context's clock.
    public static var slowcummingsify: Transform {
        Transform(
            name: "slowcummingsify", summary: "cummingsify, answered 100 ms later (for testing timeouts)",
            body: .asynchronous({ text, context in
                deferLater(context.clock, slowDelay) { PythonCase.lower(text) }
            }))
    }

    /// All built-ins, in name order.
    public static var all: [Transform] { [cummingsify, reverse, rot13, slowcummingsify, title, upper, wordcount] }

    /// The number of maximal runs of code points that are not Unicode White_Space.
    public static func wordCount(_ text: String) -> Int {
        var count = 0
        var inWord = false
        for c in text.unicodeScalars {
            let space = c.properties.isWhitespace
            if !space, !inWord { count += 1 }
            inWord = !space
        }
        return count
    }

    /// The grapheme clusters of `text` in reverse order, in time linear in its length.
    ///
    /// `String(text.reversed())` walks clusters backwards, and finding a cluster boundary
    /// backwards inside a run of regional indicators means counting the whole run to know its
    /// parity: quadratic (issue 10 §3 measured 961 ms for 64 KB of flags). Segmenting forwards
    /// carries that parity along, so this walks the text once to record each cluster's UTF-8
    /// start, then copies the clusters out from last to first.
    @Sendable static func reverseText(_ text: String) -> String {
        var starts: [Int] = []
        starts.reserveCapacity(text.utf8.count / 2 + 1)
        var i = text.startIndex
        while i < text.endIndex {
            starts.append(text.utf8.distance(from: text.startIndex, to: i))  // O(1): native UTF-8
            i = text.index(after: i)
        }
        var text = text
        return text.withUTF8 { input in
            String(unsafeUninitializedCapacity: input.count) { output in
                var end = input.count
                var written = 0
                for start in starts.reversed() {
                    let length = end - start
                    (output.baseAddress! + written).update(from: input.baseAddress! + start, count: length)
                    written += length
                    end = start
                }
                return written
            }
        }
    }

    @Sendable static func rot13Text(_ text: String) -> String {
        var text = text
        if ASCIIBytes.isASCII(text) { return PythonCase.asciiMap(text, ASCIIBytes.rot13) }
        return text.withUTF8 { input in
            // Non-ASCII bytes are copied unchanged, which keeps UTF-8 valid.
            String(unsafeUninitializedCapacity: input.count) { output in
                for i in 0..<input.count {
                    let b = input[i]
                    let offset = (b | 0x20) &- 97
                    output[i] = b < 0x80 && offset < 26 ? (offset < 13 ? b &+ 13 : b &- 13) : b
                }
                return input.count
            }
        }
    }
}
