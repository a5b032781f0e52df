import Synchronization
import XformCore

/// A reactor that does no I/O: Twisted's `MemoryReactorClock`.
///
/// Time comes from an internal ``ManualClock`` (``advance(by:)``). ``listenTCP(port:factory:interface:backlog:)``
/// and ``connectTCP(host:port:factory:timeout:)`` only record what was asked; the test then
/// drives accepted and outgoing connections through ``IOPump``s. ``threading`` queues calls until
/// the test runs them with ``runThreadCalls()``. Confined to the test's thread.
///
/// Async bodies run on it in memory: `deferredFromAsync(on: reactor.threading)` starts its body at
/// once and resumes it inside the awaited Deferred's callback (a timer fired by ``advance(by:)``,
/// a `callback` from the test), so protocol code using `await` is tested with no threads.
public final class MemoryReactor: Reactor {
    /// The clock behind ``now`` and ``callLater(_:_:)``.
    public let clock: ManualClock
    /// The thread door: calls wait until ``runThreadCalls()``.
    public let manualThreading = ManualThreading()
    /// Every `listenTCP` call, in order.
    public private(set) var listeners: [MemoryListeningPort] = []
    /// Every `connectTCP` call, in order.
    public private(set) var connectAttempts: [ConnectionAttempt] = []
    /// When set, the next `listenTCP` throws it (then it is cleared).
    public var nextListenError: (any Error)?
    var nextPort = 40000

    /// Creates a reactor whose clock starts at `start`.
    public init(start: Duration = .zero) {
        clock = ManualClock(start: start)
    }

    // MARK: ReactorTime

    public var now: Duration { clock.now }

    @discardableResult
    public func callLater(_ delay: Duration, _ work: @escaping () -> Void) -> any DelayedCall {
        clock.callLater(delay, work)
    }

    /// Schedules on ``clock`` (``ManualClock/schedule(_:atNanoseconds:)``).
    public func schedule(_ target: any TimerTarget, atNanoseconds deadline: Int64) -> TimerToken {
        clock.schedule(target, atNanoseconds: deadline)
    }

    /// Cancels on ``clock``.
    public func cancelTimer(_ token: TimerToken) { clock.cancelTimer(token) }

    /// Advances the clock, running what falls due.
    public func advance(by amount: Duration) { clock.advance(by: amount) }

    // MARK: Threading

    public var threading: any ReactorThreading { manualThreading }

    /// Runs the calls queued through ``threading`` (and any they queue), at most `limit`.
    ///
    /// - Returns: the number of calls run.
    @discardableResult
    public func runThreadCalls(limit: Int = 100_000) -> Int { manualThreading.runPending(limit: limit) }

    // MARK: TCP

    /// Records the listen and returns a fake port; port 0 is given 40000, 40001, ...
    ///
    /// - Throws: ``nextListenError`` if set.
    public func listenTCP(port: Int, factory: any ServerFactory, interface: String, backlog: Int) throws
        -> any ListeningPort
    {
        if let e = nextListenError {
            nextListenError = nil
            throw e
        }
        var assigned = port
        if port == 0 {
            assigned = nextPort
            nextPort += 1
        }
        let lp = MemoryListeningPort(
            reactor: self, factory: factory, address: SocketAddress(host: interface, port: assigned),
            requestedPort: port, backlog: backlog)
        listeners.append(lp)
        factory.startFactory()
        return lp
    }

    /// Records the attempt; the test completes it with ``ConnectionAttempt/succeed(with:)`` or
    /// ``ConnectionAttempt/fail(_:)``. If neither happens within `timeout` of clock time, the
    /// factory hears ``ConnectError/timedOut``.
    @discardableResult
    public func connectTCP(host: String, port: Int, factory: any ClientFactory, timeout: Duration)
        -> any Connector
    {
        let attempt = ConnectionAttempt(
            reactor: self, host: host, port: port, factory: factory, timeout: timeout)
        connectAttempts.append(attempt)
        attempt.timer = clock.callLater(timeout) { [weak attempt] in attempt?.fail(.timedOut) }
        return attempt
    }

    /// The listening port bound to `port`, if it is still listening.
    public func listener(port: Int) -> MemoryListeningPort? {
        listeners.last { $0.address.port == port && !$0.stopped }
    }

    /// Attempts not yet completed, failed or cancelled.
    public var pendingConnectAttempts: [ConnectionAttempt] {
        connectAttempts.filter { $0.state == .pending }
    }
}

/// A port recorded by ``MemoryReactor/listenTCP(port:factory:interface:backlog:)``.
public final class MemoryListeningPort: ListeningPort {
    unowned let reactor: MemoryReactor
    /// The factory given to `listenTCP`.
    public let factory: any ServerFactory
    public let address: SocketAddress
    /// The port asked for (0 when the reactor picked one).
    public let requestedPort: Int
    /// The backlog asked for.
    public let backlog: Int
    /// True once ``stopListening()`` was called.
    public private(set) var stopped = false
    /// Connections accepted with ``accept(client:clientAddress:)`` that are still open.
    public private(set) var connections: [IOPump] = []

    init(reactor: MemoryReactor, factory: any ServerFactory, address: SocketAddress, requestedPort: Int, backlog: Int) {
        self.reactor = reactor
        self.factory = factory
        self.address = address
        self.requestedPort = requestedPort
        self.backlog = backlog
    }

    /// Stops the port (the factory hears `stopFactory`).
    ///
    /// - Returns: a fired Deferred.
    public func stopListening() -> Deferred<Void> {
        if !stopped {
            stopped = true
            factory.stopFactory()
        }
        return succeed(())
    }

    /// Accepts a connection from `client`: asks the factory for a server protocol and connects
    /// the two through an ``IOPump`` on the reactor's clock.
    ///
    /// - Returns: the pump, or nil if the port is stopped or the factory refused the connection
    ///   (the client then hears `connectionLost(.done)` right after `makeConnection`).
    @discardableResult
    public func accept(
        client: any ConnectionProtocol,
        clientAddress: SocketAddress = SocketAddress(host: "127.0.0.1", port: 50001)
    ) -> IOPump? {
        guard !stopped else { return nil }
        guard let server = factory.buildProtocol(peer: clientAddress) else {
            let pump = IOPump.connect(
                client: client, server: BaseProtocol(), clock: reactor.clock, clientAddress: clientAddress,
                serverAddress: address, greet: false)
            pump.serverTransport.loseConnection()
            pump.flush()
            return nil
        }
        let pump = IOPump.connect(
            client: client, server: server, clock: reactor.clock, clientAddress: clientAddress,
            serverAddress: address)
        connections.append(pump)
        pump.onConnectionLost = { [weak self, unowned pump] side, _ in
            if side == .server { self?.connections.removeAll { $0 === pump } }
        }
        return pump
    }
}

/// An outgoing connection recorded by ``MemoryReactor/connectTCP(host:port:factory:timeout:)``.
public final class ConnectionAttempt: Connector {
    /// Where an attempt stands.
    public enum State: Sendable, Equatable {
        case pending, connected, failed(ConnectError), disconnected
    }

    unowned let reactor: MemoryReactor
    public let host: String
    public let port: Int
    public let timeout: Duration
    /// The factory given to `connectTCP`.
    public let factory: any ClientFactory
    public private(set) var state: State = .pending
    /// The pump, once ``succeed(with:)`` connected the attempt.
    public private(set) var pump: IOPump?
    var timer: (any DelayedCall)?

    init(reactor: MemoryReactor, host: String, port: Int, factory: any ClientFactory, timeout: Duration) {
        self.reactor = reactor
        self.host = host
        self.port = port
        self.factory = factory
        self.timeout = timeout
    }

    /// Completes the attempt: the factory builds the client protocol, which is connected to
    /// `server` through an ``IOPump`` (flushed once). When the client's connection ends, the
    /// factory hears `clientConnectionLost`.
    ///
    /// - Returns: the pump.
    /// - Precondition: the attempt is pending.
    @discardableResult
    public func succeed(with server: any ConnectionProtocol) -> IOPump {
        precondition(state == .pending, "connection attempt already completed: \(state)")
        timer?.cancel()
        timer = nil
        state = .connected
        let serverAddress = SocketAddress(host: host, port: port)
        let client = factory.buildProtocol(peer: serverAddress)
        let pump = IOPump.connect(
            client: client, server: server, clock: reactor.clock, serverAddress: serverAddress)
        self.pump = pump
        pump.onConnectionLost = { [weak self] side, reason in
            guard let self, side == .client else { return }
            self.factory.clientConnectionLost(self, reason: reason)
        }
        return pump
    }

    /// Connects to whatever listens on this attempt's port on the same reactor.
    ///
    /// - Returns: the pump, or nil (and the attempt fails with ``ConnectError/refused``) when no
    ///   port listens there or its factory refused the connection.
    @discardableResult
    public func succeedWithListener() -> IOPump? {
        guard let lp = reactor.listener(port: port),
            let server = lp.factory.buildProtocol(peer: SocketAddress(host: "127.0.0.1", port: 50001))
        else {
            fail(.refused)
            return nil
        }
        return succeed(with: server)
    }

    /// Fails the attempt: the factory hears `clientConnectionFailed` with `reason`. Does nothing
    /// if the attempt is no longer pending.
    public func fail(_ reason: ConnectError) {
        guard state == .pending else { return }
        timer?.cancel()
        timer = nil
        state = .failed(reason)
        factory.clientConnectionFailed(self, reason: reason)
    }

    /// Cancels a pending attempt (``ConnectError/cancelled``) or closes a made connection.
    public func disconnect() {
        switch state {
        case .pending:
            fail(.cancelled)
        case .connected:
            state = .disconnected
            pump?.clientTransport.loseConnection()
        case .failed, .disconnected:
            break
        }
    }
}

/// A ``ReactorThreading`` whose calls wait in a queue until the test runs them.
///
/// `isReactorThread` reports ``reactorThreadAnswer`` (true by default: the test thread plays
/// the reactor thread).
public final class ManualThreading: ReactorThreading {
    let queue = Mutex<[@Sendable () -> Void]>([])
    let answer = Atomic<Bool>(true)

    public init() {}

    /// Queues `work`; it runs at the next ``runPending(limit:)``.
    public func callFromThread(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { $0.append(work) }
    }

    public var isReactorThread: Bool { answer.load(ordering: .relaxed) }

    /// What ``isReactorThread`` reports.
    public var reactorThreadAnswer: Bool {
        get { answer.load(ordering: .relaxed) }
        set { answer.store(newValue, ordering: .relaxed) }
    }

    /// The number of queued calls.
    public var pendingCount: Int { queue.withLock { $0.count } }

    /// Runs queued calls in order, including calls they queue, at most `limit`.
    ///
    /// - Returns: the number of calls run.
    @discardableResult
    public func runPending(limit: Int = 100_000) -> Int {
        var ran = 0
        while ran < limit {
            let batch = queue.withLock { q -> [@Sendable () -> Void] in
                let b = q
                q.removeAll()
                return b
            }
            if batch.isEmpty { break }
            for (i, w) in batch.enumerated() {
                if ran >= limit {
                    let rest = Array(batch[i...])
                    queue.withLock { $0.insert(contentsOf: rest, at: 0) }
                    return ran
                }
                w()
                ran += 1
            }
        }
        return ran
    }
}
