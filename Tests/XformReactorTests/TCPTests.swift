import Glibc
import Testing
import XformCore
import XformReactor

@Suite("EpollReactor TCP on 127.0.0.1")
struct TCPTests {
    @Test("An echo server answers 500 concurrent connections made from the same reactor")
    func echo500() async {
        struct Tally: Sendable {
            var ok = 0
            var bad = 0
            var failed: [String] = []
        }
        let tally = Locked(Tally())
        let total = 500
        let run = await withReactor(timeout: .seconds(60)) { reactor in
            let server = ServerFactoryOf { _ in EchoProtocol() }
            let port = try reactor.listenTCP(port: 0, factory: server, interface: "127.0.0.1", backlog: 1024)
            var finished = 0
            let finish = {
                finished += 1
                if finished == total { reactor.stop() }
            }
            for i in 0..<total {
                let payload = (0..<(1000 + i)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
                let factory = ClientFactoryOf(
                    { _ in
                        let p = ScriptedProtocol()
                        p.onMade = { p in p.transport?.write(payload) }
                        p.onData = { p, data in
                            p.received.append(contentsOf: data)
                            if p.received.count >= payload.count { p.transport?.loseConnection() }
                        }
                        p.onLost = { p, reason in
                            let good = p.received == payload && reason == .done
                            tally.update { good ? ($0.ok += 1) : ($0.bad += 1) }
                            finish()
                        }
                        return p
                    },
                    failed: { reason in
                        tally.update { $0.failed.append("\(reason)") }
                        finish()
                    })
                reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: factory, timeout: .seconds(30))
            }
        }
        #expect(!run.timedOut)
        #expect(run.setupError == nil)
        #expect(tally.value.ok == total)
        #expect(tally.value.bad == 0)
        #expect(tally.value.failed == [])
    }

    @Test("A client that half-closes still gets its reply, then both ends close cleanly")
    func halfClose() async {
        struct Seen: Sendable {
            var reply = ""
            var clientEnd: ConnectionEnd?
            var serverEnd: ConnectionEnd?
            var serverGot = ""
            var lostCalls = 0
        }
        let seen = Locked(Seen())
        let run = await withReactor { reactor in
            var ends = 0
            let ended = {
                ends += 1
                if ends == 2 { reactor.stop() }
            }
            let server = ServerFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onReadLost = { p in
                    let text = String(decoding: p.received, as: UTF8.self)
                    seen.update { $0.serverGot = text }
                    p.transport?.write("got:" + String(text.reversed()))
                    p.transport?.loseConnection()
                }
                p.onLost = { _, reason in
                    seen.update {
                        $0.serverEnd = reason
                        $0.lostCalls += 1
                    }
                    ended()
                }
                return p
            }
            let port = try reactor.listenTCP(port: 0, factory: server, interface: "127.0.0.1", backlog: 16)
            let client = ClientFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onMade = { p in
                    p.transport?.write("hello")
                    p.transport?.loseWriteConnection()
                }
                p.onLost = { p, reason in
                    seen.update {
                        $0.reply = String(decoding: p.received, as: UTF8.self)
                        $0.clientEnd = reason
                        $0.lostCalls += 1
                    }
                    ended()
                }
                return p
            }
            reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(seen.value.serverGot == "hello")
        #expect(seen.value.reply == "got:olleh")
        #expect(seen.value.clientEnd == .done)
        #expect(seen.value.serverEnd == .done)
        #expect(seen.value.lostCalls == 2)
    }

    @Test("A peer that never reads makes the server pause reading with bounded buffering, and it resumes once the peer reads")
    func backpressure() async {
        struct Seen: Sendable {
            var full = 0
            var drained = 0
            var maxBuffered = 0
            var echoedOK = false
            var echoed = 0
        }
        let seen = Locked(Seen())
        let total = 16 * 1024 * 1024
        var config = EpollReactor.Configuration()
        config.highWatermark = 64 * 1024
        config.lowWatermark = 16 * 1024
        let run = await withReactor(timeout: .seconds(60), configuration: config) { reactor in
            var clientProto: ScriptedProtocol?
            var resumeScheduled = false
            let server = ServerFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onData = { p, data in
                    p.transport?.write(data)
                    let b = p.transport?.bufferedByteCount ?? 0
                    seen.update { $0.maxBuffered = max($0.maxBuffered, b) }
                }
                p.onFull = { p in
                    seen.update { $0.full += 1 }
                    p.transport?.pauseReading()
                    if !resumeScheduled {
                        resumeScheduled = true
                        // Let the stalled state last a while, then let the client read.
                        reactor.callLater(.milliseconds(50)) { clientProto?.transport?.resumeReading() }
                    }
                }
                p.onDrained = { p in
                    seen.update { $0.drained += 1 }
                    p.transport?.resumeReading()
                }
                return p
            }
            let port = try reactor.listenTCP(port: 0, factory: server, interface: "127.0.0.1", backlog: 16)
            let client = ClientFactoryOf { _ in
                let p = ScriptedProtocol()
                clientProto = p
                var expected = 0
                var ok = true
                // Byte i of the stream is i % 251; checked with memcmp against this window.
                let window = (0..<(251 + 65536)).map { UInt8($0 % 251) }
                p.onMade = { p in
                    p.transport?.pauseReading()
                    var payload = [UInt8]()
                    payload.reserveCapacity(total + 251)
                    while payload.count < total { payload.append(contentsOf: window[0..<251]) }
                    payload.removeLast(payload.count - total)
                    p.transport?.write(payload)
                }
                p.onFull = { _ in }  // the client itself keeps its whole payload queued
                p.onDrained = { _ in }
                p.onData = { p, data in
                    var offset = 0
                    while offset < data.count {
                        let n = min(65536, data.count - offset)
                        let same = window.withUnsafeBytes { w in
                            memcmp(data.baseAddress! + offset, w.baseAddress! + expected % 251, n) == 0
                        }
                        if !same { ok = false }
                        offset += n
                        expected += n
                    }
                    if expected >= total {
                        seen.update {
                            $0.echoed = expected
                            $0.echoedOK = ok
                        }
                        p.transport?.loseConnection()
                        reactor.stop()
                    }
                }
                return p
            }
            reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(seen.value.echoed == total)
        #expect(seen.value.echoedOK)
        #expect(seen.value.full >= 1)
        #expect(seen.value.drained >= 1)
        // High watermark plus one read batch (4 reads of the 64 KiB buffer) at most.
        #expect(seen.value.maxBuffered <= 64 * 1024 + 4 * 64 * 1024)
    }

    @Test("Connecting to a port nobody listens on fails with .refused")
    func refused() async {
        let reason = Locked<ConnectError?>(nil)
        let run = await withReactor { reactor in
            let port = try reactor.listenTCP(
                port: 0, factory: ServerFactoryOf { _ in nil }, interface: "127.0.0.1", backlog: 1)
            let number = port.address.port
            _ = port.stopListening()
            let client = ClientFactoryOf(
                { _ in ScriptedProtocol() },
                failed: { r in
                    reason.update { $0 = r }
                    reactor.stop()
                })
            reactor.connectTCP(host: "127.0.0.1", port: number, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(reason.value == .refused)
    }

    @Test("A connect whose timeout runs out before the connection is made fails with .timedOut")
    func connectTimeout() async {
        // Timers run before I/O in each iteration, so a 1 ns timeout always expires before the
        // loopback connect completes is even looked at.
        let reason = Locked<ConnectError?>(nil)
        let made = Locked(0)
        let run = await withReactor { reactor in
            let port = try reactor.listenTCP(
                port: 0, factory: ServerFactoryOf { _ in EchoProtocol() }, interface: "127.0.0.1", backlog: 4)
            let client = ClientFactoryOf(
                { _ in
                    made.update { $0 += 1 }
                    return ScriptedProtocol()
                },
                failed: { r in
                    reason.update { $0 = r }
                    reactor.callLater(.milliseconds(5)) { reactor.stop() }
                })
            reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: client, timeout: .nanoseconds(1))
        }
        #expect(!run.timedOut)
        #expect(reason.value == .timedOut)
        #expect(made.value == 0)
    }

    @Test("An unresolvable host fails with .unknownHost, reported after connectTCP returns")
    func unknownHost() async {
        let log = Locked<[String]>([])
        let run = await withReactor { reactor in
            let client = ClientFactoryOf(
                { _ in ScriptedProtocol() },
                failed: { r in
                    log.update { $0.append("\(r)") }
                    reactor.stop()
                })
            reactor.connectTCP(host: "no such host.invalid", port: 1, factory: client, timeout: .seconds(5))
            log.update { $0.append("returned") }
        }
        #expect(!run.timedOut)
        #expect(log.value == ["returned", "\(ConnectError.unknownHost("no such host.invalid"))"])
    }

    @Test("loseConnection sends everything buffered before closing")
    func loseConnectionFlushes() async {
        let got = Locked<(count: Int, end: ConnectionEnd?)>((0, nil))
        let size = 2 * 1024 * 1024
        let run = await withReactor(timeout: .seconds(60)) { reactor in
            let server = ServerFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onMade = { p in
                    p.transport?.write([UInt8](repeating: 7, count: size))
                    p.transport?.loseConnection()
                }
                return p
            }
            let port = try reactor.listenTCP(port: 0, factory: server, interface: "127.0.0.1", backlog: 4)
            let client = ClientFactoryOf { _ in
                let p = ScriptedProtocol()
                var count = 0
                p.onData = { _, d in count += d.count }
                p.onLost = { _, reason in
                    got.update { $0 = (count, reason) }
                    reactor.stop()
                }
                return p
            }
            reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(got.value.count == size)
        #expect(got.value.end == .done)
    }

    @Test("abortConnection reports .lost once on both ends, after the protocol's call returns")
    func abort() async {
        struct Seen: Sendable {
            var serverEnds: [ConnectionEnd] = []
            var clientEnds: [ConnectionEnd] = []
            var lostInsideAbort = false
        }
        let seen = Locked(Seen())
        let run = await withReactor { reactor in
            var ends = 0
            let ended = {
                ends += 1
                if ends == 2 { reactor.callLater(.milliseconds(5)) { reactor.stop() } }
            }
            let server = ServerFactoryOf { _ in
                let p = ScriptedProtocol()
                var inAbort = false
                p.onData = { p, _ in
                    inAbort = true
                    p.transport?.write("ignored")
                    p.transport?.abortConnection()
                    p.transport?.abortConnection()
                    inAbort = false
                }
                p.onLost = { _, r in
                    seen.update {
                        $0.serverEnds.append(r)
                        if inAbort { $0.lostInsideAbort = true }
                    }
                    ended()
                }
                return p
            }
            let port = try reactor.listenTCP(port: 0, factory: server, interface: "127.0.0.1", backlog: 4)
            let client = ClientFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onMade = { p in p.transport?.write("x") }
                p.onLost = { _, r in
                    seen.update { $0.clientEnds.append(r) }
                    ended()
                }
                return p
            }
            reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(seen.value.serverEnds == [.lost(errno: 0)])
        #expect(seen.value.clientEnds == [.lost(errno: ECONNRESET)])
        #expect(!seen.value.lostInsideAbort)
    }

    @Test("Connections still open when the reactor stops are closed with .lost(errno: 0)")
    func shutdownClosesConnections() async {
        let ends = Locked<[ConnectionEnd]>([])
        let run = await withReactor { reactor in
            let server = ServerFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onMade = { _ in reactor.callLater(.milliseconds(1)) { reactor.stop() } }
                p.onLost = { _, r in ends.update { $0.append(r) } }
                return p
            }
            let port = try reactor.listenTCP(port: 0, factory: server, interface: "127.0.0.1", backlog: 4)
            let client = ClientFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onLost = { _, r in ends.update { $0.append(r) } }
                return p
            }
            reactor.connectTCP(host: "127.0.0.1", port: port.address.port, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(ends.value == [.lost(errno: 0), .lost(errno: 0)])
    }

    @Test("An adopted listening socket accepts connections, and IPv6 loopback listening reports its port")
    func adoptAndIPv6() async {
        let reply = Locked("")
        let v6Port = Locked(-1)
        let run = await withReactor { reactor in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            sin.sin_port = 0
            let bound = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            #expect(bound == 0)
            #expect(listen(fd, 4) == 0)
            let port = try reactor.adoptListeningSocket(fd: fd, factory: ServerFactoryOf { _ in EchoProtocol() })
            if let p6 = try? reactor.listenTCP(
                port: 0, factory: ServerFactoryOf { _ in nil }, interface: "::1", backlog: 1)
            {
                v6Port.update { $0 = p6.address.port }
                _ = p6.stopListening()
            } else {
                v6Port.update { $0 = 0 }  // no IPv6 loopback on this host
            }
            let client = ClientFactoryOf { _ in
                let p = ScriptedProtocol()
                p.onMade = { p in p.transport?.write("ping") }
                p.onData = { p, d in
                    p.received.append(contentsOf: d)
                    if p.received.count == 4 {
                        reply.update { $0 = String(decoding: p.received, as: UTF8.self) }
                        reactor.stop()
                    }
                }
                return p
            }
            reactor.connectTCP(host: "localhost", port: port.address.port, factory: client, timeout: .seconds(10))
        }
        #expect(!run.timedOut)
        #expect(run.setupError == nil)
        #expect(reply.value == "ping")
        #expect(v6Port.value != -1)
    }
}
