// So that `import XformClientKit` alone gives TransformClient, TransformProxy and their errors.
@_exported import XformClient
import Foundation
import XformCore
import XformReactor

extension TransformClient {
    /// Starts a reactor on a thread of its own and returns an async client for the transform
    /// server at `host`:`port`: the first way to call xform from Swift.
    ///
    /// ```swift
    /// let client = try TransformClient.connect(host: "127.0.0.1", port: 10001)
    /// print(try await client.xform("cummingsify", "HERE IS MY POEM"))
    /// await client.shutdown()
    /// ```
    ///
    /// Nothing is connected yet: the first call connects (and asks the server's limits), and
    /// failures come back from the calls, typed (``TransformProxyError``). ``shutdown()`` closes
    /// the connections, stops the reactor and waits for its thread; dropping the client stops
    /// it too, without waiting.
    ///
    /// - Throws: a `SystemError` when the event loop cannot be created (out of file descriptors).
    public static func connect(
        host: String = "127.0.0.1", port: Int = 10001,
        configuration: TransformProxy.Configuration = TransformProxy.Configuration()
    ) throws -> TransformClient {
        try connect(endpoints: [Endpoint(host: host, port: port)], configuration: configuration)
    }

    /// ``connect(host:port:configuration:)`` for several endpoints, tried in order (failover).
    public static func connect(
        endpoints: [Endpoint], configuration: TransformProxy.Configuration = TransformProxy.Configuration()
    ) throws -> TransformClient {
        precondition(!endpoints.isEmpty, "TransformClient.connect needs at least one endpoint")
        let runtime = OwnedReactorThread()
        let handOff = HandOff()
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread {
            // The reactor and the proxy are made, used and dropped on this thread only.
            let reactor: EpollReactor
            do {
                reactor = try EpollReactor()
            } catch {
                handOff.value.withLock { $0 = .failure(error) }
                ready.signal()
                runtime.finished()
                return
            }
            runtime.attach(reactor.threadingHandle)
            let proxy = TransformProxy(endpoints: endpoints, reactor: reactor, configuration: configuration)
            handOff.value.withLock { $0 = .success(proxy.makeClient(owning: runtime)) }
            ready.signal()
            reactor.run()
            runtime.finished()
        }
        thread.name = "xform-client-reactor"
        thread.start()
        ready.wait()
        return try handOff.value.withLock { $0! }.get()
    }
}

/// The client (or the failure) the reactor thread hands to ``TransformClient/connect(endpoints:configuration:)``.
final class HandOff: Sendable {
    let value = PthreadMutex<Result<TransformClient, any Error>?>(nil)
}

/// The reactor thread behind ``TransformClient/connect(host:port:configuration:)``: stops the
/// reactor on request and tells waiters when its thread has finished.
final class OwnedReactorThread: TransformClientRuntime {
    struct State {
        var handle: EpollThreading?
        var stopping = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    let state = PthreadMutex(State())

    func attach(_ handle: EpollThreading) { state.withLock { $0.handle = handle } }

    func beginStopping() { state.withLock { $0.stopping = true } }

    var isStopping: Bool { state.withLock { $0.stopping || $0.finished } }

    func requestStop() {
        state.withLock { s in
            s.stopping = true
            return s.handle
        }?.requestStop()
    }

    func stopped() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if s.finished { return true }
                s.waiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    /// The reactor's thread is about to end: wakes every waiter of ``stopped()``.
    func finished() {
        let waiters = state.withLock { s in
            s.finished = true
            s.handle = nil
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}
