import Dispatch
import Foundation
import XformCore
import XformReactor
import XformServer
import XformTransforms

/// A real transform server on 127.0.0.1 (ports chosen by the kernel), run by an EpollReactor on
/// its own thread. Stopped by ``stop()``, which waits (bounded) for the thread to finish.
///
/// `@unchecked Sendable`: the reactor and server are built on the creating thread, handed to the
/// reactor thread when it starts (Thread start orders the accesses), and afterwards only
/// `threading` (thread-safe) is used from other threads.
final class LoopbackServer: @unchecked Sendable {
    let reactor: EpollReactor
    let server: TransformServer
    let netstringPort: Int
    let linePort: Int
    let done = DispatchSemaphore(value: 0)

    init() throws {
        reactor = try EpollReactor()
        let state = ServerState(backend: TransformService(), clock: reactor)
        server = TransformServer(
            state: state, reactor: reactor, interface: "127.0.0.1", netstringPort: 0, linePort: 0)
        try server.root.privilegedStartService()
        server.root.startService()
        netstringPort = server.netstringServer.port!.address.port
        linePort = server.lineServer.port!.address.port
        let thread = Thread { [self] in
            reactor.run()
            done.signal()
        }
        thread.start()
    }

    /// Stops the reactor and waits up to 10 s for its thread.
    func stop() {
        reactor.threadingHandle.requestStop()
        _ = done.wait(timeout: .now() + 10)
    }
}

/// An EpollReactor for a client, run on its own thread; work reaches it through `threading`.
///
/// `@unchecked Sendable` for the same reason as ``LoopbackServer``: only `threading` is used
/// once the thread runs.
final class LoopbackReactor: @unchecked Sendable {
    let reactor: EpollReactor
    let done = DispatchSemaphore(value: 0)

    init() throws {
        reactor = try EpollReactor()
        let thread = Thread { [self] in
            reactor.run()
            done.signal()
        }
        thread.start()
    }

    var threading: any ReactorThreading { reactor.threading }

    /// Runs `body` on the reactor thread and returns its result (bounded wait: 10 s).
    func sync<T: Sendable>(_ body: @escaping @Sendable (EpollReactor) -> T) -> T? {
        let box = ResultBox<T>()
        let sem = DispatchSemaphore(value: 0)
        threading.callFromThread { [self] in
            box.value = body(reactor)
            sem.signal()
        }
        guard sem.wait(timeout: .now() + 10) == .success else { return nil }
        return box.value
    }

    func stop() {
        reactor.threadingHandle.requestStop()
        _ = done.wait(timeout: .now() + 10)
    }
}

/// Written on one thread, read on another after a semaphore: the semaphore orders the accesses.
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
