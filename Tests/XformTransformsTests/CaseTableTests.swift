import Testing
import XformTesting
@testable import XformTransforms

@Suite("The table-driven case mappings give the same bytes as the per-code-point reference")
struct CaseTableTests {
    /// Code points chosen to stress the tables: every word position for capital sigma,
    /// case-ignorables, multi-code-point mappings, titlecase digraphs, pinned code points.
    static let favoured: [Unicode.Scalar] = {
        var s: [Unicode.Scalar] = []
        s += "AZaz '.:^`-,\t\n0".unicodeScalars
        s += "ÀÉÎÕÜàéîõüßµÿ\u{AD}\u{B7}".unicodeScalars  // Latin-1, soft hyphen, middle dot
        s += "ΣΣΣΣσςΑΩαωάΐΰΆΏ\u{345}\u{390}\u{3B0}".unicodeScalars  // Greek, ypogegrammeni
        s += "ДЖЯдживЁё".unicodeScalars  // Cyrillic
        s += "\u{130}\u{131}iI".unicodeScalars  // Turkish dotted and dotless i
        s += "\u{301}\u{308}\u{307}\u{200D}\u{2019}".unicodeScalars  // combining, ZWJ, quote
        s += "\u{1C5}\u{1C4}\u{1C6}\u{1F88}\u{1F80}\u{FB03}\u{149}\u{1E9E}\u{2126}\u{10D0}\u{13A0}\u{AB70}"
            .unicodeScalars
        s += "\u{19B}\u{264}\u{295}\u{A7CB}\u{A7D3}\u{10FC}\u{AB69}".unicodeScalars  // Unicode 14 pinning
        s += "😀👩\u{1F3FB}\u{10400}\u{10428}\u{1E900}\u{1E922}\u{1171E}\u{E0001}\u{10FFFF}".unicodeScalars
        return s
    }()

    static func randomScalar(_ rng: inout SplitMix64) -> Unicode.Scalar {
        switch UInt8.random(in: 0..<10, using: &rng) {
        case 0..<6: return favoured.randomElement(using: &rng)!
        case 6, 7:
            while true {  // any BMP code point but a surrogate
                if let c = Unicode.Scalar(UInt32.random(in: 0x80..<0x10000, using: &rng)) { return c }
            }
        case 8: return Unicode.Scalar(UInt32.random(in: 0x370..<0x530, using: &rng))!  // Greek, Cyrillic
        default: return Unicode.Scalar(UInt32.random(in: 0x10000...0x10FFFF, using: &rng))!
        }
    }

    static func randomText(_ rng: inout SplitMix64) -> String {
        let length = Int.random(in: 0...40, using: &rng)
        var scalars = String.UnicodeScalarView()
        for _ in 0..<length { scalars.append(randomScalar(&rng)) }
        return String(scalars)
    }

    static let cases: [(String, @Sendable (String) -> String, @Sendable (String) -> String)] = [
        ("lower", PythonCase.lower, PythonCase.lowerScalars),
        ("upper", PythonCase.upper, PythonCase.upperScalars),
        ("title", PythonCase.title, PythonCase.titleScalars),
    ]

    @Test("lower, upper and title agree with the reference on 20,000 random mixed-script texts",
        arguments: 0..<cases.count)
    func randomTexts(index: Int) {
        let (name, fast, reference) = Self.cases[index]
        var rng = SplitMix64(seed: 0xCA5E + UInt64(index))
        var nonASCII = 0
        for _ in 0..<20_000 {
            let text = Self.randomText(&rng)
            if !ASCIIBytes.isASCII(text) { nonASCII += 1 }
            let got = fast(text)
            let want = reference(text)
            if Array(got.utf8) != Array(want.utf8) {
                Issue.record("\(name)(\(codePoints(text))): got \(codePoints(got)), reference \(codePoints(want))")
                return
            }
        }
        #expect(nonASCII > 15_000)
    }

    @Test("Every code point of planes 0 to 2 maps alike next to sigmas, in both look-behind and look-ahead")
    func everyCodePointInSigmaContext() {
        var mismatches: [String] = []
        for v in UInt32(0)..<0x30000 {
            guard let c = Unicode.Scalar(v) else { continue }
            let text = "A\(c)\u{3A3}\(c)\u{3A3} \(c)x"
            for (name, fast, reference) in Self.cases where fast(text) != reference(text) {
                mismatches.append("\(name) U+\(codePoints(String(c)))")
            }
            if mismatches.count > 20 { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test("Multi-code-point mappings and Final_Sigma come out as in Python")
    func knownCases() {
        #expect(PythonCase.lower("\u{130}") == "i\u{307}")
        #expect(PythonCase.upper("ß\u{390}") == "SS\u{399}\u{308}\u{301}")
        #expect(PythonCase.title("ǆemal \u{1F80}") == "ǅemal \u{1F88}")
        #expect(PythonCase.lower("ΟΔΟΣ'. ΟΔΟΣ'Α Σ ΑΣ\u{301}") == "οδος'. οδοσ'α σ ας\u{301}")
        #expect(PythonCase.title("ΟΔΟΣ ΣΑ") == "Οδος Σα")
    }

    @Test("Texts that grow up to threefold come out whole (the output buffer grows)")
    func growingOutput() {
        for text in [
            String(repeating: "\u{390}", count: 5_000), String(repeating: "\u{23A}\u{1F80}ﬃ", count: 3_000),
            String(repeating: "ß", count: 7_000) + "\u{130}", "\u{390}",
        ] {
            for (name, fast, reference) in Self.cases {
                #expect(Array(fast(text).utf8) == Array(reference(text).utf8), "\(name)")
            }
        }
        #expect(PythonCase.upper(String(repeating: "\u{390}", count: 5_000)).utf8.count == 30_000)
    }

    @Test("The tables are small and the same when read from many threads at once")
    func concurrentReads() async {
        #expect(PythonCase.prepareTables() < 256 * 1024)
        let text = String(repeating: "ΟΔΟΣ Привет İstanbul ǅ 😀𐐀 ", count: 200)
        let expected = PythonCase.lowerScalars(text)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 { group.addTask { PythonCase.lower(text) == expected } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 8))
    }
}
