import Testing
import XformClientKit
import XformCore

@Suite("TransformClient.connect (issue 11)")
struct ConnectedClientTests {
    @Test("connect() owns its reactor thread: calls work, shutdown() stops it and later calls fail with cancelled")
    func connectCallShutdown() async throws {
        let server = try LoopbackServer()
        defer { server.stop() }
        let client = try TransformClient.connect(host: "127.0.0.1", port: server.netstringPort)
        #expect(try await client.xform("upper", "hello") == "HELLO")
        #expect(try await client.list().contains("cummingsify"))
        await client.shutdown()
        await #expect(throws: TransformProxyError.cancelled) { try await client.xform("upper", "again") }
    }

    @Test("A refused connection comes back from the call, typed")
    func connectRefused() async throws {
        let port = try freePort()
        var configuration = TransformProxy.Configuration()
        configuration.backoff = .once
        let client = try TransformClient.connect(host: "127.0.0.1", port: port, configuration: configuration)
        await #expect(throws: TransformProxyError.connectionRefused(Endpoint(host: "127.0.0.1", port: port))) {
            try await client.xform("upper", "x")
        }
        await client.shutdown()
    }
}
