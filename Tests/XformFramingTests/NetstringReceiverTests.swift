import Testing
import XformCore
import XformFraming
import XformTesting

/// Records what it receives; `onString` lets a test act from inside `stringReceived`.
final class RecordingNetstring: NetstringReceiver {
    var received: [[UInt8]] = []
    var errors: [NetstringError] = []
    var endedCount = 0
    /// Base addresses of delivered payloads, to tell the zero-copy path from the buffered one.
    var addresses: [UnsafeRawPointer?] = []
    var onString: ((RecordingNetstring, [UInt8]) -> Void)?

    override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        let s = Array(payload)
        received.append(s)
        addresses.append(payload.baseAddress)
        onString?(self, s)
    }

    override func framingError(_ error: NetstringError) {
        errors.append(error)
        super.framingError(error)
    }

    override func inputEnded() {
        endedCount += 1
        super.inputEnded()
    }
}

/// A connected receiver and its transport (the test keeps both alive).
func connectedNetstring(maxLength: Int = 50, backlogLimit: Int? = nil, deliversConnectionLost: Bool = false)
    -> (RecordingNetstring, StringTransport)
{
    let p = RecordingNetstring(maxLength: maxLength, backlogLimit: backlogLimit)
    let t = StringTransport(deliversConnectionLost: deliversConnectionLost)
    t.connect(p)
    return (p, t)
}

@Suite("NetstringReceiver")
struct NetstringReceiverTests {
    static let illegalStrings = [
        "9999999999999999999999", "abc", "4:abcde",
        "51:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab,",
    ]

    @Test("Illegal strings fed one byte at a time close the transport", arguments: illegalStrings)
    func illegalStringsClose(input: String) {
        let (p, t) = connectedNetstring()
        for b in bytes(input) { t.receive([b]) }
        #expect(t.disconnecting)
        #expect(p.errors.count == 1)
        #expect(p.received.isEmpty)
    }

    static let borderCases: [(String, NetstringError)] = [
        ("2:aaa,", .missingComma), ("0:a,", .missingComma), (":aaa,", .badLength),
        ("3aaa,", .missingColon), ("aaa,", .badLength), ("aaa", .badLength),
    ]

    @Test("Twisted's malformed border cases are refused and close the connection", arguments: borderCases)
    func borderCasesClose(input: String, expected: NetstringError) {
        let (p, t) = connectedNetstring()
        t.receive(input)
        #expect(t.disconnecting)
        #expect(p.errors == [expected])
    }

    @Test("Empty, one- and two-character and nested netstrings are received")
    func simpleStrings() {
        let (p, t) = connectedNetstring()
        t.receive("0:,")
        t.receive("1:a,")
        t.receive("2:ab,")
        t.receive("4:1:a,,")
        #expect(p.received == [[], bytes("a"), bytes("ab"), bytes("1:a,")])
        #expect(!t.disconnecting)
    }

    @Test("Netstrings can be received in portions, even with the length split")
    func portions() {
        let (p, t) = connectedNetstring()
        for part in ["1", "0:01234", "56789", ","] { t.receive(part) }
        for part in ["2", ":", "a", "b", ","] { t.receive(part) }
        t.receive("1:a,1")
        t.receive(":b,")
        #expect(p.received == [bytes("0123456789"), bytes("ab"), bytes("a"), bytes("b")])
    }

    @Test("Strings sent and fed back in chunks of 1 to 9 bytes are received intact")
    func bufferTest() {
        let strings = ["hello", "world", "how", "are", "you123", ":today", String(repeating: "a", count: 515)]
            .map(bytes)
        for size in 1...9 {
            let (p, t) = connectedNetstring(maxLength: 699)
            for s in strings { p.sendString(s) }
            let out = t.take()
            for c in chunks(out, size: size) { t.receive(c) }
            #expect(p.received == strings, "chunk size \(size)")
        }
    }

    @Test("A netstring wholly inside the chunk is delivered as a pointer into the chunk")
    func zeroCopyPath() {
        let (p, _) = connectedNetstring()
        let input = bytes("5:hello,5:world,3:pa")
        input.withUnsafeBytes { chunk in
            p.dataReceived(chunk)
            let lo = chunk.baseAddress!
            let hi = lo + chunk.count
            #expect(p.addresses.count == 2)
            for a in p.addresses {
                #expect(a != nil && a! >= lo && a! < hi)
            }
        }
        #expect(p.bufferedByteCount == 2)
        p.dataReceived(bytes("y,"))
        #expect(p.received == [bytes("hello"), bytes("world"), bytes("pay")])
    }

    @Test("After a frame completed from the buffer, the rest of the chunk is parsed in place again")
    func backToZeroCopyAfterSplitFrame() {
        let (p, _) = connectedNetstring()
        p.dataReceived(bytes("5:hel"))
        let second = bytes("lo,5:world,2:ab,")
        second.withUnsafeBytes { chunk in
            p.dataReceived(chunk)
            let lo = chunk.baseAddress!
            #expect(p.addresses.count == 3)
            // "hello" came from the buffer; "world" and "ab" from the chunk itself.
            #expect(!(p.addresses[0]! >= lo && p.addresses[0]! < lo + chunk.count))
            for a in p.addresses.dropFirst() { #expect(a! >= lo && a! < lo + chunk.count) }
        }
        #expect(p.received == [bytes("hello"), bytes("world"), bytes("ab")])
        #expect(p.bufferedByteCount == 0)
    }

    @Test("The zero-copy and buffered paths deliver the same frames under any chunking")
    func sameFramesEveryChunking() {
        var stream: [UInt8] = []
        var expected: [[UInt8]] = []
        var rng = SplitMix64(seed: 42)
        for i in 0..<200 {
            let n = Int(rng.next() % 80)
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            expected.append(payload)
            payload.withUnsafeBytes { NetstringEncoder.append($0, to: &stream) }
        }
        let (whole, _) = connectedNetstring(maxLength: 100)
        whole.dataReceived(stream)
        #expect(whole.received == expected)
        for seed in UInt64(0)..<10 {
            let (p, _) = connectedNetstring(maxLength: 100)
            for c in randomChunks(stream, seed: seed, max: 97) { p.dataReceived(c) }
            #expect(p.received == expected, "seed \(seed)")
            #expect(p.bufferedByteCount == 0)
        }
        let (drip, _) = connectedNetstring(maxLength: 100)
        for b in stream { drip.dataReceived([b]) }
        #expect(drip.received == expected)
    }

    @Test("A netstring of exactly the maximum length is accepted, one byte more is refused")
    func exactlyMax() {
        let (p, t) = connectedNetstring(maxLength: 10)
        t.receive("10:0123456789,")
        #expect(p.received == [bytes("0123456789")])
        #expect(!t.disconnecting)
        let (q, u) = connectedNetstring(maxLength: 10)
        u.receive("11:")
        #expect(u.disconnecting)
        #expect(q.errors == [.tooLong(declared: 11)])
    }

    @Test("A declared length of 10^9 is refused after three digits, with nothing buffered")
    func hugeLengthRefusedEarly() {
        let (p, t) = connectedNetstring(maxLength: 10)
        let input = bytes("1000000000:")
        for (i, b) in input.enumerated() {
            t.receive([b])
            #expect(t.disconnecting == (i >= 2), "after byte \(i)")
            if t.disconnecting { break }
        }
        #expect(p.errors == [.lengthPrefixTooLong])
        #expect(p.bufferedByteCount == 0)
        // Nothing more is parsed or delivered.
        t.receive("1:a,")
        #expect(p.received.isEmpty)
        #expect(p.errors.count == 1)
    }

    @Test("Nothing is delivered after stringReceived calls loseConnection")
    func noDeliveryAfterLoseConnection() {
        let (p, t) = connectedNetstring()
        p.onString = { p, s in if s == bytes("stop") { p.transport?.loseConnection() } }
        t.receive("1:a,4:stop,1:b,1:c,")
        #expect(p.received == [bytes("a"), bytes("stop")])
        t.receive("1:d,")
        #expect(p.received.count == 2)
    }

    @Test("A close that delivers connectionLost inside stringReceived stops delivery safely")
    func synchronousConnectionLost() {
        let (p, t) = connectedNetstring(deliversConnectionLost: true)
        p.onString = { p, s in if s == bytes("stop") { p.transport?.loseConnection() } }
        // Buffered path: split so the frames come from the receiver's buffer.
        t.receive("1:a,4:st")
        t.receive("op,1:b,")
        #expect(p.received == [bytes("a"), bytes("stop")])
        #expect(t.lostReason == .done)
        #expect(!p.connected)
    }

    @Test("Pausing delivery holds frames until resumeDelivery, which delivers them at once in order")
    func pauseResume() {
        let (p, t) = connectedNetstring()
        p.onString = { p, s in if s.first == UInt8(ascii: "p") { p.pauseDelivery() } }
        t.receive("1:a,2:p1,1:b,2:p2,1:c,1:")
        #expect(p.received == [bytes("a"), bytes("p1")])
        #expect(p.isDeliveryPaused)
        t.receive("d,")
        #expect(p.received.count == 2)
        p.resumeDelivery()
        #expect(p.received == [bytes("a"), bytes("p1"), bytes("b"), bytes("p2")])
        p.resumeDelivery()
        #expect(p.received == [bytes("a"), bytes("p1"), bytes("b"), bytes("p2"), bytes("c"), bytes("d")])
        #expect(p.bufferedByteCount == 0)
        // Back on the fast path.
        t.receive("1:e,")
        #expect(p.received.last == bytes("e"))
    }

    @Test("Pausing and resuming inside the same stringReceived keeps delivering")
    func pauseAndResumeInside() {
        let (p, t) = connectedNetstring()
        p.onString = { p, _ in
            p.pauseDelivery()
            p.resumeDelivery()
        }
        t.receive("1:a,1:b,1:c,")
        #expect(p.received == [bytes("a"), bytes("b"), bytes("c")])
    }

    @Test("Bytes received re-entrantly from inside stringReceived come after the rest of the chunk")
    func reentrantData() {
        let (p, _) = connectedNetstring()
        var injected = false
        p.onString = { p, s in
            if s == bytes("a") && !injected {
                injected = true
                p.dataReceived(bytes("1:z,"))
            }
        }
        // The stream is "1:a,1:b,1:" followed by the injected "1:z,": the third netstring's
        // one-byte payload "1" is followed by ':' instead of ','.
        p.dataReceived(bytes("1:a,1:b,1:"))
        #expect(p.received == [bytes("a"), bytes("b")])
        #expect(p.errors == [.missingComma])
    }

    @Test("Re-entrant bytes arriving between whole frames keep their place in the stream")
    func reentrantDataOrdered() {
        let (p, _) = connectedNetstring()
        var injected = false
        p.onString = { p, s in
            if s == bytes("a") && !injected {
                injected = true
                p.dataReceived(bytes("1:z,"))
            }
        }
        p.dataReceived(bytes("1:a,1:b,"))
        p.dataReceived(bytes("1:c,"))
        #expect(p.received == [bytes("a"), bytes("b"), bytes("z"), bytes("c")])
        #expect(p.errors.isEmpty)
    }

    @Test("At EOF buffered netstrings are delivered after resume, then inputEnded closes")
    func eofAfterPause() {
        let (p, t) = connectedNetstring()
        p.onString = { p, s in if s == bytes("a") { p.pauseDelivery() } }
        t.receive("1:a,1:b,")
        t.receiveEOF()
        #expect(p.endedCount == 0)
        #expect(!t.disconnecting)
        p.resumeDelivery()
        #expect(p.received == [bytes("a"), bytes("b")])
        #expect(p.endedCount == 1)
        #expect(t.disconnecting)
    }

    @Test("A netstring cut off by EOF is a framing error")
    func eofMidFrame() {
        let (p, t) = connectedNetstring()
        t.receive("1:a,3:ab")
        t.receiveEOF()
        #expect(p.received == [bytes("a")])
        #expect(p.errors == [.incompleteFrame(buffered: 2)])
        #expect(p.endedCount == 0)
        #expect(t.disconnecting)
    }

    @Test("While paused, a backlog over the limit pauses reading until delivery resumes")
    func backlogPausesReading() {
        let (p, t) = connectedNetstring(maxLength: 50, backlogLimit: 8)
        p.pauseDelivery()
        t.receive("1:a,")
        #expect(!t.readingPaused)
        t.receive("1:b,1:c,")
        #expect(t.readingPaused)
        p.resumeDelivery()
        #expect(!t.readingPaused)
        #expect(p.received == [bytes("a"), bytes("b"), bytes("c")])
    }

    @Test("Write-buffer back-pressure and backlog pausing do not undo each other")
    func pauseReasonsCombine() {
        let (p, t) = connectedNetstring(maxLength: 50, backlogLimit: 2)
        p.writeBufferFull()
        #expect(t.readingPaused)
        p.pauseDelivery()
        t.receive("1:a,")
        p.resumeDelivery()
        // The write buffer is still full: reading stays paused.
        #expect(t.readingPaused)
        p.writeBufferDrained()
        #expect(!t.readingPaused)
    }

    @Test("sendString frames its argument")
    func sendString() {
        let (p, t) = connectedNetstring()
        p.sendString(bytes("HERE IS MY POEM"))
        #expect(t.string() == "15:HERE IS MY POEM,")
    }
}

@Suite("NetstringReceiver: large frames read straight into its buffer")
struct NetstringDirectReadTests {
    /// Feeds `input` as a transport would: the first `first` bytes as a chunk, then the rest in
    /// direct reads of at most `step` bytes whenever the receiver offers room, chunks otherwise.
    func feed(_ p: RecordingNetstring, _ input: [UInt8], first: Int, step: Int) -> Int {
        var directReads = 0
        input.withUnsafeBytes { all in
            p.dataReceived(UnsafeRawBufferPointer(rebasing: all[0..<first]))
            var i = first
            while i < input.count {
                let n = min(step, input.count - i)
                if let room = p.directReadSpace() {
                    let m = min(n, room.count)
                    room.baseAddress!.copyMemory(from: all.baseAddress! + i, byteCount: m)
                    p.directDataReceived(m)
                    directReads += 1
                    i += m
                } else {
                    p.dataReceived(UnsafeRawBufferPointer(rebasing: all[i..<(i + n)]))
                    i += n
                }
            }
        }
        return directReads
    }

    @Test("A 1 MiB netstring, then a small one in the same reads, arrive whole and in order")
    func largeThenSmall() {
        let (p, _) = connectedNetstring(maxLength: 2 << 20)
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let input = bytes("\(big.count):") + big + bytes(",5:hello,")
        let direct = feed(p, input, first: 65_536, step: 100_003)
        #expect(direct > 0, "the rest of the large frame was read straight in")
        #expect(p.received == [big, bytes("hello")])
        #expect(p.errors.isEmpty)
        #expect(p.bufferedByteCount == 0)
    }

    @Test("No room is offered for small frames, nor while delivery is paused")
    func noRoomForSmallOrPaused() {
        let (p, _) = connectedNetstring(maxLength: 2 << 20)
        p.dataReceived(bytes("100:abc"))
        #expect(p.directReadSpace() == nil, "a frame under 256 KiB is copied as usual")
        let (q, _) = connectedNetstring(maxLength: 2 << 20)
        q.dataReceived(bytes("300000:abc"))
        #expect(q.directReadSpace() != nil)
        q.pauseDelivery()
        #expect(q.directReadSpace() == nil)
    }

    @Test("A malformed frame after a large one is still a framing error")
    func errorAfterLarge() {
        let (p, _) = connectedNetstring(maxLength: 2 << 20)
        let big = [UInt8](repeating: 65, count: 300_000)
        let input = bytes("\(big.count):") + big + bytes(",x")
        _ = feed(p, input, first: 1000, step: 70_000)
        #expect(p.received == [big])
        #expect(p.errors.count == 1)
    }
}
