import Glibc
import Testing
import XformCore
import XformReactor

@Suite("Stopping a listener")
struct ListenerDrainTests {
    /// A blocking client socket connected to 127.0.0.1:`port` (the kernel completes the
    /// handshake and queues it for accept), with a receive timeout.
    static func connectBlocking(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 {
            close(fd)
            return -1
        }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Everything the peer sends until it closes (or an error: then nil).
    static func readAll(_ fd: Int32) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return out }
            if n < 0 { return nil }  // ECONNRESET: the connection was reset unanswered
            out += buffer[0..<n]
        }
    }

    @Test("Connections queued when stopListening is called are accepted and served, not reset")
    func drainsAcceptQueue() async {
        let clients = Locked<[Int32]>([])
        let built = Locked(0)
        let run = await withReactor { reactor in
            let factory = ServerFactoryOf { _ in
                built.update { $0 += 1 }
                let p = ScriptedProtocol()
                p.onMade = { p in
                    p.transport?.write(Array("shutting_down".utf8))
                    p.transport?.loseConnection()
                }
                return p
            }
            let port = try reactor.listenTCP(port: 0, factory: factory, interface: "127.0.0.1", backlog: 64)
            // The reactor is not running yet: these five wait in the kernel's accept queue.
            clients.update { c in for _ in 0..<5 { c.append(Self.connectBlocking(port.address.port)) } }
            _ = port.stopListening()
            reactor.callLater(.milliseconds(300)) { reactor.stop() }
        }
        #expect(!run.timedOut)
        #expect(run.setupError == nil)
        #expect(built.value == 5)
        for fd in clients.value {
            #expect(fd >= 0)
            guard fd >= 0 else { continue }
            #expect(Self.readAll(fd) == Array("shutting_down".utf8))
            close(fd)
        }
    }
}
