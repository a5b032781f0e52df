import Foundation

/// Reads the golden files generated once by `Fixtures/generate.py` (CPython 3.11, Unicode 14).
enum PythonFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func lines(_ name: String) throws -> [Substring] {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }
    }

    struct Scan {
        var unidataVersion = ""
        var assigned: [ClosedRange<UInt32>] = []
        var ignorable = Set<UInt32>()
        var casedNotIgnorable = Set<UInt32>()
        var cased = Set<UInt32>()
        /// Code point -> (lower, upper, title), only where one is not the identity.
        var mappings: [UInt32: (lower: String, upper: String, title: String)] = [:]
    }

    static func scalars(_ field: Substring) -> String {
        var s = String.UnicodeScalarView()
        for hex in field.split(separator: " ") { s.append(Unicode.Scalar(UInt32(hex, radix: 16)!)!) }
        return String(s)
    }

    static func scan() throws -> Scan {
        var scan = Scan()
        for line in try lines("python-scan.txt") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            switch f[0] {
            case "unidata": scan.unidataVersion = String(f[1])
            case "A", "I", "C", "K":
                let range = UInt32(f[1], radix: 16)!...UInt32(f[2], radix: 16)!
                switch f[0] {
                case "A": scan.assigned.append(range)
                case "I": scan.ignorable.formUnion(range)
                case "C": scan.casedNotIgnorable.formUnion(range)
                default: scan.cased.formUnion(range)
                }
            case "M":
                scan.mappings[UInt32(f[1], radix: 16)!] = (scalars(f[2]), scalars(f[3]), scalars(f[4]))
            default: Issue.recordUnexpectedLine(line)
            }
        }
        return scan
    }

    struct Case {
        var input: String
        var lower: String
        var upper: String
        var title: String
    }

    static func decodeHex(_ field: Substring) -> String {
        if field == "-" { return "" }
        var bytes: [UInt8] = []
        var i = field.startIndex
        while i < field.endIndex {
            let j = field.index(i, offsetBy: 2)
            bytes.append(UInt8(field[i..<j], radix: 16)!)
            i = j
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func cases() throws -> [Case] {
        try lines("python-cases.txt").map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(decodeHex)
            return Case(input: f[0], lower: f[1], upper: f[2], title: f[3])
        }
    }
}

import Testing

extension Issue {
    static func recordUnexpectedLine(_ line: Substring) {
        Issue.record("unexpected fixture line: \(line)")
    }
}

/// Renders text as code points, for readable failure messages.
func codePoints(_ s: String) -> String {
    s.unicodeScalars.map { String($0.value, radix: 16, uppercase: true) }.joined(separator: " ")
}
