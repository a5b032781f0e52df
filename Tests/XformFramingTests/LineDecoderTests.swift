import Testing
import XformCore
import XformFraming
import XformTesting

@Suite("LineDecoder")
struct LineDecoderTests {
    @Test("Lines ending in \\n or \\r\\n decode the same under every chunking")
    func verifierAcceptsMixedTerminators() {
        let pairs: [([UInt8], [[UInt8]])] = [
            (bytes("hello\n"), [bytes("hello")]),
            (bytes("\n"), [[]]),
            (bytes("\r\n"), [[]]),
            (bytes("a\r\nb\nc\r\n"), [bytes("a"), bytes("b"), bytes("c")]),
            (bytes("x\ry\n"), [bytes("x\ry")]),
            (bytes("a\r\r\n"), [bytes("a\r")]),
            (bytes("abcd\n"), [bytes("abcd")]),
            (bytes("abcd\r\n"), [bytes("abcd")]),
            (bytes("\n\n"), [[], []]),
        ]
        let failures = DecoderVerifier<LineDecoder>.verify(inputOutputPairs: pairs) {
            LineDecoder(maxLineLength: 5)
        }
        #expect(failures.isEmpty)
    }

    @Test("Twisted's LineOnlyReceiver buffer decodes byte by byte")
    func twistedLineOnlyBuffer() throws {
        let buffer = "foo\n    bleakness\n    desolation\n    plastic forks\n    "
        var d = LineDecoder()
        var got: [[UInt8]] = []
        for b in bytes(buffer) {
            d.feed([b])
            while let l = try d.next() { got.append(l) }
        }
        let expected = buffer.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .map { bytes(String($0)) }
        #expect(got == expected)
        #expect(throws: LineError.unterminatedLine(length: 4)) { try d.finish() }
    }

    @Test("A line of exactly the maximum length is accepted and one byte more is refused")
    func maxAndMaxPlusOne() throws {
        var d = LineDecoder(maxLineLength: 8)
        #expect(try decodeAll(&d, bytes("12345678\n12345678\r\n")) == [bytes("12345678"), bytes("12345678")])
        let failures = DecoderVerifier<LineDecoder>.verifyRejects(
            bytes("123456789\n"), makeDecoder: { LineDecoder(maxLineLength: 8) },
            matching: { ($0 as? LineError) == .lineTooLong(length: 9) })
        #expect(failures.isEmpty)
    }

    @Test("An over-long line is refused before its newline arrives")
    func tooLongBeforeNewline() throws {
        var d = LineDecoder(maxLineLength: 4)
        d.feed(bytes("abcd"))
        #expect(try d.next() == nil)
        d.feed(bytes("e"))
        #expect(throws: LineError.lineTooLong(length: 5)) { try d.next() }
        #expect(throws: LineError.lineTooLong(length: 5)) { try d.next() }
    }

    @Test("A maximum-length line whose \\r and \\n arrive separately is accepted")
    func partialDelimiterAtMax() throws {
        var d = LineDecoder(maxLineLength: 4)
        #expect(try decodeAll(&d, bytes("xxxx")) == [])
        #expect(try decodeAll(&d, bytes("\r")) == [])
        #expect(try decodeAll(&d, bytes("\nxxx")) == [bytes("xxxx")])
        // Not quite over: max bytes plus the first half of the delimiter is still pending.
        var e = LineDecoder(maxLineLength: 16_384)
        #expect(try decodeAll(&e, [UInt8](repeating: 0x78, count: 16_384) + bytes("\r")) == [])
    }

    @Test("After an over-long complete line the decoder resyncs on the next line")
    func resyncAfterCompleteLongLine() throws {
        var d = LineDecoder(maxLineLength: 4)
        d.feed(bytes("abcdefgh\nok\n"))
        #expect(throws: LineError.lineTooLong(length: 8)) { try d.next() }
        d.discardUntilNextLine()
        #expect(try d.next() == bytes("ok"))
        #expect(try d.next() == nil)
        try d.finish()
    }

    @Test("After an over-long partial line the rest of it is discarded as it arrives")
    func resyncAfterPartialLongLine() throws {
        var d = LineDecoder(maxLineLength: 4)
        d.feed(bytes("abcdefg"))
        #expect(throws: LineError.lineTooLong(length: 7)) { try d.next() }
        d.discardUntilNextLine()
        #expect(try decodeAll(&d, bytes("hijklmnop")) == [])
        #expect(try decodeAll(&d, bytes("qrs\r\nok\r\nz")) == [bytes("ok")])
        #expect(throws: LineError.unterminatedLine(length: 1)) { try d.finish() }
        #expect(d.takeUnterminatedLine() == bytes("z"))
        try d.finish()
    }

    @Test("The unterminated last line can be taken at the end of input, without a trailing \\r")
    func takeUnterminated() throws {
        var d = LineDecoder()
        #expect(try decodeAll(&d, bytes("one\ntwo\r")) == [bytes("one")])
        #expect(d.takeUnterminatedLine() == bytes("two"))
        #expect(d.takeUnterminatedLine() == nil)
        try d.finish()
    }

    @Test("A long line fed one byte at a time is not rescanned (linear time)")
    func dripFedLongLine() throws {
        let n = 300_000
        var d = LineDecoder(maxLineLength: 1_000_000)
        let input = [UInt8](repeating: 0x61, count: n) + bytes("\n")
        var got: [[UInt8]] = []
        for b in input {
            d.feed([b])
            if let l = try d.next() { got.append(l) }
        }
        #expect(got.count == 1 && got[0].count == n)
    }

    @Test("The encoder appends \\n")
    func encoder() {
        var out: [UInt8] = []
        bytes("hi").withUnsafeBytes { LineEncoder.append($0, to: &out) }
        #expect(out == bytes("hi\n"))
    }
}
