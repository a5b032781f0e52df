import XformCore

/// A client for transform servers: Dave Peticolas's `TransformProxy`, with retries, connection
/// reuse, failover and typed errors.
///
/// ```swift
/// let proxy = TransformProxy(host: "127.0.0.1", port: 10001, reactor: reactor)
/// proxy.xform("cummingsify", poem).addCallback { print($0); return $0 }
/// ```
///
/// **Protocol.** With ``WireFormat/netstring`` (the default) requests go in the extended form
/// (`!name.text`), so the server answers with typed errors and keeps the connection open.
/// Against a server that speaks only the original protocol (the book's Twisted server), an
/// extended request on a fresh connection is closed without a reply. Once is not proof (a new
/// server killed with requests in flight does the same), so the proxy first resends the same
/// requests in the extended form on a new connection; when that fresh connection too is closed
/// without any reply, it remembers the endpoint as *original* for
/// ``Configuration/originalFormRecheckInterval`` and sends them in the original form (one connection
/// per request). All of this happens at once, within the same attempt. There, a close without a reply means "failed, cause unknown":
/// ``TransformProxyError/closedWithoutReply(_:)``, retried once (it may have been a server
/// restart), then final. ``WireFormat/line`` speaks the line protocol instead.
///
/// **Connections.** Requests to one endpoint share kept-alive connections, pipelined up to
/// ``Configuration/pipelineDepth`` requests each, with at most
/// ``Configuration/maxConnectionsPerEndpoint`` connections. A connection that dies fails only the
/// requests it carried, and those are retried like any transient failure.
///
/// **Retries.** Each call runs as a ``RetryingCall`` on the reactor's clock with
/// ``Configuration/backoff``; only transient failures are retried
/// (``TransformProxyError/isTransient``): refused, lost, timed out, shutting down, protocol
/// errors. Definitive ones (unknown transform, bad request, too large, invalid UTF-8, transform
/// failed) fail the call at once. With several endpoints, a transient failure moves the call,
/// and later calls, to the next endpoint (failover); with ``Configuration/race`` each attempt
/// goes to two endpoints at once and the first reply wins, the other being cancelled.
///
/// **Cancelling** a call's Deferred withdraws its request (closing its connection unless other
/// requests still use it) and cancels a pending retry timer; the Deferred then fails with
/// ``TransformProxyError/cancelled`` and nothing fires afterwards.
///
/// Confined to the reactor thread, like every Deferred user; async code uses a
/// ``TransformClient`` (``makeClient()``).
public final class TransformProxy: ConnectionOwner {
    /// Tunables; the defaults suit a CLI or an app talking to a nearby server.
    public struct Configuration: Sendable {
        /// The wire protocol. Default: netstring.
        public var wire: WireFormat = .netstring
        /// Delays between attempts and when to give up. Default: txretry's `simpleBackoffIterator`
        /// (0, then 0.01 s doubling, 10 attempts).
        public var backoff: Backoff = .default
        /// How long one attempt may wait for its reply; nil for no limit. Default 30 s.
        public var timeout: Duration? = .seconds(30)
        /// How long a TCP connect may take. Default 10 s.
        public var connectTimeout: Duration = .seconds(10)
        /// The largest reply accepted, in bytes. Default 16 MiB.
        public var maxReplyLength: Int = 16 * 1024 * 1024
        /// The most kept-alive connections per endpoint. Default 4.
        public var maxConnectionsPerEndpoint: Int = 4
        /// Requests pipelined on one connection before another is opened. Default 16.
        public var pipelineDepth: Int = 16
        /// Sends each attempt to two endpoints (when there are several); the first reply wins.
        public var race: Bool = false
        /// How long an endpoint found to speak only the original protocol is treated so before
        /// the extended form is tried again. Default 60 s.
        public var originalFormRecheckInterval: Duration = .seconds(60)
        /// Replaces the default retry decision (``TransformProxyError/isTransient``) when set.
        public var shouldRetry: (@Sendable (TransformProxyError) -> Bool)?

        /// The defaults.
        public init() {}
    }

    /// Told before each retry: the attempt that failed (from 1), its failure, and the delay
    /// before the next attempt. Meant for logging.
    public typealias RetryObserver = (_ attempt: Int, _ error: TransformProxyError, _ delay: Duration) -> Void

    let reactor: any Reactor
    /// The endpoints, in failover order.
    public let endpoints: [Endpoint]
    /// The tunables in force.
    public let configuration: Configuration
    /// Told about each retry of each call.
    public var onRetry: RetryObserver?

    var pools: [Endpoint: [ClientConnection]] = [:]
    var originalFormSince: [Endpoint: Duration] = [:]
    /// Endpoints whose last fresh connection was closed without any reply (see
    /// ``closedWithoutAnyReply(_:requests:)``).
    var suspectedOriginalForm: Set<Endpoint> = []
    /// Where new calls start: moves on when an endpoint fails transiently.
    var preferred = 0
    /// True after ``close()``.
    public private(set) var isClosed = false

    /// Creates a proxy for several endpoints, tried in order (failover).
    ///
    /// - Parameters:
    ///   - endpoints: at least one.
    ///   - reactor: time and TCP (an `EpollReactor`, or a `MemoryReactor` in tests).
    ///   - configuration: the tunables.
    public init(endpoints: [Endpoint], reactor: any Reactor, configuration: Configuration = Configuration()) {
        precondition(!endpoints.isEmpty, "TransformProxy needs at least one endpoint")
        precondition(configuration.pipelineDepth >= 1 && configuration.maxConnectionsPerEndpoint >= 1)
        self.endpoints = endpoints
        self.reactor = reactor
        self.configuration = configuration
    }

    /// Creates a proxy for one server.
    public convenience init(
        host: String, port: Int, reactor: any Reactor, configuration: Configuration = Configuration()
    ) {
        self.init(endpoints: [Endpoint(host: host, port: port)], reactor: reactor, configuration: configuration)
    }

    // MARK: Calls

    /// Applies the transform `name` to `text` on the server.
    ///
    /// - Returns: a Deferred that fires with the transformed text, or fails with a
    ///   ``TransformProxyError``: a definitive error at once, the last transient one when the
    ///   backoff runs out, ``TransformProxyError/cancelled`` when cancelled.
    public func xform(_ name: String, _ text: String) -> Deferred<String> {
        guard Self.isValidName(name) else {
            return fail(TransformProxyError.badRequest("'\(name)' is not a valid transform name"))
        }
        return call(.transform(name: name, text: text))
    }

    /// Asks the server which transforms exist (`?list` or `list`).
    ///
    /// - Returns: a Deferred of the names, sorted as the server sends them; fails like
    ///   ``xform(_:_:)``, or with ``TransformProxyError/notSupported(_:)`` against an
    ///   original-protocol server.
    public func list() -> Deferred<[String]> {
        call(.list).map { $0.isEmpty ? [] : $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Closes every connection. Calls in flight fail with ``TransformProxyError/cancelled``;
    /// later calls fail the same way at once.
    public func close() {
        isClosed = true
        let all = pools.values.flatMap { $0 }
        pools.removeAll()
        for c in all { c.abort() }
    }

    /// The number of open (or opening) connections to `endpoint`, for tests and monitoring.
    public func connectionCount(to endpoint: Endpoint) -> Int { pools[endpoint]?.count ?? 0 }

    /// True while `endpoint` is treated as an original-protocol server.
    public func isOriginalForm(_ endpoint: Endpoint) -> Bool {
        guard let since = originalFormSince[endpoint] else { return false }
        return reactor.now - since < configuration.originalFormRecheckInterval
    }

    /// A name the wire can carry: not empty, no `.`, no space or control character.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.utf8.contains { $0 <= 0x20 || $0 == 0x7f || $0 == UInt8(ascii: ".") }
    }

    /// The default retry decision, with its one special case: a close without reply is
    /// retried once per call.
    public static func isTransient(_ error: any Error) -> Bool {
        TransformProxyError.from(error).isTransient
    }

    func call(_ kind: RequestKind) -> Deferred<String> {
        if isClosed { return fail(TransformProxyError.cancelled) }
        let n = endpoints.count
        var index = preferred
        var closedWithoutReply = 0
        let custom = configuration.shouldRetry
        let retrying = RetryingCall<String>(
            clock: reactor, backoff: configuration.backoff,
            shouldRetry: { [weak self] error in
                guard let self, !self.isClosed else { return false }
                let e = TransformProxyError.from(error)
                if let custom { return custom(e) }
                if case .closedWithoutReply = e {
                    closedWithoutReply += 1
                    return closedWithoutReply < 2
                }
                return e.isTransient
            },
            onRetry: { [weak self] attempt, error, delay in
                guard let self else { return }
                if n > 1 {
                    index = (index + 1) % n
                    self.preferred = index
                }
                self.onRetry?(attempt, TransformProxyError.from(error), delay)
            },
            operation: { [weak self] in
                guard let self, !self.isClosed else { throw TransformProxyError.cancelled }
                if self.configuration.race, n > 1 {
                    return self.race(kind, self.endpoints[index], self.endpoints[(index + 1) % n])
                }
                return self.attempt(kind, to: self.endpoints[index])
            })
        return retrying.start().mapResult { outcome in
            switch outcome {
            case .success(let text): return text
            case .failure(let error): throw TransformProxyError.from(error)
            }
        }
    }

    /// One attempt to two endpoints at once: the first reply wins and the other is cancelled.
    /// When both fail, a definitive failure wins over a transient one.
    func race(_ kind: RequestKind, _ a: Endpoint, _ b: Endpoint) -> Deferred<String> {
        let winner = firstSuccess([attempt(kind, to: a), attempt(kind, to: b)])
        // `firstSuccess` and `mapResult` both hold `winner` weakly; capturing it here keeps it
        // alive until it fires (its chain is dropped then, which breaks the cycle).
        return winner.mapResult { outcome in
            withExtendedLifetime(winner) {}
            switch outcome {
            case .success(let winner): return winner.value
            case .failure(let error as AllFailedError):
                let errors = error.failures.map(TransformProxyError.from)
                throw errors.first { !$0.isTransient } ?? errors[0]
            case .failure(let error): throw error
            }
        }
    }

    /// One attempt: queue the request on a connection to `endpoint`, with the per-call timeout.
    func attempt(_ kind: RequestKind, to endpoint: Endpoint) -> Deferred<String> {
        let request = PendingRequest(kind: kind, endpoint: endpoint)
        let d = Deferred<String>(canceller: { [weak request] _ in request?.cancelled() })
        request.deferred = d
        if let timeout = configuration.timeout {
            request.timer = reactor.callLater(timeout) { [weak request] in request?.timedOut(after: timeout) }
        }
        dispatch(request)
        return d
    }

    /// Puts a request on a connection: the least loaded usable one while it has room, else a
    /// new one (up to the limit, past which the least loaded takes it anyway).
    func dispatch(_ request: PendingRequest) {
        let endpoint = request.endpoint
        if isClosed {
            request.resolve(.failure(.cancelled))
            return
        }
        let mode: ConnectionMode
        if configuration.wire == .line {
            mode = .line
        } else if isOriginalForm(endpoint) {
            mode = .original
            if case .list = request.kind {
                request.resolve(
                    .failure(
                        .notSupported("the server at \(endpoint) speaks the original protocol, which cannot list transforms")))
                return
            }
        } else {
            mode = .extended
        }
        let connection: ClientConnection
        let usable = (pools[endpoint] ?? []).filter { $0.usable && $0.mode == mode }
        if mode != .original, let best = usable.min(by: { $0.load < $1.load }),
            best.load < configuration.pipelineDepth || usable.count >= configuration.maxConnectionsPerEndpoint
        {
            connection = best
        } else {
            connection = open(endpoint, mode: mode)
        }
        connection.enqueue(request)
    }

    func open(_ endpoint: Endpoint, mode: ConnectionMode) -> ClientConnection {
        let c = ClientConnection(
            owner: self, endpoint: endpoint, mode: mode, maxReplyLength: configuration.maxReplyLength)
        pools[endpoint, default: []].append(c)
        c.connector = reactor.connectTCP(
            host: endpoint.host, port: endpoint.port, factory: c, timeout: configuration.connectTimeout)
        return c
    }

    // MARK: ConnectionOwner

    func connectionClosed(_ connection: ClientConnection) {
        pools[connection.endpoint]?.removeAll { $0 === connection }
        if pools[connection.endpoint]?.isEmpty == true { pools[connection.endpoint] = nil }
    }

    func closedWithoutAnyReply(_ endpoint: Endpoint, requests: [PendingRequest]) {
        // Once is not proof: a new server killed with our requests in flight closes the same
        // way. The requests are sent again in the extended form on a new connection; a second
        // fresh connection closed without a reply marks the endpoint as original-protocol, and
        // the requests go out in the original form.
        if suspectedOriginalForm.contains(endpoint) {
            suspectedOriginalForm.remove(endpoint)
            originalFormSince[endpoint] = reactor.now
        } else {
            suspectedOriginalForm.insert(endpoint)
        }
        for r in requests { dispatch(r) }
    }

    func replyReceived(from endpoint: Endpoint) {
        if !suspectedOriginalForm.isEmpty { suspectedOriginalForm.remove(endpoint) }
    }

    /// Returns a Sendable handle for async code; call on the reactor thread.
    public func makeClient() -> TransformClient {
        TransformClient(proxy: self, threading: reactor.threading)
    }
}
