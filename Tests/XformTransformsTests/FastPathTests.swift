import Testing
import XformCore
import XformTesting
@testable import XformTransforms

@Suite("The ASCII fast paths give the same bytes as the String paths")
struct FastPathTests {
    /// Random ASCII texts: every byte value below 0x80, with extra letters, CR, LF and spaces.
    static func randomASCII(count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix64(seed: seed)
        let favoured: [UInt8] = Array("AZaz \r\n\r\n'.:Σ".utf8.filter { $0 < 0x80 })
        return (0..<count).map { i in
            let length = i < 70 ? i : Int.random(in: 0...300, using: &rng)
            return (0..<length).map { _ in
                Bool.random(using: &rng)
                    ? favoured.randomElement(using: &rng)! : UInt8.random(in: 0..<0x80, using: &rng)
            }
        }
    }

    static func runFast(_ fast: ASCIIFastPath, _ input: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0xEE, count: input.count)
        input.withUnsafeBytes { i in output.withUnsafeMutableBytes { o in fast(i, o) } }
        return output
    }

    static func rot13Reference(_ s: String) -> String {
        String(
            String.UnicodeScalarView(
                s.unicodeScalars.map { c in
                    switch c {
                    case "a"..."m", "A"..."M": return Unicode.Scalar(c.value + 13)!
                    case "n"..."z", "N"..."Z": return Unicode.Scalar(c.value - 13)!
                    default: return c
                    }
                }))
    }

    static let references: [(String, @Sendable (String) -> String)] = [
        ("cummingsify", { $0.lowercased() }),
        ("cummingsify", PythonCase.lowerScalars),
        ("upper", { $0.uppercased() }),
        ("upper", PythonCase.upperScalars),
        ("title", PythonCase.titleScalars),
        ("rot13", rot13Reference),
        ("reverse", { String($0.reversed()) }),
    ]

    @Test("Each fast path matches an independent String implementation on 3,000 random ASCII texts",
        arguments: 0..<references.count)
    func randomInputs(index: Int) throws {
        let (name, reference) = Self.references[index]
        let handle = try #require(TransformService().lookup(name))
        let fast = try #require(handle.asciiFastPath)
        for input in Self.randomASCII(count: 3_000, seed: UInt64(index) + 1) {
            let expected = Array(reference(String(decoding: input, as: UTF8.self)).utf8)
            let got = Self.runFast(fast, input)
            if got != expected {
                Issue.record("\(name) on \(input): got \(got), expected \(expected)")
                return
            }
        }
    }

    @Test("The byte API and the String API agree on random ASCII texts for every built-in")
    func byteAndStringAPIsAgree() {
        let service = TransformService()
        let context = TransformContext(clock: ManualClock())
        for name in service.names where name != "slowcummingsify" {
            let handle = service.lookup(name)!
            for input in Self.randomASCII(count: 300, seed: 99) {
                let viaString = try? transformNow(service, name, String(decoding: input, as: UTF8.self))?.get()
                #expect(doneBytes(apply(handle, input, context)) == viaString.map { Array($0.utf8) }, "\(name)")
            }
        }
    }

    @Test("Transforms without a same-length mapping have no fast path")
    func noFastPath() {
        let service = TransformService()
        #expect(service.lookup("wordcount")?.asciiFastPath == nil)
        #expect(service.lookup("slowcummingsify")?.asciiFastPath == nil)
        #expect(service.lookup("slowcummingsify")?.isAsynchronous == true)
        #expect(service.lookup("cummingsify")?.isAsynchronous == false)
    }

    @Test("isASCII finds a single high byte at any position and alignment")
    func isASCIIFindsHighBytes() {
        for offset in 0..<8 {
            for length in 0..<80 {
                var storage = [UInt8](repeating: 0x41, count: offset + length + 8)
                storage.withUnsafeBytes { all in
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    #expect(ASCIIBytes.isASCII(slice))
                }
                for position in 0..<length {
                    storage[offset + position] = 0x80 | UInt8(position & 0x7F)
                    storage.withUnsafeBytes { all in
                        let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                        #expect(!ASCIIBytes.isASCII(slice), "offset \(offset) length \(length) at \(position)")
                    }
                    storage[offset + position] = 0x7F
                }
            }
        }
        // A high byte just outside the buffer is not looked at.
        let bytes: [UInt8] = [0x61, 0x62, 0xC3]
        bytes.withUnsafeBytes { #expect(ASCIIBytes.isASCII(UnsafeRawBufferPointer(rebasing: $0[0..<2]))) }
        #expect(ASCIIBytes.isASCII(UnsafeRawBufferPointer(start: nil, count: 0)))
    }

    @Test("The checked fast path maps ASCII as the plain one does and answers false for any byte above 0x7F")
    func checkedFastPath() throws {
        let service = TransformService()
        let custom = Transform(
            name: "shout", summary: "uppercase", body: .synchronous { $0.uppercased() },
            asciiFastPath: ASCIIBytes.uppercase)
        try service.register(custom)
        for name in ["cummingsify", "upper", "title", "rot13", "reverse", "shout"] {
            let handle = try #require(service.lookup(name))
            let plain = try #require(handle.asciiFastPath)
            let checked = try #require(handle.checkedASCIIFastPath)
            for length in [0, 1, 7, 8, 15, 16, 17, 64, 100] {
                var input = (0..<length).map { UInt8(32 + ($0 * 7) % 95) }
                var expected = [UInt8](repeating: 0, count: length)
                var got = [UInt8](repeating: 0, count: length)
                input.withUnsafeBytes { i in expected.withUnsafeMutableBytes { plain(i, $0) } }
                let ok = input.withUnsafeBytes { i in got.withUnsafeMutableBytes { checked(i, $0) } }
                #expect(ok && got == expected, "\(name), \(length) bytes")
                for position in stride(from: 0, to: length, by: max(1, length / 5)) {
                    input[position] = 0xC3
                    let refused = input.withUnsafeBytes { i in got.withUnsafeMutableBytes { checked(i, $0) } }
                    #expect(!refused, "\(name): a high byte at \(position) of \(length)")
                    input[position] = UInt8(ascii: "a")
                }
            }
        }
    }

    @Test("A fast path writes exactly input.count bytes and leaves the rest of the output alone")
    func fastPathBounds() {
        let input = Array("Hello".utf8)
        var output = [UInt8](repeating: 0xEE, count: 8)
        input.withUnsafeBytes { i in output.withUnsafeMutableBytes { ASCIIBytes.lowercase(i, $0) } }
        #expect(output == Array("hello".utf8) + [0xEE, 0xEE, 0xEE])
    }
}
