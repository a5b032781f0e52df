import XformCore

/// The async face of a ``TransformProxy``: a Sendable handle any Task may use.
///
/// The proxy stays on its reactor thread; each call hops there through
/// ``ReactorThreading/deferredValue(_:)``, and cancelling the awaiting Task cancels the call's
/// Deferred (its request is withdrawn, its retry timer stopped).
///
/// The simple way to get one is `TransformClient.connect(host:port:)` from `XformClientKit`,
/// which starts a reactor thread of its own and stops it in ``shutdown()``:
///
/// ```swift
/// import XformClientKit
/// let client = try TransformClient.connect(host: "127.0.0.1", port: 10001)
/// let text = try await client.xform("upper", "hello")
/// await client.shutdown()
/// ```
///
/// Code that already runs a reactor makes one on the reactor thread with
/// ``TransformProxy/makeClient()``.
public final class TransformClient: Sendable {
    let box: ProxyBox
    let threading: any ReactorThreading
    let runtime: (any TransformClientRuntime)?

    init(proxy: TransformProxy, threading: any ReactorThreading, runtime: (any TransformClientRuntime)? = nil) {
        self.box = ProxyBox(proxy)
        self.threading = threading
        self.runtime = runtime
    }

    /// Applies the transform `name` to `text`.
    ///
    /// - Returns: the transformed text.
    /// - Throws: a ``TransformProxyError`` (``TransformProxyError/cancelled`` when the Task is
    ///   cancelled).
    public func xform(_ name: String, _ text: String) async throws -> String {
        // Past shutdown() the reactor drops queued work: answer here instead of never.
        if runtime?.isStopping == true { throw TransformProxyError.cancelled }
        let box = self.box
        do {
            return try await threading.deferredValue { box.proxy.xform(name, text) }
        } catch {
            throw TransformProxyError.from(error)
        }
    }

    /// Lists the server's transforms.
    ///
    /// - Throws: a ``TransformProxyError``.
    public func list() async throws -> [String] {
        if runtime?.isStopping == true { throw TransformProxyError.cancelled }
        let box = self.box
        do {
            return try await threading.deferredValue { box.proxy.list() }
        } catch {
            throw TransformProxyError.from(error)
        }
    }

    /// Closes the proxy's connections (on the reactor thread); calls in flight fail with
    /// ``TransformProxyError/cancelled``. A client that owns its reactor thread then stops it
    /// (without waiting: ``shutdown()`` waits).
    ///
    /// A call started after `close()` fails with ``TransformProxyError/cancelled``; do not
    /// start calls on other Tasks while closing an owned client (one made in the same instant
    /// could be queued after the reactor stopped, and would never return).
    public func close() {
        let box = self.box
        let runtime = self.runtime
        runtime?.beginStopping()
        threading.callFromThread {
            box.proxy.close()
            runtime?.requestStop()
        }
    }

    /// Closes the connections (calls in flight fail with ``TransformProxyError/cancelled``)
    /// and, for a client that owns its reactor thread, stops that reactor and returns once its
    /// thread has finished. Later calls fail with ``TransformProxyError/cancelled``.
    public func shutdown() async {
        close()
        await runtime?.stopped()
    }

    deinit {
        // The proxy must be released on its reactor thread, not on whichever thread drops the
        // last reference to this handle; an owned reactor is stopped after that.
        let box = self.box
        let runtime = self.runtime
        threading.callFromThread {
            // Only a client that owns its reactor closes the proxy: other handles made with
            // makeClient() may share it.
            if let runtime {
                box.proxy.close()
                runtime.requestStop()
            }
            withExtendedLifetime(box) {}
        }
    }
}

/// The reactor thread a ``TransformClient`` owns (see `TransformClient.connect` in
/// `XformClientKit`): the client stops it when closed.
public protocol TransformClientRuntime: Sendable {
    /// Marks the runtime as stopping (any thread): later calls fail at once.
    func beginStopping()
    /// True once ``beginStopping()`` was called.
    var isStopping: Bool { get }
    /// Asks the reactor to stop; called on the reactor thread, after the proxy has closed.
    func requestStop()
    /// Returns once the reactor's thread has finished running it.
    func stopped() async
}

/// Holds a proxy for a Sendable handle.
///
/// `@unchecked Sendable` because `proxy` is only used inside closures run on the proxy's reactor
/// thread (``ReactorThreading/callFromThread(_:)`` / `deferredValue`), and the box is released
/// there too (see ``TransformClient``'s deinit).
final class ProxyBox: @unchecked Sendable {
    let proxy: TransformProxy
    init(_ proxy: TransformProxy) { self.proxy = proxy }
}
