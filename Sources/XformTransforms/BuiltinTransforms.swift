import XformCore

/// The transforms every ``TransformService`` starts with (unless made with `builtins: false`).
public enum BuiltinTransforms {
    /// How long `slowcummingsify` waits before answering.
    public static let slowDelay: Duration = .milliseconds(100)

    /// `cummingsify`: lowercase, byte-identical to Python 3's `str.lower()`.
    public static var cummingsify: Transform {
        Transform(
            name: "cummingsify", summary: "lowercase the text (Python's str.lower(), Final_Sigma included)",
            body: .synchronous(PythonCase.lower), asciiFastPath: ASCIIBytes.lowercase)
    }

    /// `upper`: Python 3's `str.upper()` (full mappings: `ß` becomes `SS`).
    public static var upper: Transform {
        Transform(
            name: "upper", summary: "uppercase the text (Python's str.upper(): ß becomes SS)",
            body: .synchronous(PythonCase.upper), asciiFastPath: ASCIIBytes.uppercase)
    }

    /// `title`: Python 3's `str.title()`.
    public static var title: Transform {
        Transform(
            name: "title", summary: "titlecase each run of letters (Python's str.title())",
            body: .synchronous(PythonCase.title), asciiFastPath: ASCIIBytes.title)
    }

    /// `rot13`: rotates ASCII letters by 13; everything else is unchanged.
    public static var rot13: Transform {
        Transform(
            name: "rot13", summary: "rotate ASCII letters by 13 places; other characters unchanged",
            body: .synchronous(rot13Text), asciiFastPath: ASCIIBytes.rot13)
    }

    /// `reverse`: the text's grapheme clusters in reverse order.
    public static var reverse: Transform {
        Transform(
            name: "reverse", summary: "reverse the text by grapheme cluster (emoji and accents survive)",
            body: .synchronous({ String($0.reversed()) }), asciiFastPath: ASCIIBytes.reverse)
    }

    /// `wordcount`: the number of words, as decimal digits.
    public static var wordcount: Transform {
        Transform(
            name: "wordcount", summary: "count the whitespace-separated words; replies with the number",
            body: .synchronous({ String(wordCount($0)) }))
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
