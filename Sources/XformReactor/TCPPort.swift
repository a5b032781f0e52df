import CXformShims
import Glibc
import XformCore

/// A listening TCP socket: accepts with `accept4` until `EAGAIN` (bounded per readiness event)
/// and hands each connection to its factory's protocol.
final class TCPPort: IOHandler, ListeningPort {
    unowned(unsafe) let reactor: EpollReactor  // the reactor outlives everything it drives
    let factory: any ServerFactory
    let address: SocketAddress
    var listening = true
    var acceptPaused = false
    /// Registered with `EPOLLEXCLUSIVE` (a socket several loops watch): epoll then refuses
    /// `EPOLL_CTL_MOD`, so pausing unregisters and registers again instead.
    let exclusive: Bool

    init(fd: Int32, reactor: EpollReactor, factory: any ServerFactory, address: SocketAddress, exclusive: Bool = false) {
        self.reactor = reactor
        self.factory = factory
        self.address = address
        self.exclusive = exclusive
        super.init(fd: fd)
    }

    /// The events the port watches while it accepts.
    var acceptEvents: UInt32 { exclusive ? CXF_EPOLLIN | CXF_EPOLLEXCLUSIVE : CXF_EPOLLIN }

    /// The most connections ``stopListening()`` accepts from the queue before closing.
    static let maxDrainedOnStop = 4096

    override func handleEvent(_ events: UInt32) {
        acceptPending(limit: reactor.configuration.maxAcceptsPerEvent)
    }

    /// Accepts until the queue is empty (`EAGAIN`) or `limit` connections were accepted, and
    /// hands each to the factory.
    func acceptPending(limit: Int) {
        var accepted = 0
        while listening && accepted < limit {
            var raw = RawAddress()
            let cfd = withUnsafeMutablePointer(to: &raw.storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { cxf_accept4(fd, $0, &raw.length) }
            }
            if cfd < 0 {
                let e = lastErrno()
                switch e {
                case EINTR, ECONNABORTED, EPROTO:
                    continue
                case EAGAIN, EWOULDBLOCK:
                    return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Level-triggered epoll would report the pending connection again at once:
                    // stop watching for a moment instead of spinning.
                    reactor.logger?.error("accept4 on \(address) failed: errno \(e); pausing accepts for 100 ms")
                    pauseAccepting()
                    return
                default:
                    reactor.logger?.error("accept4 on \(address) failed: errno \(e)")
                    return
                }
            }
            accepted += 1
            setNoDelay(cfd)
            let peer = raw.socketAddress
            guard let proto = factory.buildProtocol(peer: peer) else {
                closeFD(cfd)
                continue
            }
            TCPConnection(fd: cfd, reactor: reactor).start(proto)
        }
    }

    func pauseAccepting() {
        guard !acceptPaused else { return }
        acceptPaused = true
        if exclusive { reactor.unregister(self) } else { reactor.modify(self, events: 0) }
        reactor.callLater(.milliseconds(100)) { [weak self] in
            guard let self, self.listening else { return }
            self.acceptPaused = false
            if self.exclusive {
                self.reactor.register(self, events: self.acceptEvents)
            } else {
                self.reactor.modify(self, events: CXF_EPOLLIN)
            }
        }
    }

    /// Stops accepting. Connections already in the kernel's accept queue are accepted first and
    /// handed to the factory (which may answer them `shutting_down`, or close them), rather than
    /// reset by the close: issue 10 §5, a connection arriving just after SIGTERM got a reset.
    func stopListening() -> Deferred<Void> {
        stop(drainingQueue: true)
        return succeed(())
    }

    func stop(drainingQueue: Bool) {
        guard listening else { return }
        if drainingQueue { acceptPending(limit: Self.maxDrainedOnStop) }
        listening = false
        reactor.unregister(self)
        closeFD(fd)
        reactor.portStopped(factory)
    }

    // The reactor is going away: nothing could serve the queued connections any more.
    override func reactorShutdown() { stop(drainingQueue: false) }

    override func reactorDeinit() {
        guard listening else { return }
        listening = false
        closeFD(fd)
    }
}

/// An outgoing connection attempt: a non-blocking `connect`, a timeout, then a ``TCPConnection``.
final class TCPConnector: IOHandler, Connector {
    enum State {
        case connecting
        case connected(TCPConnection)
        case finished
    }

    unowned(unsafe) let reactor: EpollReactor  // the reactor outlives everything it drives
    let factory: any ClientFactory
    var addresses: [RawAddress]
    var nextAddress = 0
    var state = State.connecting
    var timer: (any DelayedCall)?
    var current: RawAddress?

    init(reactor: EpollReactor, factory: any ClientFactory, addresses: [RawAddress]) {
        self.reactor = reactor
        self.factory = factory
        self.addresses = addresses
        super.init(fd: -1)
    }

    /// Starts connecting to the next address; reports failure when none is left.
    func attempt(lastError: ConnectError?) {
        while nextAddress < addresses.count {
            let a = addresses[nextAddress]
            nextAddress += 1
            let sfd = cxf_socket_nonblocking(a.family, CXF_SOCK_STREAM)
            if sfd < 0 {
                failLater(.failed(errno: lastErrno()))
                return
            }
            setNoDelay(sfd)
            var rc: Int32
            repeat {
                rc = a.withSockaddr { Glibc.connect(sfd, $0, $1) }
            } while rc < 0 && lastErrno() == EINTR
            let e = rc < 0 ? lastErrno() : 0
            if rc == 0 || e == EINPROGRESS {
                fd = sfd
                current = a
                reactor.register(self, events: CXF_EPOLLOUT)
                return
            }
            closeFD(sfd)
            if nextAddress >= addresses.count {
                failLater(Self.connectError(e))
                return
            }
        }
        failLater(lastError ?? .failed(errno: 0))
    }

    static func connectError(_ e: Int32) -> ConnectError {
        switch e {
        case ECONNREFUSED: return .refused
        case ETIMEDOUT: return .timedOut
        default: return .failed(errno: e)
        }
    }

    /// Reports a failure from the next iteration, never inside `connectTCP` itself.
    func failLater(_ reason: ConnectError) {
        reactor.callLater(.zero) { [self] in fail(reason) }
    }

    override func handleEvent(_ events: UInt32) {
        guard case .connecting = state else { return }
        let err = socketError(fd)
        reactor.unregister(self)
        if err != 0 {
            closeFD(fd)
            fd = -1
            if nextAddress < addresses.count {
                attempt(lastError: Self.connectError(err))
            } else {
                fail(Self.connectError(err))
            }
            return
        }
        timer?.cancel()
        timer = nil
        let peer = (RawAddress.remote(of: fd) ?? current ?? RawAddress()).socketAddress
        let connection = TCPConnection(fd: fd, reactor: reactor)
        state = .connected(connection)
        connection.connector = self
        connection.start(factory.buildProtocol(peer: peer))
    }

    /// The connection this made is gone (after its protocol heard `connectionLost`).
    func connectionEnded(_ reason: ConnectionEnd) {
        state = .finished
        factory.clientConnectionLost(self, reason: reason)
    }

    func fail(_ reason: ConnectError) {
        guard case .connecting = state else { return }
        state = .finished
        timer?.cancel()
        timer = nil
        if fd >= 0 {
            reactor.unregister(self)
            closeFD(fd)
            fd = -1
        }
        factory.clientConnectionFailed(self, reason: reason)
    }

    /// Abandons a pending attempt (`.cancelled`) or closes the connection it made.
    func disconnect() {
        switch state {
        case .connecting: fail(.cancelled)
        case .connected(let c): c.loseConnection()
        case .finished: break
        }
    }

    override func reactorShutdown() { fail(.cancelled) }

    override func reactorDeinit() {
        if fd >= 0 { closeFD(fd) }
        state = .finished
    }
}

extension EpollReactor {
    /// Listens on `interface:port` with `SO_REUSEADDR` (port 0 picks a free port, shown in the
    /// port's `address`). `interface` is an IPv4 or IPv6 literal, or a resolvable name. With
    /// `reusePort`, `SO_REUSEPORT` is set before binding, so several loops (threads) can each
    /// listen on the same port and the kernel spreads new connections across them.
    ///
    /// - Throws: ``SystemError`` from `socket`, `bind` or `listen` (`EADDRINUSE`, `EACCES`...),
    ///   or with call `getaddrinfo` and `EADDRNOTAVAIL` when the interface does not resolve.
    public func listenTCP(
        port: Int, factory: any ServerFactory, interface: String = "0.0.0.0", backlog: Int = 511
    ) throws -> any ListeningPort {
        try listenTCP(port: port, factory: factory, interface: interface, backlog: backlog, reusePort: false)
    }

    /// ``listenTCP(port:factory:interface:backlog:)``, with `SO_REUSEPORT` set before binding
    /// when `reusePort` is true.
    public func listenTCP(
        port: Int, factory: any ServerFactory, interface: String, backlog: Int, reusePort: Bool
    ) throws -> any ListeningPort {
        try listenTCP(
            port: port, factory: factory, interface: interface, backlog: backlog, reusePort: reusePort,
            bindExclusively: false)
    }

    /// ``listenTCP(port:factory:interface:backlog:reusePort:)``; with `bindExclusively` (and
    /// `reusePort`), `SO_REUSEPORT` is set after `bind` and before `listen` instead: the bind
    /// still fails with `EADDRINUSE` when any socket holds the port (another server, even one
    /// with `SO_REUSEPORT`), yet this process's later `reusePort` sockets join this one.
    public func listenTCP(
        port: Int, factory: any ServerFactory, interface: String, backlog: Int, reusePort: Bool,
        bindExclusively: Bool
    ) throws -> any ListeningPort {
        guard let address = RawAddress.resolve(host: interface, port: port, passive: true)?.first else {
            throw SystemError("getaddrinfo(\(interface))", errno: EADDRNOTAVAIL)
        }
        let fd = cxf_socket_nonblocking(address.family, CXF_SOCK_STREAM)
        guard fd >= 0 else { throw SystemError("socket", errno: lastErrno()) }
        setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if reusePort, !bindExclusively { setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
        if address.withSockaddr({ bind(fd, $0, $1) }) != 0 {
            let e = lastErrno()
            closeFD(fd)
            throw SystemError("bind", errno: e)
        }
        if reusePort, bindExclusively { setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
        if Glibc.listen(fd, Int32(clamping: backlog)) != 0 {
            let e = lastErrno()
            closeFD(fd)
            throw SystemError("listen", errno: e)
        }
        return startPort(fd: fd, factory: factory)
    }

    /// Adopts a socket that is already bound and listening (systemd socket activation, fd 3...):
    /// makes it non-blocking and close-on-exec, then accepts on it like ``listenTCP(port:factory:interface:backlog:)``.
    ///
    /// - Throws: ``SystemError`` if the fd is not a socket or cannot be configured.
    public func adoptListeningSocket(fd: Int32, factory: any ServerFactory) throws -> any ListeningPort {
        try adoptListeningSocket(fd: fd, factory: factory, exclusiveWakeups: false)
    }

    /// ``adoptListeningSocket(fd:factory:)``; with `exclusiveWakeups`, the socket is watched with
    /// `EPOLLEXCLUSIVE`, for a socket several loops watch (each through its own fd, a `dup` of
    /// the others', which it closes alone when it stops): a new connection wakes one of them,
    /// an idle one first, not all.
    public func adoptListeningSocket(
        fd: Int32, factory: any ServerFactory, exclusiveWakeups: Bool
    ) throws -> any ListeningPort {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw SystemError("fcntl(O_NONBLOCK)", errno: lastErrno())
        }
        let fdFlags = fcntl(fd, F_GETFD)
        guard fdFlags >= 0, fcntl(fd, F_SETFD, fdFlags | FD_CLOEXEC) == 0 else {
            throw SystemError("fcntl(FD_CLOEXEC)", errno: lastErrno())
        }
        guard RawAddress.local(of: fd) != nil else {
            throw SystemError("getsockname", errno: lastErrno())
        }
        return startPort(fd: fd, factory: factory, exclusive: exclusiveWakeups)
    }

    func startPort(fd: Int32, factory: any ServerFactory, exclusive: Bool = false) -> any ListeningPort {
        let address = RawAddress.local(of: fd)?.socketAddress ?? SocketAddress(host: "?", port: 0)
        let port = TCPPort(fd: fd, reactor: self, factory: factory, address: address, exclusive: exclusive)
        let key = ObjectIdentifier(factory)
        let count = factoryPorts[key, default: 0]
        factoryPorts[key] = count + 1
        if count == 0 { factory.startFactory() }
        register(port, events: port.acceptEvents)
        return port
    }

    func portStopped(_ factory: any ServerFactory) {
        let key = ObjectIdentifier(factory)
        let count = factoryPorts[key, default: 1] - 1
        if count <= 0 {
            factoryPorts[key] = nil
            factory.stopFactory()
        } else {
            factoryPorts[key] = count
        }
    }

    /// Starts a non-blocking connect to `host:port` (a literal or a name resolved with
    /// getaddrinfo, trying each address in turn). The factory hears `clientConnectionFailed`
    /// with ``ConnectError/refused``, ``ConnectError/timedOut`` (after `timeout`),
    /// ``ConnectError/unknownHost(_:)`` or ``ConnectError/failed(errno:)``, always from a later
    /// iteration, never inside this call.
    ///
    /// - Returns: the attempt, to cancel or disconnect it.
    @discardableResult
    public func connectTCP(
        host: String, port: Int, factory: any ClientFactory, timeout: Duration = .seconds(30)
    ) -> any Connector {
        guard let addresses = RawAddress.resolve(host: host, port: port, passive: false) else {
            let c = TCPConnector(reactor: self, factory: factory, addresses: [])
            c.failLater(.unknownHost(host))
            return c
        }
        let c = TCPConnector(reactor: self, factory: factory, addresses: addresses)
        c.timer = callLater(timeout) { [weak c] in c?.fail(.timedOut) }
        c.attempt(lastError: nil)
        return c
    }
}
