// The transform proxy in memory (issue 12's "In memory" list): real upstream servers and the
// proxy's upstream client joined by IOPumps on one MemoryReactor.
import Testing
import XformClient
import XformCore
import XformFraming
import XformProxy
import XformServer
import XformTesting
import XformTransforms

@Suite("ProxyBackend in memory")
struct ProxyBackendTests {
    @Test("A miss goes upstream once; the same name and text then hits the cache with no upstream call")
    func missThenHit() {
        let t = ProxyTestbed()
        t.start()
        let d = t.pending("tally", "here is my poem")
        t.run()
        #expect(text(d) == "HERE IS MY POEM")
        #expect(doneText(t.request("tally", "here is my poem")) == "HERE IS MY POEM")
        #expect(t.upstream.tallied == ["here is my poem"])
        // Another text, or another name, is another key.
        _ = t.pending("tally", "here is my poem!")
        _ = t.pending("upper", "here is my poem")
        t.run()
        #expect(t.upstream.tallied.count == 2)
        #expect(t.figure("cache_hits") == 1)
        #expect(t.figure("cache_misses") == 3)
        #expect(t.figure("cache_entries") == 3)
    }

    @Test("A cached result expires after --cache-ttl on the manual clock and is fetched again")
    func ttlExpiry() {
        let t = ProxyTestbed { $0.cacheTTL = .seconds(30) }
        t.start()
        _ = t.pending("tally", "poem")
        t.run()
        t.advance(.seconds(29))
        #expect(doneText(t.request("tally", "poem")) == "POEM")
        t.advance(.seconds(1))
        let again = t.pending("tally", "poem")
        t.run()
        #expect(text(again) == "POEM")
        #expect(t.upstream.tallied == ["poem", "poem"])
        #expect(t.figure("cache_expirations") == 1)
    }

    @Test("At the byte bound the least recently used result is evicted first")
    func lruEviction() {
        // One entry costs key ("tally" + 2 bytes) + value (2 bytes) + the per-entry overhead.
        let entry = 7 + 2 + ProxyBackend.entryOverhead
        let t = ProxyTestbed { $0.cacheBytes = 2 * entry + entry / 2 }
        t.start()
        for s in ["a1", "a2"] { _ = t.pending("tally", s) }
        t.run()
        #expect(doneText(t.request("tally", "a1")) == "A1")  // a1 is now the most recent
        _ = t.pending("tally", "a3")
        t.run()
        #expect(t.figure("cache_evictions") == 1)
        #expect(t.figure("cache_bytes") == Double(2 * entry))
        #expect(doneText(t.request("tally", "a1")) == "A1")
        #expect(doneText(t.request("tally", "a3")) == "A3")
        let a2 = t.pending("tally", "a2")
        t.run()
        #expect(text(a2) == "A2")
        #expect(t.upstream.tallied == ["a1", "a2", "a3", "a2"])
    }

    @Test("--cache-bytes 0 disables the cache; concurrent identical requests still share a call")
    func cacheDisabled() {
        let t = ProxyTestbed { $0.cacheBytes = 0 }
        t.start()
        let a = t.pending("held", "x")
        let b = t.pending("held", "x")
        t.run()
        t.upstream.answer("X")
        t.run()
        #expect(text(a) == "X" && text(b) == "X")
        _ = t.pending("held", "x")
        t.run()
        #expect(t.upstream.heldCalls == ["x", "x"])
        #expect(t.figure("cache_entries") == 0)
    }

    @Test("100 identical concurrent requests make one upstream call and all get its reply")
    func singleFlight() {
        let t = ProxyTestbed()
        t.start()
        let waiters = (0..<100).map { _ in t.pending("held", "slow poem") }
        t.run()
        #expect(t.upstream.heldCalls == ["slow poem"])
        #expect(t.figure("single_flight_joins") == 99)
        t.upstream.answer("SLOW POEM")
        t.run()
        #expect(waiters.allSatisfy { text($0) == "SLOW POEM" })
        #expect(t.receivedUpstream().components(separatedBy: "!held.").count == 2)
    }

    @Test("A failure fans out to every waiter unchanged, is not cached, and the next request succeeds")
    func failureFansOut() {
        let t = ProxyTestbed()
        t.start()
        let waiters = (0..<5).map { _ in t.pending("held", "x") }
        t.run()
        t.upstream.failHeld(TransformError.failed("boom"))
        t.run()
        for w in waiters { #expect(failureResult(of: w, as: TransformError.self) == .failed("boom")) }
        #expect(t.figure("upstream_failures") == 1)
        let retry = t.pending("held", "x")
        t.run()
        t.upstream.answer("X")
        t.run()
        #expect(text(retry) == "X")
        #expect(t.upstream.heldCalls == ["x", "x"])
    }

    @Test("The upstream's typed errors pass through: unknown transform and too large")
    func typedErrorsPassThrough() {
        var limits = ServerLimits()
        limits.maxRequestBytes = 20
        let t = ProxyTestbed(limits: limits) { $0.upstreamTransforms = ["gone", "upper"] }
        t.start()
        let gone = t.pending("gone", "x")
        let big = t.pending("upper", String(repeating: "x", count: 40))
        t.run()
        #expect(failureResult(of: gone, as: TransformError.self) == .unknownTransform("gone"))
        #expect(failureResult(of: big, as: TransformError.self) == .tooLarge)
        // Not retried: one request each.
        #expect(t.reactor.connectAttempts.count == 1)
    }

    @Test("An unreachable upstream, after the retries, fails with upstream_unavailable")
    func unreachable() {
        let t = ProxyTestbed {
            $0.upstreamTransforms = ["upper"]
            $0.client.backoff = .sequence([.zero, .milliseconds(10)])
        }
        t.start()
        t.kill(0)
        let d = t.pending("upper", "x")
        t.run()
        t.advance(.milliseconds(10))
        guard case .upstreamUnavailable(let why)? = failureResult(of: d, as: TransformError.self) else {
            Issue.record("expected upstreamUnavailable")
            return
        }
        #expect(why.contains("refused"))
        #expect(t.reactor.connectAttempts.count == 2)
        #expect(t.figure("upstream_0_failures") == 2)
    }

    @Test("A name not in the upstream's list reaches nothing upstream")
    func guardedDispatch() {
        let t = ProxyTestbed()
        t.start()
        let attempts = t.reactor.connectAttempts.count
        #expect(failedError(t.request("nosuch", "x")) == .unknownTransform("nosuch"))
        #expect(failedError(t.request("Upper", "x")) == .invalidName)
        #expect(failedError(t.request("../etc", "x")) == .invalidName)
        t.run()
        #expect(t.reactor.connectAttempts.count == attempts)
        #expect(!t.receivedUpstream().contains("nosuch"))
    }

    @Test("Text that is not UTF-8 fails at the proxy and reaches nothing upstream")
    func invalidUTF8() {
        let t = ProxyTestbed()
        t.start()
        let outcome = [UInt8]("upper".utf8).withUnsafeBytes { n in
            [UInt8]([0x61, 0xFF]).withUnsafeBytes { t.backend.start(name: n, text: $0, context: t.context) }
        }
        #expect(failedError(outcome) == .invalidUTF8)
    }

    @Test("Cancelling one of two waiters keeps the upstream call; cancelling the last withdraws it")
    func cancelLastWaiter() {
        let t = ProxyTestbed()
        t.start()
        let a = t.pending("held", "poem")
        let b = t.pending("held", "poem")
        t.run()
        a.cancel()
        t.run()
        #expect(t.upstream.cancelled.isEmpty)
        #expect(t.openUpstreamConnections() == 1)
        expectNoResult(b)
        b.cancel()
        t.run()
        // The proxy closed its connection (nothing else used it), so the upstream server
        // cancelled the work too.
        #expect(t.upstream.cancelled == ["poem"])
        #expect(t.openUpstreamConnections() == 0)
        #expect(t.figure("upstream_cancellations") == 1)
        #expect(t.log.contains("Fetching held from upstream.", level: .debug))
        #expect(t.log.contains("Canceling held upstream call.", level: .debug))
        _ = failureResult(of: a, as: CancelledError.self)
        _ = failureResult(of: b, as: CancelledError.self)
        // Nothing fires later, and a new request makes a new call.
        let c = t.pending("held", "poem")
        t.run()
        t.upstream.answer("POEM")
        t.run()
        #expect(text(c) == "POEM")
        #expect(t.upstream.heldCalls == ["poem", "poem"])
    }

    @Test("A cancelled call's connection stays open while another call uses it")
    func cancelKeepsSharedConnection() {
        let t = ProxyTestbed()
        t.start()
        let a = t.pending("held", "a")
        let b = t.pending("held", "b")
        t.run()
        a.cancel()
        _ = failureResult(of: a, as: CancelledError.self)
        t.run()
        #expect(t.openUpstreamConnections() == 1)
        t.upstream.answer("A (dropped)")
        t.upstream.answer("B")
        t.run()
        #expect(text(b) == "B")
    }

    @Test("Requests made before the first list wait for it, run in order, and are guarded by it")
    func listBeforeReady() {
        let t = ProxyTestbed()
        t.backend.startService()  // the ?list request is made but not yet answered
        let upper = t.pending("upper", "first")
        let nosuch = t.pending("nosuch", "x")
        let tally = t.pending("tally", "second")
        #expect(t.backend.catalog.isEmpty)
        t.run()
        #expect(text(upper) == "FIRST")
        #expect(failureResult(of: nosuch, as: TransformError.self) == .unknownTransform("nosuch"))
        #expect(text(tally) == "SECOND")
        #expect(t.backend.catalog.map(\.name).contains("slowcummingsify"))
        let sent = t.receivedUpstream()
        #expect(sent.hasPrefix(ns("?list")))
        #expect(!sent.contains("nosuch"))
        #expect(sent.range(of: "!upper.first")!.lowerBound < sent.range(of: "!tally.second")!.lowerBound)
    }

    @Test("A listing before the first upstream list fails with upstream_unavailable, then lists once it is known")
    func listingBeforeReady() {
        let t = ProxyTestbed()
        let state = ServerState(backend: t.backend, clock: t.reactor.clock)
        func ask(_ request: String, on factory: any ServerFactory) -> String {
            let transport = StringTransport()
            transport.connect(factory.buildProtocol(peer: transport.peer)!)
            transport.receive(request)
            return transport.string()
        }
        t.backend.startService()  // the ?list request is made but not yet answered
        #expect(!t.backend.catalogIsKnown)
        #expect(ask(ns("?list"), on: NetstringTransformFactory(state: state)).contains(":-upstream_unavailable the upstream's transform list is not known yet"))
        #expect(ask("list\n", on: LineTransformFactory(state: state)).hasPrefix("ERR upstream_unavailable "))
        let http = ask("GET /transforms HTTP/1.1\r\nHost: proxy\r\n\r\n", on: HTTPTransformFactory(state: state))
        #expect(http.hasPrefix("HTTP/1.1 503 "))
        #expect(http.contains("upstream_unavailable"))
        t.run()
        #expect(t.backend.catalogIsKnown)
        let listed = ask(ns("?list"), on: NetstringTransformFactory(state: state))
        #expect(listed.contains("+cummingsify\n"))
        #expect(listed.contains("\ntally\n"))
    }

    @Test("Requests waiting for a list that cannot be had fail with upstream_unavailable")
    func listUnavailable() {
        let t = ProxyTestbed { $0.client.backoff = .once }
        t.kill(0)
        t.backend.startService()
        let d = t.pending("upper", "x")
        t.run()
        guard case .upstreamUnavailable? = failureResult(of: d, as: TransformError.self) else {
            Issue.record("expected upstreamUnavailable")
            return
        }
        #expect(t.figure("upstream_list_failures") == 1)
    }

    @Test("After a failed first list, a request fetches it again once the upstream is back")
    func listRecovers() {
        let t = ProxyTestbed { $0.client.backoff = .once }
        t.kill(0)
        t.start()
        #expect(t.figure("upstream_list_failures") == 1)
        t.revive(0)
        let d = t.pending("upper", "back")
        t.run()
        #expect(text(d) == "BACK")
        #expect(t.figure("upstream_list_failures") == 1)
    }

    @Test("The list is refreshed periodically: a transform added upstream becomes reachable")
    func listRefresh() {
        let t = ProxyTestbed { $0.listRefreshInterval = .seconds(10) }
        t.start()
        #expect(failedError(t.request("fresh", "x")) == .unknownTransform("fresh"))
        try! t.upstream.service.register(
            Transform(name: "fresh", summary: "new", body: .synchronous { $0 + "!" }))
        t.advance(.seconds(10))
        let d = t.pending("fresh", "x")
        t.run()
        #expect(text(d) == "x!")
    }

    @Test("With --upstream-transforms an original-protocol upstream serves the given names")
    func originalProtocolUpstream() {
        let t = ProxyTestbed { $0.upstreamTransforms = ["upper"] }
        // Replace upstream 0's netstring port with the book's original server.
        _ = t.reactor.listener(port: 10001)?.stopListening()
        _ = try! t.reactor.listenTCP(port: 10001, factory: OriginalServerFactory(), interface: "127.0.0.1", backlog: 5)
        t.start()
        #expect(t.backend.catalog.map(\.name) == ["upper"])
        let d = t.pending("upper", "poem")
        t.run()
        #expect(text(d) == "POEM")
        #expect(t.backend.upstream.isOriginalForm(Endpoint(host: "127.0.0.1", port: 10001)))
    }

    @Test("A killed upstream fails over to the next one: no request fails")
    func failover() {
        let t = ProxyTestbed(upstreams: 2)
        t.start()
        let first = t.pending("held", "one")
        t.run()
        #expect(t.upstreams[0].heldCalls == ["one"])
        t.kill(0)
        t.run()
        t.advance(.milliseconds(100))
        #expect(t.upstreams[1].heldCalls == ["one"])
        t.upstreams[1].answer("ONE")
        t.run()
        #expect(text(first) == "ONE")
        let second = t.pending("tally", "two")
        t.run()
        #expect(text(second) == "TWO")
        #expect(t.figure("upstream_0_failures")! >= 1)
        #expect(t.figure("upstream_1_attempts")! >= 2)
    }

    @Test("Statistics carry cache, single-flight and per-upstream latency figures")
    func statistics() {
        let t = ProxyTestbed()
        t.start()
        _ = t.pending("held", "x")
        t.run()
        t.advance(.milliseconds(5))
        t.upstream.answer("X")
        t.run()
        let names = Set(t.backend.statistics.map(\.name))
        for n in [
            "cache_hits", "cache_misses", "cache_evictions", "cache_bytes", "single_flight_joins",
            "upstream_cancellations", "upstream_0_latency_p50_ms", "upstream_0_latency_p99_ms", "upstream_0_failures",
        ] {
            #expect(names.contains(n), "missing \(n)")
        }
        // Three attempts: the ?list and the client's ?limits (answered at once), and the held
        // call (5 ms).
        #expect(t.figure("upstream_0_attempts") == 3)
        #expect(t.figure("upstream_0_latency_p50_ms") == 0)
        #expect(t.figure("upstream_0_latency_p99_ms")! >= 5)
    }

    @Test("Stopping the service closes the upstream connections")
    func stopClosesConnections() {
        let t = ProxyTestbed()
        t.start()
        _ = t.pending("tally", "x")
        t.run()
        #expect(t.openUpstreamConnections() == 1)
        _ = successResult(of: t.backend.stopService())
        t.run()
        #expect(t.openUpstreamConnections() == 0)
    }
}

/// The book's original server: `name.text` gets the upper-cased text and a close; anything else
/// (the extended `!`/`?` forms, an unknown name) is closed without a reply.
final class OriginalServer: NetstringReceiver {
    override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        let s = String(decoding: payload, as: UTF8.self)
        guard s.hasPrefix("upper.") else {
            transport?.loseConnection()
            return
        }
        sendString(Array(s.dropFirst(6).uppercased().utf8))
        transport?.loseConnection()
    }
}

final class OriginalServerFactory: ServerFactory {
    func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? { OriginalServer() }
}

func ns(_ s: String) -> String { "\(s.utf8.count):\(s)," }
