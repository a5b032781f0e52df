import Foundation
import Testing
import XformClient
import XformCore
import XformReactor

@Suite("TransformProxy on loopback", .timeLimit(.minutes(1)))
struct LoopbackProxyTests {
    @Test("The async client transforms and lists over real sockets, sharing one connection")
    func asyncRoundTrip() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let loop = try LoopbackReactor()
        defer { loop.stop() }
        let port = server.netstringPort
        let client = try #require(loop.sync { TransformProxy(host: "127.0.0.1", port: port, reactor: $0).makeClient() })
        async let a = client.xform("cummingsify", "HERE IS MY POEM")
        async let b = client.xform("upper", "two")
        #expect(try await a == "here is my poem")
        #expect(try await b == "TWO")
        #expect(try await client.list().contains("reverse"))
        await #expect(throws: TransformProxyError.unknownTransform(name: "nosuch", message: "no transform named 'nosuch'")) {
            try await client.xform("nosuch", "x")
        }
        client.close()
    }

    @Test("The line protocol works end to end")
    func lineRoundTrip() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let loop = try LoopbackReactor()
        defer { loop.stop() }
        let port = server.linePort
        let client = try #require(
            loop.sync { r -> TransformClient in
                var c = TransformProxy.Configuration()
                c.wire = .line
                return TransformProxy(host: "127.0.0.1", port: port, reactor: r, configuration: c).makeClient()
            })
        #expect(try await client.xform("upper", "a\nb\\c\n") == "A\nB\\C\n")
        #expect(try await client.list().contains("upper"))
    }

    @Test("A closed port is refused; with no retries the call fails with connectionRefused")
    func refused() async throws {
        let loop = try LoopbackReactor()
        defer { loop.stop() }
        let port = try freePort()
        let client = try #require(
            loop.sync { r -> TransformClient in
                var c = TransformProxy.Configuration()
                c.backoff = .once
                return TransformProxy(host: "127.0.0.1", port: port, reactor: r, configuration: c).makeClient()
            })
        await #expect(throws: TransformProxyError.connectionRefused(Endpoint(host: "127.0.0.1", port: port))) {
            try await client.xform("upper", "x")
        }
    }

    @Test("Cancelling the Task cancels the call: it throws cancelled")
    func taskCancellation() async throws {
        let loop = try LoopbackReactor()
        defer { loop.stop() }
        let port = try freePort()
        let client = try #require(
            loop.sync { r -> TransformClient in
                var c = TransformProxy.Configuration()
                // Retries far apart: the call sits in its backoff wait when cancelled.
                c.backoff = .sequence([.zero, .seconds(30)])
                return TransformProxy(host: "127.0.0.1", port: port, reactor: r, configuration: c).makeClient()
            })
        let task = Task { try await client.xform("upper", "x") }
        // Whether the cancel lands before the first attempt, during it, or in the 30 s wait
        // after the refusal, the call must end promptly as cancelled.
        task.cancel()
        let start = ContinuousClock.now
        await #expect(throws: TransformProxyError.cancelled) { try await task.value }
        #expect(ContinuousClock.now - start < .seconds(5))
    }
}

/// A port nothing listens on: bound to 0 and closed again.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
        }
    }
    guard ok else { throw POSIXError(.EIO) }
    return Int(UInt16(bigEndian: addr.sin_port))
}
