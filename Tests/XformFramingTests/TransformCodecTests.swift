import Testing
import XformFraming

@Suite("Transform codecs")
struct TransformCodecTests {
    @Test("Line escaping finds every byte that needs an escape, at every position, and round-trips")
    func lineEscapeEveryPosition() throws {
        for special: UInt8 in [9, 10, 13, 92] {
            for length in 1...40 {
                for position in 0..<length {
                    var text = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    text[position] = special
                    let first = text.withUnsafeBytes { LineTransformCodec.firstEscapable($0) }
                    #expect(first == position, "byte \(special) at \(position) of \(length)")
                    var escaped: [UInt8] = []
                    text.withUnsafeBytes { LineTransformCodec.escape($0, into: &escaped) }
                    #expect(escaped.count == length + 1)
                    let back = try escaped.withUnsafeBytes { try LineTransformCodec.unescape($0).get() }
                    #expect(back == text)
                }
            }
        }
    }

    @Test("A line's name ends at its first space, or at its end when it has none")
    func firstSpace() {
        for (line, expected) in [("upper hi there", 5), ("list", 4), (" x", 0), ("", 0), ("a ", 1)] {
            let bytes = Array(line.utf8)
            #expect(bytes.withUnsafeBytes { LineTransformCodec.firstSpace($0) } == expected, "\(line)")
        }
    }

    @Test("Text with no byte to escape is copied whole; every byte value round-trips")
    func lineEscapeAllBytes() throws {
        let plain = Array("THE BALLOON MAN whistles far and wee ~!@#$%^&*()_+{}|:<>?".utf8)
        #expect(plain.withUnsafeBytes { LineTransformCodec.firstEscapable($0) } == plain.count)
        let all = (0...255).map { UInt8($0) } + (0...255).map { UInt8(255 - $0) }
        var escaped: [UInt8] = []
        all.withUnsafeBytes { LineTransformCodec.escape($0, into: &escaped) }
        #expect(escaped.withUnsafeBytes { LineTransformCodec.isPlain($0) } == false)
        #expect(try escaped.withUnsafeBytes { try LineTransformCodec.unescape($0).get() } == all)
    }

    @Test("An invalid escape is an error naming it")
    func lineInvalidEscape() {
        let bad = Array("a\\qb".utf8)
        let result = bad.withUnsafeBytes { LineTransformCodec.unescape($0) }
        #expect(throws: LineEscapeError.self) { try result.get() }
        let trailing = Array("ab\\".utf8)
        #expect(throws: LineEscapeError.self) { try trailing.withUnsafeBytes { try LineTransformCodec.unescape($0).get() } }
    }

    @Test("Netstring requests: original, extended, query and malformed payloads")
    func netstringRequests() {
        func decode(_ s: String) -> String {
            Array(s.utf8).withUnsafeBytes { p in
                switch NetstringTransformCodec.decodeRequest(p) {
                case .transform(let name, let text, let extended):
                    return "\(extended ? "!" : "")\(String(decoding: name, as: UTF8.self))|\(String(decoding: text, as: UTF8.self))"
                case .query(let q): return "?\(String(decoding: q, as: UTF8.self))"
                case .malformed(let problem, let extended): return "bad \(problem) \(extended)"
                }
            }
        }
        #expect(decode("upper.hi.there") == "upper|hi.there")
        #expect(decode("!upper.") == "!upper|")
        #expect(decode("?list") == "?list")
        #expect(decode("") == "bad empty false")
        #expect(decode("!upper") == "bad noDot true")
    }

    @Test("Netstring replies and requests encode as the spec's examples")
    func netstringEncoding() {
        #expect(NetstringTransformCodec.reply(Array("hi".utf8), extended: true) == Array("3:+hi,".utf8))
        #expect(NetstringTransformCodec.reply(Array("hi".utf8), extended: false) == Array("2:hi,".utf8))
        #expect(NetstringTransformCodec.errorReply(code: "bad_request", message: "x") == Array("14:-bad_request x,".utf8))
        var out: [UInt8] = []
        NetstringTransformCodec.appendRequest(name: "cummingsify", text: "HERE IS MY POEM", extended: false, to: &out)
        #expect(out == Array("27:cummingsify.HERE IS MY POEM,".utf8))
    }
}
