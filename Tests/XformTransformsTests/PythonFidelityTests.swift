import Testing
@testable import XformTransforms

@Suite("Case mappings match CPython 3.11 byte for byte")
struct PythonFidelityTests {
    @Test("The fixtures come from Unicode 14.0.0, the data of Python 3.11")
    func fixtureVersion() throws {
        #expect(try PythonFixtures.scan().unidataVersion == "14.0.0")
    }

    @Test("Every code point assigned in Unicode 14 lowers, uppers and titles alone as in Python")
    func singleCodePointScan() throws {
        let scan = try PythonFixtures.scan()
        var checked = 0
        var mismatches: [String] = []
        for range in scan.assigned {
            for v in range {
                let c = Unicode.Scalar(v)!
                let s = String(c)
                let expected = scan.mappings[v] ?? (s, s, s)
                for (what, got, want) in [
                    ("lower", PythonCase.lower(s), expected.lower),
                    ("upper", PythonCase.upper(s), expected.upper),
                    ("title", PythonCase.title(s), expected.title),
                ] where got != want {
                    mismatches.append("U+\(codePoints(s)) \(what): got \(codePoints(got)), Python \(codePoints(want))")
                }
                checked += 1
            }
        }
        #expect(checked > 140_000)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches: \(mismatches.prefix(40))")
    }

    @Test("Cased and Case_Ignorable agree with what CPython's Final_Sigma and title() see")
    func sigmaProperties() throws {
        let scan = try PythonFixtures.scan()
        var mismatches: [String] = []
        for range in scan.assigned {
            for v in range {
                let c = Unicode.Scalar(v)!
                let ignorable = PythonCase.isCaseIgnorable(c)
                if ignorable != scan.ignorable.contains(v) {
                    mismatches.append("U+\(codePoints(String(c))) ignorable: \(ignorable)")
                }
                if !ignorable, PythonCase.isCased(c) != scan.casedNotIgnorable.contains(v) {
                    mismatches.append("U+\(codePoints(String(c))) cased and not ignorable: \(PythonCase.isCased(c))")
                }
                if PythonCase.isCased(c) != scan.cased.contains(v) {
                    mismatches.append("U+\(codePoints(String(c))) cased: \(PythonCase.isCased(c))")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches: \(mismatches.prefix(40))")
    }

    @Test("Code points unassigned in Unicode 14 are left alone and are neither cased nor ignorable, as in Python 3.11")
    func newerCodePointsArePinned() throws {
        let scan = try PythonFixtures.scan()
        var assigned = Set<UInt32>()
        for r in scan.assigned { assigned.formUnion(r) }
        var newerWithData = 0
        var mismatches: [String] = []
        for v in UInt32(0)...0x10FFFF where !assigned.contains(v) {
            guard let c = Unicode.Scalar(v) else { continue }
            let s = String(c)
            if c.properties.changesWhenLowercased || c.properties.changesWhenUppercased || c.properties.isCased {
                newerWithData += 1
            }
            if PythonCase.lower(s) != s || PythonCase.upper(s) != s || PythonCase.title(s) != s
                || PythonCase.isCased(c) || PythonCase.isCaseIgnorable(c)
            {
                mismatches.append(codePoints(s))
            }
        }
        // The runtime does know newer cased letters (e.g. U+A7CB, U+1C89): they are pinned, not absent.
        #expect(newerWithData > 0)
        #expect(mismatches.isEmpty, "\(mismatches.count): \(mismatches.prefix(20))")
        // Sigma next to a newer letter: Python 3.11 sees an uncased code point.
        #expect(PythonCase.lower("\u{A7CB}\u{03A3}") == "\u{A7CB}\u{03C3}")
        #expect(PythonCase.lower("A\u{03A3}\u{A7CB}") == "a\u{03C2}\u{A7CB}")
    }

    @Test("Strings with sigma contexts, special casing, scripts, emoji and marks match Python")
    func goldenCases() throws {
        let cases = try PythonFixtures.cases()
        #expect(cases.count > 700)
        for c in cases {
            #expect(PythonCase.lower(c.input) == c.lower, "lower(\(codePoints(c.input)))")
            #expect(PythonCase.upper(c.input) == c.upper, "upper(\(codePoints(c.input)))")
            #expect(PythonCase.title(c.input) == c.title, "title(\(codePoints(c.input)))")
        }
    }

    @Test("The changesWhen… shortcuts agree with the full mappings for every scalar")
    func shortcutsAreExact() {
        var mismatches: [UInt32] = []
        for v in UInt32(0x80)...0x10FFFF {
            guard let c = Unicode.Scalar(v) else { continue }
            let p = c.properties, s = String(c)
            if p.changesWhenLowercased != (p.lowercaseMapping != s)
                || p.changesWhenUppercased != (p.uppercaseMapping != s)
                || p.changesWhenTitlecased != (p.titlecaseMapping != s)
            {
                mismatches.append(v)
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20).map { String($0, radix: 16) })")
    }

    @Test("The ASCII shortcuts for Cased and Case_Ignorable agree with the Unicode properties")
    func asciiShortcuts() {
        for v in UInt32(0)..<0x80 {
            let c = Unicode.Scalar(v)!
            #expect(PythonCase.isCased(c) == c.properties.isCased, "U+\(v)")
            #expect(PythonCase.isCaseIgnorable(c) == c.properties.isCaseIgnorable, "U+\(v)")
        }
    }

    @Test("Swift's own lowercased() is not Python's lower(): it ignores Final_Sigma")
    func swiftLowercasedDiffers() {
        let text = "ΟΔΟΣ"
        #expect(text.lowercased() == "οδοσ")
        #expect(PythonCase.lower(text) == "οδος")
    }
}
