import XformCore

/// The async face of a ``TransformProxy``: a Sendable handle any Task may use.
///
/// The proxy stays on its reactor thread; each call hops there through
/// ``ReactorThreading/deferredValue(_:)``, and cancelling the awaiting Task cancels the call's
/// Deferred (its request is withdrawn, its retry timer stopped).
///
/// ```swift
/// let client = try await reactorThread.run { TransformProxy(host: h, port: p, reactor: r).makeClient() }
/// let text = try await client.xform("upper", "hello")
/// ```
public final class TransformClient: Sendable {
    let box: ProxyBox
    let threading: any ReactorThreading

    init(proxy: TransformProxy, threading: any ReactorThreading) {
        self.box = ProxyBox(proxy)
        self.threading = threading
    }

    /// Applies the transform `name` to `text`.
    ///
    /// - Returns: the transformed text.
    /// - Throws: a ``TransformProxyError`` (``TransformProxyError/cancelled`` when the Task is
    ///   cancelled).
    public func xform(_ name: String, _ text: String) async throws -> String {
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
        let box = self.box
        do {
            return try await threading.deferredValue { box.proxy.list() }
        } catch {
            throw TransformProxyError.from(error)
        }
    }

    /// Closes the proxy's connections (on the reactor thread); calls in flight fail with
    /// ``TransformProxyError/cancelled``.
    public func close() {
        let box = self.box
        threading.callFromThread { box.proxy.close() }
    }

    deinit {
        // The proxy must be released on its reactor thread, not on whichever thread drops the
        // last reference to this handle.
        let box = self.box
        threading.callFromThread { withExtendedLifetime(box) {} }
    }
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
