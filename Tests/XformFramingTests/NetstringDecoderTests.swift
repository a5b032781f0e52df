import Testing
import XformCore
import XformFraming
import XformTesting

@Suite("NetstringDecoder")
struct NetstringDecoderTests {
    @Test("Well-formed netstrings decode the same under every chunking")
    func verifierAcceptsWellFormedStreams() {
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: 515)
        let pairs: [([UInt8], [[UInt8]])] = [
            (bytes("0:,"), [[]]),
            (bytes("1:a,"), [bytes("a")]),
            (bytes("5:hello,5:world,"), [bytes("hello"), bytes("world")]),
            (bytes("4:1:a,,"), [bytes("1:a,")]),
            (bytes("6::today,"), [bytes(":today")]),
            (bytes("515:") + big + bytes(","), [big]),
            (bytes("10:0123456789,"), [bytes("0123456789")]),
        ]
        let failures = DecoderVerifier<NetstringDecoder>.verify(inputOutputPairs: pairs) {
            NetstringDecoder(maxLength: 699)
        }
        #expect(failures.isEmpty)
    }

    @Test("Empty netstrings (with length '0') can be received")
    func emptyNetstring() throws {
        var d = NetstringDecoder()
        #expect(try decodeAll(&d, bytes("0:,")) == [[]])
        try d.finish()
    }

    @Test("Netstrings with embedded netstrings are not confused by ':' and ',' in the payload")
    func nestedNetstring() throws {
        var d = NetstringDecoder()
        #expect(try decodeAll(&d, bytes("4:1:a,,")) == [bytes("1:a,")])
    }

    @Test("A stream of two netstrings can arrive with the second's length in the first chunk")
    func twoNetstringsSplitInLength() throws {
        var d = NetstringDecoder()
        #expect(try decodeAll(&d, bytes("1:a,1")) == [bytes("a")])
        #expect(try decodeAll(&d, bytes(":b,")) == [bytes("b")])
        try d.finish()
    }

    static let illegal: [(String, NetstringError)] = [
        ("9999999999999999999999", .lengthPrefixTooLong),
        ("abc", .badLength),
        ("4:abcde", .missingComma),
        ("0:a,", .missingComma),
        ("2:aaa,", .missingComma),
        (":aaa,", .badLength),
        ("3aaa,", .missingColon),
        ("aaa,", .badLength),
        ("aaa", .badLength),
        ("01:a,", .badLength),
        ("00:,", .badLength),
        ("-1:,", .badLength),
        (" 1:a,", .badLength),
    ]

    @Test("Illegal netstrings are refused with a typed error under every chunking", arguments: illegal)
    func illegalNetstrings(input: String, expected: NetstringError) {
        let failures = DecoderVerifier<NetstringDecoder>.verifyRejects(
            bytes(input), makeDecoder: { NetstringDecoder() },
            matching: { ($0 as? NetstringError) == expected })
        #expect(failures.isEmpty)
    }

    @Test("Twisted's over-MAX_LENGTH netstring is refused (MAX_LENGTH 50, length 51)")
    func overMaxTwisted() {
        let input = bytes("51:" + String(repeating: "a", count: 50) + "b,")
        let failures = DecoderVerifier<NetstringDecoder>.verifyRejects(
            input, makeDecoder: { NetstringDecoder(maxLength: 50) },
            matching: { ($0 as? NetstringError) == .tooLong(declared: 51) })
        #expect(failures.isEmpty)
    }

    @Test("A netstring of exactly the maximum length is accepted")
    func exactlyMaxAccepted() throws {
        var d = NetstringDecoder(maxLength: 12)
        let payload = bytes("abcdefghijkl")
        #expect(try decodeAll(&d, bytes("12:") + payload + bytes(",")) == [payload])
    }

    @Test("A declared length one over the maximum is refused as soon as its digits are read")
    func maxPlusOneRefusedAtOnce() {
        var d = NetstringDecoder(maxLength: 11)
        d.feed(bytes("12"))
        #expect(throws: NetstringError.tooLong(declared: 12)) { try d.next() }
        // The decoder stays broken.
        d.feed(bytes(":aaaaaaaaaaaa,"))
        #expect(throws: NetstringError.tooLong(declared: 12)) { try d.next() }
        #expect(throws: NetstringError.tooLong(declared: 12)) { try d.finish() }
    }

    @Test("A length prefix with more digits than the maximum is refused before conversion")
    func tooManyDigitsRefused() throws {
        var d = NetstringDecoder(maxLength: 99)
        d.feed(bytes("10"))
        #expect(try d.next() == nil)
        d.feed(bytes("0"))
        #expect(throws: NetstringError.lengthPrefixTooLong) { try d.next() }
    }

    @Test("A huge declared length is refused from the prefix alone, with no payload needed")
    func hugeLengthRefusedWithoutPayload() throws {
        var d = NetstringDecoder(maxLength: 10)
        d.feed(bytes("1000000000:"))
        #expect(throws: NetstringError.lengthPrefixTooLong) { try d.next() }
        var e = NetstringDecoder()
        e.feed(bytes("100000:"))
        #expect(throws: NetstringError.lengthPrefixTooLong) { try e.next() }
        var f = NetstringDecoder(maxLength: 1000)
        f.feed(bytes("2"))
        #expect(try f.next() == nil)
        f.feed(bytes("000"))
        #expect(throws: NetstringError.tooLong(declared: 2000)) { try f.next() }
    }

    @Test("A maximum of zero accepts only the empty netstring")
    func zeroMax() throws {
        var d = NetstringDecoder(maxLength: 0)
        #expect(try decodeAll(&d, bytes("0:,0:,")) == [[], []])
        d.feed(bytes("1:a,"))
        #expect(throws: NetstringError.tooLong(declared: 1)) { try d.next() }
    }

    @Test("finish() reports a netstring cut off by the end of input")
    func finishReportsPartialFrame() throws {
        var d = NetstringDecoder()
        #expect(try decodeAll(&d, bytes("5:hel")) == [])
        #expect(throws: NetstringError.incompleteFrame(buffered: 3)) { try d.finish() }
        var e = NetstringDecoder()
        #expect(try decodeAll(&e, bytes("12")) == [])
        #expect(throws: NetstringError.incompleteFrame(buffered: 0)) { try e.finish() }
        var f = NetstringDecoder()
        #expect(try decodeAll(&f, bytes("5:hello")) == [])
        #expect(throws: NetstringError.incompleteFrame(buffered: 5)) { try f.finish() }
    }

    @Test("Encoded strings fed back in chunks of 1 to 9 bytes decode to the originals")
    func reFeedEncodedInChunks() throws {
        let strings = ["hello", "world", "how", "are", "you123", ":today", String(repeating: "a", count: 515)]
            .map(bytes)
        var encoded: [UInt8] = []
        for s in strings { s.withUnsafeBytes { NetstringEncoder.append($0, to: &encoded) } }
        for size in 1...9 {
            var d = NetstringDecoder(maxLength: 699)
            var got: [[UInt8]] = []
            for c in chunks(encoded, size: size) {
                d.feed(c)
                while let f = try d.next() { got.append(f) }
            }
            #expect(got == strings, "chunk size \(size)")
            try d.finish()
        }
    }

    @Test("A large payload fed one byte at a time decodes in linear time")
    func dripFedLargePayload() throws {
        let n = 300_000
        var d = NetstringDecoder(maxLength: 1_000_000)
        let input = bytes("\(n):") + [UInt8](repeating: 0x61, count: n) + bytes(",")
        var got: [[UInt8]] = []
        try input.withUnsafeBytes { raw in
            for i in 0..<raw.count {
                d.feed(UnsafeRawBufferPointer(rebasing: raw[i..<i + 1]))
                if let f = try d.next() { got.append(f) }
            }
        }
        #expect(got.count == 1)
        #expect(got.first?.count == n)
    }

    @Test("The encoder frames payloads as <length>:<payload>,")
    func encoder() {
        #expect(NetstringEncoder.encode(bytes("hello")) == bytes("5:hello,"))
        #expect(NetstringEncoder.encode([]) == bytes("0:,"))
        #expect(Array(NetstringEncoder.encode([UInt8](repeating: 1, count: 1234)).prefix(5)) == bytes("1234:"))
        NetstringEncoder.withHeader(length: Int.max) { header in
            #expect(Array(header) == bytes("\(Int.max):"))
        }
        var out = bytes("x")
        bytes("27").withUnsafeBytes { NetstringEncoder.append($0, to: &out) }
        #expect(out == bytes("x2:27,"))
    }

    @Test("Writing a netstring to a transport sends header, payload and comma")
    func writeToTransport() {
        let t = StringTransport()
        t.writeNetstring(bytes("cummingsify.HERE IS MY POEM"))
        #expect(t.string() == "27:cummingsify.HERE IS MY POEM,")
    }
}
