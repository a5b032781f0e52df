/// A thing that starts and stops with the application (Twisted's `IService`).
///
/// Subclass and override ``startService()`` and ``stopService()``; call `super` in both.
/// Work that needs privileges (binding a low port) goes in ``privilegedStartService()``, which
/// runs before privileges are dropped.
open class Service {
    /// The unique name among the parent's children, if any.
    public let name: String?
    /// True between ``startService()`` and ``stopService()``.
    public private(set) var running = false
    /// The parent collection, if any.
    public internal(set) weak var parent: MultiService?

    public init(name: String? = nil) { self.name = name }

    /// Runs before privileges are dropped (binds ports).
    ///
    /// - Throws: whatever stops the service from starting; the application does not start.
    open func privilegedStartService() throws {}

    /// Starts the service.
    open func startService() { running = true }

    /// Stops the service.
    ///
    /// - Returns: a Deferred that fires when the service has stopped (at once by default).
    open func stopService() -> Deferred<Void> {
        running = false
        return succeed(())
    }

    /// Adds this service to `parent`; starts it at once if the parent runs.
    ///
    /// - Throws: ``ServiceError/duplicateName(_:)`` if the parent has a child of the same name.
    public func setServiceParent(_ parent: MultiService) throws(ServiceError) {
        try parent.addService(self)
    }
}

/// Errors from building service trees.
public enum ServiceError: Error, Equatable {
    /// A service of this name is already a child of the parent.
    case duplicateName(String)
}

/// A service made of child services: starts them in order and stops them in reverse order
/// (Twisted's `MultiService`).
open class MultiService: Service {
    /// The children, in start order.
    public private(set) var services: [Service] = []

    /// Adds a child; starts it at once if this collection is running.
    ///
    /// - Throws: ``ServiceError/duplicateName(_:)`` for a second child of the same name.
    public func addService(_ service: Service) throws(ServiceError) {
        if let name = service.name, services.contains(where: { $0.name == name }) {
            throw .duplicateName(name)
        }
        service.parent = self
        services.append(service)
        if running { service.startService() }
    }

    /// Removes a child, stopping it if this collection is running.
    ///
    /// - Returns: the child's stop Deferred, or a fired one.
    @discardableResult
    public func removeService(_ service: Service) -> Deferred<Void> {
        services.removeAll { $0 === service }
        service.parent = nil
        return running ? service.stopService() : succeed(())
    }

    /// The child named `name`, if any.
    public func namedService(_ name: String) -> Service? {
        services.first { $0.name == name }
    }

    open override func privilegedStartService() throws {
        for s in services { try s.privilegedStartService() }
    }

    open override func startService() {
        super.startService()
        for s in services { s.startService() }
    }

    /// Stops the children one after another, last started first: each child's stop Deferred
    /// fires before the next child is asked to stop. A child's failure is kept and reported
    /// by the returned Deferred after all children have stopped.
    open override func stopService() -> Deferred<Void> {
        _ = super.stopService()
        var firstFailure: (any Error)?
        var chain = succeed(())
        for s in services.reversed() {
            chain = chain.flatMap { () -> Deferred<Void> in
                maybeDeferred { s.stopService() }.mapResult { outcome in
                    if case .failure(let e) = outcome, firstFailure == nil { firstFailure = e }
                }
            }
        }
        return chain.map {
            if let firstFailure { throw firstFailure }
        }
    }
}

/// A service that listens on a TCP port while it runs (Twisted's `internet.TCPServer`).
///
/// The port is bound in ``privilegedStartService()``, before privileges are dropped, so ports
/// below 1024 work. Stopping it stops listening, then waits for `drain` (if given), which a
/// server uses to let open connections finish their requests.
public final class TCPServer: Service {
    /// Binds and returns the listening port (e.g. `reactor.listenTCP(...)`, or adopting an
    /// inherited socket).
    public typealias Binder = () throws -> any ListeningPort

    let bind: Binder
    let drain: (() -> Deferred<Void>)?
    /// The listening port, once bound.
    public private(set) var port: (any ListeningPort)?

    /// - Parameters:
    ///   - name: the service name (unique among siblings).
    ///   - bind: opens the listening port.
    ///   - drain: called after the port closed, when stopping; the stop completes when its
    ///     Deferred fires.
    public init(name: String, bind: @escaping Binder, drain: (() -> Deferred<Void>)? = nil) {
        self.bind = bind
        self.drain = drain
        super.init(name: name)
    }

    /// Binds the port.
    ///
    /// - Throws: the binder's error (address in use, permission denied, ...).
    public override func privilegedStartService() throws {
        if port == nil { port = try bind() }
    }

    /// Starts the service, binding the port now if the privileged step did not run.
    /// A bind failure here cannot be reported; call ``privilegedStartService()`` first.
    public override func startService() {
        if port == nil { port = try? bind() }
        super.startService()
    }

    /// Stops listening, then drains.
    public override func stopService() -> Deferred<Void> {
        _ = super.stopService()
        let closed = port?.stopListening() ?? succeed(())
        port = nil
        guard let drain else { return closed }
        return closed.addCallback { () -> Deferred<Void> in drain() }
    }
}
