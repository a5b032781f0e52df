import Testing
import XformCore
import XformServer
import XformTesting

/// The byte-exact examples of protocol-spec/ are replayed against the server protocols, so the
/// spec cannot drift from the code.
@Suite("Protocol spec examples")
struct SpecExampleTests {
    static let netstringExamples = SpecExample.load("netstring.txt")
    static let lineExamples = SpecExample.load("line.txt")

    @Test("The example files were found and parsed")
    func examplesExist() {
        #expect(Self.netstringExamples.count >= 20)
        #expect(Self.lineExamples.count >= 15)
    }

    func replay(_ example: SpecExample, connect: (Harness) -> StringTransport, dripFeed: Bool) {
        let harness = Harness()
        let transport = connect(harness)
        if dripFeed {
            for byte in example.send where !transport.disconnecting { transport.receive([byte]) }
        } else {
            transport.receive(example.send)
        }
        if example.eof { transport.receiveEOF() }
        #expect(transport.value() == example.reply, "\(transport.string().debugDescription)")
        #expect(transport.disconnecting == example.closed)
    }

    @Test("Netstring example, all bytes in one read", arguments: netstringExamples)
    func netstringAllAtOnce(_ example: SpecExample) {
        replay(example, connect: { $0.netstring().1 }, dripFeed: false)
    }

    @Test("Netstring example, one byte per read", arguments: netstringExamples.filter { !$0.title.contains("one read") })
    func netstringByteAtATime(_ example: SpecExample) {
        replay(example, connect: { $0.netstring().1 }, dripFeed: true)
    }

    @Test("Line example, all bytes in one read", arguments: lineExamples)
    func lineAllAtOnce(_ example: SpecExample) {
        replay(example, connect: { $0.line().1 }, dripFeed: false)
    }

    @Test("Line example, one byte per read", arguments: lineExamples)
    func lineByteAtATime(_ example: SpecExample) {
        replay(example, connect: { $0.line().1 }, dripFeed: true)
    }
}
