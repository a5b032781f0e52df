import Testing
import XformCore
@testable import XformReactor

@Suite("Output memory of a connection")
struct OutputMemoryTests {
    @Test("A reply sent whole leaves the connection no output memory; one the kernel cannot take whole arrives intact")
    func borrowedWriteSpace() async {
        // Bytes that change with their position, so a misplaced or lost copy shows.
        let size = 3 * 1024 * 1024
        let pattern = (0..<size).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let seen = Locked<(ownsAfterSmall: Bool?, got: Int, intact: Bool)>((nil, 0, false))
        let run = await withReactor(timeout: .seconds(60)) { reactor in
            let server = ServerFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onData = { p, data in
                    if data.first == UInt8(ascii: "s") {
                        p.transport?.write(Array("small".utf8))
                        // Checked once this event's output is flushed.
                        reactor.callLater(.zero) {
                            let owns = (p.transport as? TCPConnection)?.out.ownsMemory
                            seen.update { $0.ownsAfterSmall = owns }
                        }
                    } else {
                        pattern.withUnsafeBytes { p.transport?.write($0) }
                        p.transport?.loseConnection()
                    }
                }
                return p
            }
            let port = try reactor.listenTCP(port: 0, factory: server, interface: "127.0.0.1", backlog: 4)
            let client = ClientFactoryOf { _ in
                let p = ScriptedProtocol()
                var phase = 0
                var got: [UInt8] = []
                p.onMade = { p in p.transport?.write(Array("s".utf8)) }
                p.onData = { p, d in
                    if phase == 0 {
                        phase = 1
                        // Wait for the server's check before asking for the big reply.
                        reactor.callLater(.milliseconds(20)) { p.transport?.write(Array("b".utf8)) }
                        return
                    }
                    got.append(contentsOf: d)
                }
                p.onLost = { _, _ in
                    seen.update { $0.got = got.count; $0.intact = got == pattern }
                    reactor.stop()
                }
                return p
            }
            reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(seen.value.ownsAfterSmall == false)
        #expect(seen.value.got == size)
        #expect(seen.value.intact)
    }

    @Test("Bytes left unsent in borrowed space move to memory of the buffer's own, in order")
    func unsentBytesAreKept() {
        let space = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
        defer { space.deallocate() }
        var out = OutputBuffer()
        out.borrow(space)
        #expect(!out.ownsMemory)
        Array("hello, world".utf8).withUnsafeBytes { out.append($0) }
        out.consume(7)  // "hello, " was sent
        out.returnBorrowed()
        space.initializeMemory(as: UInt8.self, repeating: 0)  // the next borrower overwrites it
        #expect(out.ownsMemory)
        #expect(Array(out.bytes) == Array("world".utf8))
        // Outgrowing borrowed space also moves to memory of its own, keeping what is queued.
        var big = OutputBuffer()
        big.borrow(space)
        Array("abc".utf8).withUnsafeBytes { big.append($0) }
        [UInt8](repeating: 1, count: 100).withUnsafeBytes { big.append($0) }
        big.returnBorrowed()
        space.initializeMemory(as: UInt8.self, repeating: 0)
        #expect(big.ownsMemory && big.count == 103 && Array(big.bytes.prefix(3)) == Array("abc".utf8))
        out.deallocate()
        big.deallocate()
    }
}
