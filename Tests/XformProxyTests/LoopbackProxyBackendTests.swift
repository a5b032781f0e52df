// The proxy backend against a real in-process transform server over 127.0.0.1 sockets.
import Dispatch
import Foundation
import Testing
import XformClient
import XformCore
import XformProxy
import XformReactor
import XformServer
import XformTransforms

/// A real transform server on 127.0.0.1 (kernel-chosen ports), run by an EpollReactor on its
/// own thread.
///
/// `@unchecked Sendable`: built on the creating thread and handed to the reactor thread when it
/// starts (Thread start orders the accesses); afterwards only `threading` (thread-safe) is used.
final class UpstreamServerThread: @unchecked Sendable {
    let reactor: EpollReactor
    let server: TransformServer
    let netstringPort: Int
    let done = DispatchSemaphore(value: 0)

    init() throws {
        reactor = try EpollReactor()
        server = TransformServer(
            state: ServerState(backend: TransformService(), clock: reactor), reactor: reactor,
            interface: "127.0.0.1", netstringPort: 0, linePort: 0)
        try server.root.privilegedStartService()
        server.root.startService()
        netstringPort = server.netstringServer.port!.address.port
        Thread { [self] in
            reactor.run()
            done.signal()
        }.start()
    }

    func stop() {
        reactor.threadingHandle.requestStop()
        _ = done.wait(timeout: .now() + 10)
    }
}

/// A proxy backend on its own EpollReactor thread; tests reach it through `threading`.
///
/// `@unchecked Sendable`: the backend is made and used only on the reactor thread (inside
/// `callFromThread` blocks); other threads only pass the reference along.
final class ProxyThread: @unchecked Sendable {
    let reactor: EpollReactor
    var backend: ProxyBackend?
    let done = DispatchSemaphore(value: 0)

    init(upstreamPort: Int) throws {
        reactor = try EpollReactor()
        Thread { [self] in
            reactor.run()
            done.signal()
        }.start()
        let ready = DispatchSemaphore(value: 0)
        reactor.threading.callFromThread { [self] in
            let b = ProxyBackend(
                configuration: ProxyBackend.Configuration(upstreams: [Endpoint(host: "127.0.0.1", port: upstreamPort)]),
                reactor: reactor)
            b.startService()
            backend = b
            ready.signal()
        }
        _ = ready.wait(timeout: .now() + 10)
    }

    /// Runs one request on the reactor thread and waits (up to 10 s) for its outcome: the text,
    /// with `hit` telling whether it was answered at once.
    func transform(_ name: String, _ text: String) -> (Result<String, TransformError>, hit: Bool)? {
        let box = OutcomeBox()
        let sem = DispatchSemaphore(value: 0)
        reactor.threading.callFromThread { [self] in
            let context = TransformContext(clock: reactor)
            let outcome = Array(name.utf8).withUnsafeBytes { n in
                Array(text.utf8).withUnsafeBytes { t in backend!.start(name: n, text: t, context: context) }
            }
            switch outcome {
            case .done(let bytes):
                box.value = (.success(String(decoding: bytes, as: UTF8.self)), true)
                sem.signal()
            case .failed(let error):
                box.value = (.failure(error), true)
                sem.signal()
            case .pending(let d):
                _ = d.mapResult { outcome in
                    switch outcome {
                    case .success(let bytes): box.value = (.success(String(decoding: bytes, as: UTF8.self)), false)
                    case .failure(let error): box.value = (.failure(error as! TransformError), false)
                    }
                    sem.signal()
                }
            }
        }
        guard sem.wait(timeout: .now() + 10) == .success else { return nil }
        return box.value
    }

    func stop() {
        let stopped = DispatchSemaphore(value: 0)
        reactor.threading.callFromThread { [self] in
            _ = backend?.stopService()
            backend = nil
            stopped.signal()
        }
        _ = stopped.wait(timeout: .now() + 10)
        reactor.threadingHandle.requestStop()
        _ = done.wait(timeout: .now() + 10)
    }
}

/// Written on the reactor thread, read after a semaphore: the semaphore orders the accesses.
final class OutcomeBox: @unchecked Sendable {
    var value: (Result<String, TransformError>, hit: Bool)?
}

@Suite("ProxyBackend on loopback", .timeLimit(.minutes(1)))
struct LoopbackProxyBackendTests {
    @Test("Against a real server: the first request waits for the list, a repeat is a cache hit")
    func realServer() throws {
        let upstream = try UpstreamServerThread()
        defer { upstream.stop() }
        let proxy = try ProxyThread(upstreamPort: upstream.netstringPort)
        defer { proxy.stop() }
        let first = try #require(proxy.transform("cummingsify", "HERE IS MY POEM"))
        #expect(try first.0.get() == "here is my poem")
        #expect(!first.hit)
        let again = try #require(proxy.transform("cummingsify", "HERE IS MY POEM"))
        #expect(try again.0.get() == "here is my poem")
        #expect(again.hit)
        let unknown = try #require(proxy.transform("nosuch", "x"))
        #expect(throws: TransformError.unknownTransform("nosuch")) { try unknown.0.get() }
        let failed = try #require(proxy.transform("upper", String(repeating: "x", count: 200_000)))
        #expect(throws: TransformError.tooLarge) { try failed.0.get() }
    }
}
