import Testing
import XformCore
import XformFraming
import XformTesting

/// Records lines; `keepsConnectionOnLongLine` makes `lineLengthExceeded` survive and resync.
final class RecordingLines: LineReceiver {
    var lines: [[UInt8]] = []
    var exceeded = 0
    var endedCount = 0
    var keepsConnectionOnLongLine = false
    var onLine: ((RecordingLines, [UInt8]) -> Void)?

    override func lineReceived(_ line: UnsafeRawBufferPointer) {
        let l = Array(line)
        lines.append(l)
        onLine?(self, l)
    }

    override func lineLengthExceeded() {
        exceeded += 1
        if keepsConnectionOnLongLine {
            sendLine("error: line too long")
        } else {
            super.lineLengthExceeded()
        }
    }

    override func inputEnded() {
        endedCount += 1
        super.inputEnded()
    }
}

func connectedLines(maxLineLength: Int = 64, deliversConnectionLost: Bool = false) -> (RecordingLines, StringTransport) {
    let p = RecordingLines(maxLineLength: maxLineLength)
    let t = StringTransport(deliversConnectionLost: deliversConnectionLost)
    t.connect(p)
    return (p, t)
}

@Suite("LineReceiver")
struct LineReceiverTests {
    @Test("Lines ending in \\n and \\r\\n, and empty lines, are received in any chunking")
    func mixedTerminators() {
        let input = bytes("len 10\r\n\n0123456789\r\n\r\nfoo 123\nlast\r\n")
        let expected = ["len 10", "", "0123456789", "", "foo 123", "last"].map(bytes)
        for size in 1...9 {
            let (p, t) = connectedLines()
            for c in chunks(input, size: size) { t.receive(c) }
            #expect(p.lines == expected, "chunk size \(size)")
        }
        let (p, t) = connectedLines()
        t.receive(input)
        #expect(p.lines == expected)
    }

    @Test("A line of exactly the maximum length is accepted; one byte more closes the connection")
    func maxAndMaxPlusOne() {
        let (p, t) = connectedLines(maxLineLength: 6)
        t.receive("xxxxxx\r\nyyyyyy\n")
        #expect(p.lines == [bytes("xxxxxx"), bytes("yyyyyy")])
        #expect(!t.disconnecting)
        let (q, u) = connectedLines(maxLineLength: 6)
        u.receive("xxxxxxx\r\nr")
        #expect(u.disconnecting)
        #expect(q.exceeded == 1)
        #expect(q.lines.isEmpty)
    }

    @Test("An over-long unfinished line closes the connection without waiting for its newline")
    func longUnfinishedLine() {
        let (p, t) = connectedLines()
        for _ in 0..<64 { t.receive("x") }
        #expect(!t.disconnecting)
        t.receive("x")
        #expect(t.disconnecting)
        #expect(p.exceeded == 1)
    }

    @Test("A maximum-length line whose delimiter is split across packets is accepted")
    func partialDelimiter() {
        let (p, t) = connectedLines(maxLineLength: 4)
        t.receive("xxx")
        t.receive("\r")
        t.receive("\nxxx")
        #expect(!t.disconnecting)
        #expect(p.lines == [bytes("xxx")])
        let (q, u) = connectedLines(maxLineLength: 16_384)
        u.receive([UInt8](repeating: 0x78, count: 16_384) + bytes("\r"))
        #expect(!u.disconnecting)
        #expect(q.exceeded == 0)
    }

    @Test("When lineLengthExceeded keeps the connection, the rest of the long line is skipped")
    func resync() {
        let input = bytes("ok1\nxxxxxxxxxxxxxxxxxxxx\nok2\r\nyyyyyyyyyyyyyyyyyyyyyy")
            + bytes("yyyy\r\nok3\n")
        for size in [1, 2, 3, 7, 100] {
            let (p, t) = connectedLines(maxLineLength: 8)
            p.keepsConnectionOnLongLine = true
            for c in chunks(input, size: size) { t.receive(c) }
            #expect(p.lines == [bytes("ok1"), bytes("ok2"), bytes("ok3")], "chunk size \(size)")
            #expect(p.exceeded == 2, "chunk size \(size)")
            #expect(!t.disconnecting)
            #expect(t.string() == "error: line too long\nerror: line too long\n")
        }
    }

    @Test("Nothing is delivered after lineReceived calls loseConnection")
    func stopAfterClose() {
        let (p, t) = connectedLines(deliversConnectionLost: true)
        p.onLine = { p, l in if l == bytes("stop") { p.transport?.loseConnection() } }
        t.receive("twiddle1\ntwiddle2\nstop\nmore\nstuff\n")
        #expect(p.lines == ["twiddle1", "twiddle2", "stop"].map(bytes))
    }

    @Test("Pausing inside lineReceived holds the rest until resumeDelivery")
    func pausing() {
        for size in 1...9 {
            let (p, t) = connectedLines()
            p.onLine = { p, l in if l == bytes("pause") { p.pauseDelivery() } }
            for c in chunks(bytes("twiddle1\ntwiddle2\npause\ntwiddle3\n"), size: size) { t.receive(c) }
            #expect(p.lines == ["twiddle1", "twiddle2", "pause"].map(bytes), "chunk size \(size)")
            p.resumeDelivery()
            #expect(p.lines == ["twiddle1", "twiddle2", "pause", "twiddle3"].map(bytes), "chunk size \(size)")
        }
    }

    @Test("An unterminated last line is delivered at EOF, then inputEnded closes")
    func unterminatedLastLine() {
        let (p, t) = connectedLines()
        t.receive("upper hi\r\nlower HO\r")
        t.receiveEOF()
        #expect(p.lines == [bytes("upper hi"), bytes("lower HO")])
        #expect(p.endedCount == 1)
        #expect(t.disconnecting)
    }

    @Test("With deliversUnterminatedLastLine off, a partial last line is dropped at EOF")
    func unterminatedLastLineDropped() {
        let (p, t) = connectedLines()
        p.deliversUnterminatedLastLine = false
        t.receive("one\ntwo")
        t.receiveEOF()
        #expect(p.lines == [bytes("one")])
        #expect(p.endedCount == 1)
    }

    @Test("sendLine writes the line and \\n")
    func sendLine() {
        let (p, t) = connectedLines()
        p.sendLine(bytes("HELLO"))
        p.sendLine("")
        #expect(t.string() == "HELLO\n\n")
    }
}
