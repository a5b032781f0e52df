// A proxy backend and real upstream transform servers, all on one MemoryReactor: connections
// are IOPumps between the proxy's TransformProxy and the upstreams' netstring protocols.
import XformClient
import XformCore
import XformFraming
import XformProxy
import XformServer
import XformTesting
import XformTransforms

/// An upstream transform server listening on the memory reactor, with two test transforms:
/// `tally` (upper-cases, counting its calls) and `held` (answers when the test says, recording
/// the calls the server cancelled).
final class Upstream {
    let service = TransformService()
    let state: ServerState
    let server: TransformServer
    let port: Int
    /// Texts `tally` was called with.
    var tallied: [String] = []
    /// `held` calls waiting for an answer, oldest first.
    var held: [(text: String, deferred: Deferred<String>)] = []
    /// Texts of `held` calls the server cancelled (its client went away).
    var cancelled: [String] = []
    /// Every `held` call, in order.
    var heldCalls: [String] = []

    init(reactor: MemoryReactor, port: Int, limits: ServerLimits = ServerLimits()) {
        state = ServerState(backend: service, clock: reactor.clock, limits: limits)
        server = TransformServer(
            state: state, reactor: reactor, interface: "127.0.0.1", netstringPort: port, linePort: port + 1)
        self.port = port
        try! service.register(
            Transform(
                name: "tally", summary: "upper, counted",
                body: .asynchronous({ [unowned self] text, _ in
                    tallied.append(text)
                    return succeed(text.uppercased())
                })))
        try! service.register(
            Transform(
                name: "held", summary: "answers when told",
                body: .asynchronous({ [unowned self] text, _ in
                    heldCalls.append(text)
                    let d = Deferred<String>(canceller: { [unowned self] d in
                        cancelled.append(text)
                        held.removeAll { $0.deferred === d }
                    })
                    held.append((text, d))
                    return d
                })))
        try! server.root.privilegedStartService()
        server.root.startService()
    }

    /// Answers the oldest `held` call with `text`.
    func answer(_ text: String) {
        let (_, d) = held.removeFirst()
        try? d.callback(text)
    }

    /// Fails the oldest `held` call.
    func failHeld(_ error: any Error) {
        let (_, d) = held.removeFirst()
        try? d.errback(error)
    }


}

/// The proxy backend on a memory reactor, with upstreams on ports 10001, 10003, ...
final class ProxyTestbed {
    let reactor = MemoryReactor()
    var upstreams: [Upstream] = []
    /// Every connection made, with the port it went to.
    var pumps: [(port: Int, pump: IOPump)] = []
    let backend: ProxyBackend
    let log = InMemoryLogHandler()
    let context: TransformContext

    init(
        upstreams count: Int = 1, limits: ServerLimits = ServerLimits(),
        configure: (inout ProxyBackend.Configuration) -> Void = { _ in }
    ) {
        for i in 0..<count {
            upstreams.append(Upstream(reactor: reactor, port: 10001 + 2 * i, limits: limits))
        }
        var config = ProxyBackend.Configuration(
            upstreams: (0..<count).map { Endpoint(host: "127.0.0.1", port: 10001 + 2 * $0) })
        configure(&config)
        backend = ProxyBackend(configuration: config, reactor: reactor, logger: log.logger(system: "proxy"))
        context = TransformContext(clock: reactor.clock)
    }

    var upstream: Upstream { upstreams[0] }

    /// Runs everything that can run now: due calls, connect attempts (to the listeners, or
    /// refused), and bytes both ways, until nothing moves.
    func run() {
        for _ in 0..<1000 {
            reactor.advance(by: .zero)
            var progress = false
            for attempt in reactor.pendingConnectAttempts {
                if let pump = attempt.succeedWithListener() { pumps.append((attempt.port, pump)) }
                progress = true
            }
            for (_, pump) in pumps where pump.pump() {
                progress = true
            }
            if !progress { return }
        }
    }

    /// Advances the clock by `amount`, then runs what follows.
    func advance(_ amount: Duration) {
        reactor.advance(by: amount)
        run()
    }

    /// Starts the backend service and runs the first list fetch.
    func start() {
        backend.startService()
        run()
    }

    /// Sends one request to the backend.
    func request(_ name: String, _ text: String) -> TransformOutcome {
        Array(name.utf8).withUnsafeBytes { n in
            Array(text.utf8).withUnsafeBytes { t in backend.start(name: n, text: t, context: context) }
        }
    }

    /// Sends one request expected to go upstream; returns its Deferred.
    func pending(_ name: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Deferred<[UInt8]> {
        switch request(name, text) {
        case .pending(let d): return d
        case .done(let bytes):
            Issue.record("expected a pending outcome, got done(\(String(decoding: bytes, as: UTF8.self)))", sourceLocation: sourceLocation)
        case .failed(let e):
            Issue.record("expected a pending outcome, got failed(\(e))", sourceLocation: sourceLocation)
        }
        return fail(CancelledError())
    }

    /// The figure called `name` in the backend's statistics.
    func figure(_ name: String) -> Double? {
        backend.statistics.first { $0.name == name }?.value
    }

    /// Open connections to upstream `i`.
    func openUpstreamConnections(_ i: Int = 0) -> Int {
        pumps.filter { $0.port == upstreams[i].port && !$0.pump.isClosed }.count
    }

    /// Kills upstream `i`: it stops listening (later connects are refused) and every open
    /// connection to it is reset.
    func kill(_ i: Int) {
        let port = upstreams[i].port
        _ = upstreams[i].server.netstringServer.stopService()
        for (p, pump) in pumps where p == port && !pump.isClosed {
            pump.serverTransport.abortConnection()
            pump.flush()
        }
    }

    /// Brings upstream `i` back: it listens again (the connections it lost stay lost).
    func revive(_ i: Int) {
        try! upstreams[i].server.netstringServer.privilegedStartService()
    }

    /// Everything upstream `i` received on its connections, as text.
    func receivedUpstream(_ i: Int = 0) -> String {
        pumps.filter { $0.port == upstreams[i].port }
            .map { String(decoding: $0.pump.clientTransport.written, as: UTF8.self) }.joined()
    }
}

/// The text a Deferred of bytes fired with.
func text(_ d: Deferred<[UInt8]>, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    successResult(of: d, sourceLocation: sourceLocation).map { String(decoding: $0, as: UTF8.self) }
}

/// The bytes of a `.done` outcome as text, or nil.
func doneText(_ o: TransformOutcome) -> String? {
    if case .done(let b) = o { return String(decoding: b, as: UTF8.self) }
    return nil
}

/// The error of a `.failed` outcome, or nil.
func failedError(_ o: TransformOutcome) -> TransformError? {
    if case .failed(let e) = o { return e }
    return nil
}

import Testing
