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
/// **Retries.** A call's first attempt is made at once, alone: one request on a pooled
/// connection, its timeout watched by that connection's one timer. When it fails in a way worth
/// retrying, the call continues as a ``RetryingCall`` on the reactor's clock with
/// ``Configuration/backoff``, that attempt counted as its first (racing calls, and endpoints
/// whose limits are not known yet, run as a retrying call from the start); only transient
/// failures are retried
/// (``TransformProxyError/isTransient``): refused, lost, shutting down, and a timeout at most
/// ``Configuration/timeoutRetries`` times. Definitive ones (unknown transform, bad request, too
/// large, invalid UTF-8, transform failed, a protocol error such as a reply that is not a
/// netstring) fail the call at once. ``Configuration/deadline`` bounds a whole call: no attempt
/// starts after it, and each attempt's timeout is cut to the time left.
///
/// **Limits.** Before its first transform request to an endpoint (netstring, extended form) the
/// proxy asks `?limits` (protocol-spec/netstring.md section 3.1) once and keeps the answer; a
/// text the server would refuse then fails at once with ``TransformProxyError/tooLarge(_:)``,
/// without being sent. An older server (`-bad_request`, or a close) means no local check. With several endpoints, a transient failure moves the call,
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
        /// The most time one call may take in all, retries and their delays included: no attempt
        /// starts after it and each attempt's ``timeout`` is cut to what is left; nil for no
        /// bound. Default 30 s (`xform --deadline`).
        public var deadline: Duration? = .seconds(30)
        /// How many times an attempt that timed out is retried. Default 1: a server that does not
        /// answer in ``timeout`` rarely answers the third time (`xform --retry-timeouts`).
        public var timeoutRetries: Int = 1
        /// Asks each endpoint's limits (`?limits`) once, before the first transform request, and
        /// refuses a too-large text locally with ``TransformProxyError/tooLarge(_:)``. Default true.
        public var checkLimits: Bool = true

        /// The defaults.
        public init() {}
    }

    /// Told before each retry: the attempt that failed (from 1), its failure, and the delay
    /// before the next attempt. Meant for logging.
    public typealias RetryObserver = (_ attempt: Int, _ error: TransformProxyError, _ delay: Duration) -> Void

    /// Told when each attempt on the wire ends: the endpoint, how long the attempt took, and its
    /// failure (nil on success). Cancelled attempts are not reported. Meant for statistics
    /// (the transform proxy's per-upstream latency and failures).
    public typealias AttemptObserver = (_ endpoint: Endpoint, _ elapsed: Duration, _ failure: TransformProxyError?) -> Void

    let reactor: any Reactor
    /// Told about each attempt's end (see ``AttemptObserver``).
    public var onAttempt: AttemptObserver?
    /// The endpoints, in failover order.
    public let endpoints: [Endpoint]
    /// The tunables in force.
    public let configuration: Configuration
    /// Told about each retry of each call.
    public var onRetry: RetryObserver?

    // `@exclusivity(unchecked)` on the state every call touches: the dynamic checks were about
    // a thousand instructions per proxied miss (callgrind), and no access to these stays open
    // across a call out (Deferred callbacks and observers run between accesses).
    @exclusivity(unchecked) var pools: [Endpoint: [ClientConnection]] = [:]
    @exclusivity(unchecked) var originalFormSince: [Endpoint: Duration] = [:]
    /// Endpoints whose last fresh connection was closed without any reply (see
    /// ``closedWithoutAnyReply(_:requests:)``).
    var suspectedOriginalForm: Set<Endpoint> = []
    /// Where new calls start: moves on when an endpoint fails transiently.
    @exclusivity(unchecked) var preferred = 0
    /// True after ``close()``.
    public private(set) var isClosed = false
    /// What each endpoint said to `?limits` (see ``serverLimits(of:)``).
    @exclusivity(unchecked) var limits: [Endpoint: LimitsState] = [:]

    /// An endpoint's limits: known (nil when the server cannot tell), or being asked for, with
    /// the calls waiting for the answer.
    enum LimitsState {
        case known(ServerLimitsReply?)
        case asking([(Result<ServerLimitsReply?, TransformProxyError>) -> Void])
    }

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
        return call(.transform(TransformRequest(name: name, text: text))).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Applies a transform to a text given as bytes, without a `String` either way: the transform
    /// proxy's call, whose cache key (`bytes`) goes out as the request as it is.
    ///
    /// - Parameters:
    ///   - bytes: the name's bytes followed by the UTF-8 text's.
    ///   - nameCount: how many of `bytes` are the name.
    /// - Returns: a Deferred that fires with the transformed text's UTF-8 bytes, or fails as
    ///   ``xform(_:_:)`` does.
    public func xform(bytes: [UInt8], nameCount: Int) -> Deferred<[UInt8]> {
        let name = bytes[..<nameCount]
        guard !name.isEmpty, !name.contains(where: { $0 <= 0x20 || $0 == 0x7f || $0 == UInt8(ascii: ".") }) else {
            return fail(TransformProxyError.badRequest("'\(String(decoding: name, as: UTF8.self))' is not a valid transform name"))
        }
        return call(.transform(TransformRequest(bytes: bytes, nameCount: nameCount)))
    }

    /// Asks the server which transforms exist (`?list` or `list`).
    ///
    /// - Returns: a Deferred of the names, sorted as the server sends them; fails like
    ///   ``xform(_:_:)``, or with ``TransformProxyError/notSupported(_:)`` against an
    ///   original-protocol server.
    public func list() -> Deferred<[String]> {
        call(.list).map {
            $0.isEmpty ? [] : String(decoding: $0, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
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
        guard !originalFormSince.isEmpty, let since = originalFormSince[endpoint] else { return false }
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

    func call(_ kind: RequestKind) -> Deferred<[UInt8]> {
        if isClosed { return fail(TransformProxyError.cancelled) }
        if let fast = fastAttempt(kind) { return fast }
        return retryingCall(kind, start: reactor.now, index: preferred, after: nil)
    }

    /// A call's first attempt, made at once and alone: one ``PendingRequest`` on a pooled
    /// connection, its timeout watched by the connection's one timer, no ``RetryingCall`` and no
    /// timer of its own. Only a failure worth retrying starts the retrying call (see
    /// ``retry(_:after:)``), which counts this attempt as its first: retries, failover, the
    /// deadline and the observers see what they would have seen. Nil when the call needs the
    /// retrying call from the start: racing, an endpoint whose limits are not known yet or
    /// refuse the text, an original-protocol endpoint, no time left.
    func fastAttempt(_ kind: RequestKind) -> Deferred<[UInt8]>? {
        guard !configuration.race || endpoints.count == 1 else { return nil }
        let endpoint = endpoints[preferred]
        guard !isOriginalForm(endpoint) else { return nil }
        if case .transform(let r) = kind, asksLimits(endpoint) {
            guard case .known(let known?)? = limits[endpoint],
                known.refusal(nameBytes: r.nameCount, textBytes: r.textCount, name: { r.name }) == nil
            else { return nil }
        }
        var timeout = configuration.timeout
        if let deadline = configuration.deadline {
            guard deadline > .zero else { return nil }
            timeout = min(timeout ?? deadline, deadline)
        }
        let request = PendingRequest(kind: kind, endpoint: endpoint)
        // Fails as a cancelled retrying call does: with `TransformProxyError.cancelled`. Holds the
        // request strongly (a weak reference costs a side table per request): the cycle through
        // `request.deferred` ends when the Deferred fires or is cancelled, which drops this.
        let d = Deferred<[UInt8]>(canceller: { [request] d in
            request.cancelled()
            try? d.fire(.failure(TransformProxyError.cancelled))
        })
        request.deferred = d
        request.isFast = true
        request.proxy = self
        let now = reactor.now
        request.callStart = now
        if onAttempt != nil { request.started = now }
        if let timeout {
            request.deadline = now + timeout
            request.timeout = timeout
        }
        dispatch(request)
        return d
    }

    /// Whether a fast attempt's failure is worth the retrying call: what the retrying call's
    /// `shouldRetry` answers for a first failure.
    func shouldRetryFastAttempt(_ e: TransformProxyError) -> Bool {
        guard !isClosed else { return false }
        if let custom = configuration.shouldRetry { return custom(e) }
        switch e {
        case .closedWithoutReply: return true
        case .timedOut: return configuration.timeoutRetries >= 1
        default: return e.isTransient
        }
    }

    /// Takes over a call whose fast attempt failed with `error`: a retrying call that counts that
    /// attempt as its first. Its result fires the call's Deferred (through the request).
    func retry(_ request: PendingRequest, after error: TransformProxyError) -> Deferred<[UInt8]> {
        let index = endpoints.firstIndex(of: request.endpoint) ?? preferred
        return retryingCall(request.kind, start: request.callStart, index: index, after: error).addBoth {
            [request] outcome in
            request.retryFinished(outcome)
            return []
        }
    }

    /// A call as a ``RetryingCall``: each attempt a ``PendingRequest`` with its own timer;
    /// `after` is the failure of a fast attempt already made to `endpoints[index]`.
    func retryingCall(
        _ kind: RequestKind, start: Duration, index startIndex: Int, after firstFailure: TransformProxyError?
    ) -> Deferred<[UInt8]> {
        let n = endpoints.count
        var index = startIndex
        var closedWithoutReply = 0
        var timeouts = 0
        let custom = configuration.shouldRetry
        let timeoutRetries = configuration.timeoutRetries
        var backoff = configuration.backoff
        let deadline = configuration.deadline
        if let deadline { backoff.maxElapsed = min(backoff.maxElapsed ?? deadline, deadline) }
        let retrying = RetryingCall<[UInt8]>(
            clock: reactor, backoff: backoff,
            shouldRetry: { [weak self] error in
                guard let self, !self.isClosed else { return false }
                let e = TransformProxyError.from(error)
                if let custom { return custom(e) }
                switch e {
                case .closedWithoutReply:
                    closedWithoutReply += 1
                    return closedWithoutReply < 2
                case .timedOut:
                    timeouts += 1
                    return timeouts <= timeoutRetries
                default:
                    return e.isTransient
                }
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
                var timeout = self.configuration.timeout
                if let deadline {
                    let left = deadline - (self.reactor.now - start)
                    guard left > .zero else { throw TransformProxyError.timedOut(after: deadline) }
                    timeout = min(timeout ?? left, left)
                }
                if self.configuration.race, n > 1 {
                    return self.race(kind, self.endpoints[index], self.endpoints[(index + 1) % n], timeout: timeout)
                }
                let endpoint = self.endpoints[index]
                if case .transform(let r) = kind, self.asksLimits(endpoint) {
                    return self.serverLimits(of: endpoint, timeout: timeout).flatMap { [weak self] limits in
                        guard let self else { throw TransformProxyError.cancelled }
                        if let limits,
                            let refusal = limits.refusal(nameBytes: r.nameCount, textBytes: r.textCount, name: { r.name })
                        {
                            throw TransformProxyError.tooLarge(refusal)
                        }
                        return self.attempt(kind, to: endpoint, timeout: timeout)
                    }
                }
                return self.attempt(kind, to: endpoint, timeout: timeout)
            })
        let started = firstFailure.map { retrying.start(after: $0, startedAt: start) } ?? retrying.start()
        return started.mapResult { outcome in
            switch outcome {
            case .success(let text): return text
            case .failure(let error): throw TransformProxyError.from(error)
            }
        }
    }

    /// One attempt to two endpoints at once: the first reply wins and the other is cancelled.
    /// When both fail, a definitive failure wins over a transient one.
    func race(_ kind: RequestKind, _ a: Endpoint, _ b: Endpoint, timeout: Duration?) -> Deferred<[UInt8]> {
        let winner = firstSuccess([attempt(kind, to: a, timeout: timeout), attempt(kind, to: b, timeout: timeout)])
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

    /// One attempt: queue the request on a connection to `endpoint`, with a timeout (the
    /// per-attempt timeout, cut to what the call's deadline leaves).
    func attempt(_ kind: RequestKind, to endpoint: Endpoint, timeout: Duration?) -> Deferred<[UInt8]> {
        let request = PendingRequest(kind: kind, endpoint: endpoint)
        let d = Deferred<[UInt8]>(canceller: { [weak request] _ in request?.cancelled() })
        request.deferred = d
        request.proxy = self
        if let timeout {
            request.timer = reactor.callLater(timeout) { [weak request] in request?.timedOut(after: timeout) }
        }
        if onAttempt != nil { request.started = reactor.now }
        dispatch(request)
        return d
    }

    /// Tells ``onAttempt`` how an attempt that began at `started` ended (cancellations are not told).
    func attemptEnded(_ endpoint: Endpoint, started: Duration, outcome: Result<[UInt8], TransformProxyError>) {
        guard let onAttempt else { return }
        let elapsed = reactor.now - started
        switch outcome {
        case .success: onAttempt(endpoint, elapsed, nil)
        case .failure(.cancelled): break
        case .failure(let e): onAttempt(endpoint, elapsed, e)
        }
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
            switch request.kind {
            case .list:
                request.resolve(
                    .failure(
                        .notSupported("the server at \(endpoint) speaks the original protocol, which cannot list transforms")))
                return
            case .limits:
                request.resolve(.failure(.notSupported("the original protocol has no ?limits")))
                return
            case .transform:
                break
            }
        } else {
            mode = .extended
        }
        // The least loaded usable connection, found without building an array.
        var best: ClientConnection?
        var bestLoad = Int.max
        var usable = 0
        if mode != .original, let pool = pools[endpoint] {
            for c in pool where c.usable && c.mode == mode {
                usable += 1
                let load = c.load
                if load < bestLoad {
                    best = c
                    bestLoad = load
                }
            }
        }
        let connection: ClientConnection
        if let best, bestLoad < configuration.pipelineDepth || usable >= configuration.maxConnectionsPerEndpoint {
            connection = best
        } else {
            connection = open(endpoint, mode: mode)
        }
        connection.enqueue(request)
    }

    func open(_ endpoint: Endpoint, mode: ConnectionMode) -> ClientConnection {
        let c = ClientConnection(
            owner: self, endpoint: endpoint, mode: mode, maxReplyLength: configuration.maxReplyLength, clock: reactor)
        pools[endpoint, default: []].append(c)
        c.connector = reactor.connectTCP(
            host: endpoint.host, port: endpoint.port, factory: c, timeout: configuration.connectTimeout)
        return c
    }

    // MARK: Limits

    /// True when a transform request to `endpoint` first needs its limits.
    func asksLimits(_ endpoint: Endpoint) -> Bool {
        guard configuration.checkLimits, configuration.wire == .netstring, !isOriginalForm(endpoint) else { return false }
        if case .known(nil)? = limits[endpoint] { return false }
        return true
    }

    /// The limits `endpoint` announces to `?limits`: asked once, then cached for the proxy's
    /// life; calls made while the question is in flight share it.
    ///
    /// - Returns: a Deferred of the limits, or of nil when the server cannot tell (an older
    ///   server answers `-bad_request` or closes without a reply: no local check then). Fails
    ///   with the failure of the question when it says nothing about the server (refused, lost,
    ///   timed out: not cached, asked again by the next attempt) or with a protocol error.
    public func serverLimits(of endpoint: Endpoint, timeout: Duration? = nil) -> Deferred<ServerLimitsReply?> {
        switch limits[endpoint] {
        case .known(let known)?:
            return succeed(known)
        case .asking(var waiters)?:
            let d = Deferred<ServerLimitsReply?>()
            waiters.append { outcome in try? d.fire(outcome.mapError { $0 }) }
            limits[endpoint] = .asking(waiters)
            return d
        case nil:
            let d = Deferred<ServerLimitsReply?>()
            limits[endpoint] = .asking([{ outcome in try? d.fire(outcome.mapError { $0 }) }])
            // Not cancelled with any one caller: others may share the answer.
            _ = attempt(.limits, to: endpoint, timeout: timeout ?? configuration.timeout).addObserver {
                [weak self] outcome in
                self?.limitsAnswered(
                    endpoint, outcome.map { String(decoding: $0, as: UTF8.self) }.mapError(TransformProxyError.from))
            }.addErrback { _ in [] }
            return d
        }
    }

    func limitsAnswered(_ endpoint: Endpoint, _ outcome: Result<String, TransformProxyError>) {
        guard case .asking(let waiters)? = limits[endpoint] else { return }
        let answer: Result<ServerLimitsReply?, TransformProxyError>
        switch outcome {
        case .success(let text):
            answer = .success(ServerLimitsReply(parsing: text))
        case .failure(.connectionRefused), .failure(.connectFailed), .failure(.connectionLost),
            .failure(.timedOut), .failure(.shuttingDown), .failure(.cancelled), .failure(.unknownHost),
            .failure(.protocolError):
            answer = outcome.map { _ in nil }
        case .failure:
            // bad_request (a server from before ?limits), notSupported (an original-protocol
            // server), or any other refusal: the server cannot tell; no local check.
            answer = .success(nil)
        }
        if case .success(let known) = answer {
            limits[endpoint] = .known(known)
        } else {
            limits[endpoint] = nil
        }
        for w in waiters { w(answer) }
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

    /// Returns a Sendable handle that owns the reactor thread this proxy runs on: closing the
    /// handle (or dropping it) stops `runtime`. Call on the reactor thread.
    public func makeClient(owning runtime: any TransformClientRuntime) -> TransformClient {
        TransformClient(proxy: self, threading: reactor.threading, runtime: runtime)
    }
}
