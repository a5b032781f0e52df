import Testing
import XformClient
import XformCore
import XformTesting

@Suite("TransformProxy deadline, timeout retries and ?limits (issue 11)")
struct DeadlineAndLimitsTests {
    @Test("A timeout is retried once by default, then the call fails with timedOut")
    func timeoutRetriedOnce() {
        let h = ProxyHarness {
            $0.timeout = .seconds(1)
            $0.deadline = nil
        }
        let d = h.proxy.xform("upper", "x")
        h.pending[0].succeed(with: FakeServer.silent())
        h.advance(.seconds(1))
        #expect(h.retries == [.timedOut(after: .seconds(1))])
        h.advance(.milliseconds(10))
        h.pending[0].succeed(with: FakeServer.silent())
        h.advance(.seconds(1))
        #expect(failureResult(of: d, as: TransformProxyError.self) == .timedOut(after: .seconds(1)))
        h.advance(.seconds(60))
        #expect(h.reactor.connectAttempts.count == 2)
    }

    @Test("timeoutRetries: 0 fails at the first timeout")
    func noTimeoutRetry() {
        let h = ProxyHarness {
            $0.timeout = .seconds(1)
            $0.timeoutRetries = 0
        }
        let d = h.proxy.xform("upper", "x")
        h.pending[0].succeed(with: FakeServer.silent())
        h.advance(.seconds(1))
        #expect(failureResult(of: d, as: TransformProxyError.self) == .timedOut(after: .seconds(1)))
        #expect(h.retries.isEmpty)
    }

    @Test("The deadline cuts an attempt's timeout to the time left")
    func deadlineCutsTimeout() {
        let h = ProxyHarness {
            $0.timeout = .seconds(30)
            $0.deadline = .seconds(2)
        }
        let d = h.proxy.xform("upper", "x")
        h.pending[0].succeed(with: FakeServer.silent())
        h.advance(.milliseconds(1999))
        expectNoResult(d)
        h.advance(.milliseconds(1))
        #expect(failureResult(of: d, as: TransformProxyError.self) == .timedOut(after: .seconds(2)))
    }

    @Test("No retry starts after the deadline, however many attempts the backoff allows")
    func deadlineBoundsRetries() {
        let h = ProxyHarness {
            $0.deadline = .seconds(1)
            $0.backoff = Backoff(initialDelay: .milliseconds(300), factor: 1, maxAttempts: 1000)
        }
        let d = h.proxy.xform("upper", "x")
        var elapsed = Duration.zero
        while !d.called, elapsed < .seconds(10) {
            for attempt in h.pending { attempt.fail(.refused) }
            h.advance(.milliseconds(100))
            elapsed += .milliseconds(100)
        }
        #expect(failureResult(of: d, as: TransformProxyError.self) == .connectionRefused(h.proxy.endpoints[0]))
        #expect(elapsed <= .seconds(1))
        #expect(h.reactor.connectAttempts.count == 4)
    }

    @Test("?limits is asked once; a text over max_request_bytes fails with tooLarge without being sent")
    func limitsRefuseLocally() {
        let h = ProxyHarness { $0.checkLimits = true }
        // "!upper." is 7 bytes: 13 bytes of text make 20, the limit; 14 make 21.
        let fits = h.proxy.xform("upper", String(repeating: "a", count: 13))
        let server = FakeServer { server, bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            if text.contains("?limits") { server.transport?.write(ns("+max_request_bytes=20\nother=1\n")) }
            if text.contains("!upper.") { server.transport?.write(ns("+" + String(repeating: "A", count: 13))) }
        }
        let pump = h.pending[0].succeed(with: server)
        pump.flush()
        #expect(successResult(of: fits) == String(repeating: "A", count: 13))
        let tooBig = h.proxy.xform("upper", String(repeating: "a", count: 14))
        h.advance()
        pump.flush()
        guard case .tooLarge(let message)? = failureResult(of: tooBig, as: TransformProxyError.self) else {
            Issue.record("expected tooLarge")
            return
        }
        #expect(message.contains("21 bytes") && message.contains("20 bytes"))
        #expect(server.received.count == ns("?limits").utf8.count + ns("!upper." + String(repeating: "a", count: 13)).utf8.count)
        #expect(h.retries.isEmpty)
    }

    @Test("A server without ?limits (bad_request) means no local check, and it is not asked again")
    func oldServerNoCheck() {
        let h = ProxyHarness { $0.checkLimits = true }
        var queries = 0
        let server = FakeServer { server, bytes in
            var text = Substring(String(decoding: bytes, as: UTF8.self))
            while let colon = text.firstIndex(of: ":"), let n = Int(text[..<colon]) {
                let body = text[text.index(after: colon)...].prefix(n)
                text = text[text.index(after: colon)...].dropFirst(n + 1)
                if body == "?limits" {
                    queries += 1
                    server.transport?.write(ns("-bad_request unknown query (try ?list)"))
                } else {
                    server.transport?.write(ns("+" + body.dropFirst("!upper.".count).uppercased()))
                }
            }
        }
        let first = h.proxy.xform("upper", "abc")
        let pump = h.pending[0].succeed(with: server)
        pump.flush()
        #expect(successResult(of: first) == "ABC")
        let second = h.proxy.xform("upper", String(repeating: "b", count: 50))
        h.advance()
        pump.flush()
        #expect(successResult(of: second) == String(repeating: "B", count: 50))
        #expect(queries == 1)
    }

    @Test("ServerLimitsReply parses key=value lines and ignores what it does not know")
    func parseLimits() {
        let r = ServerLimitsReply(parsing: "max_request_bytes=99999\nmax_line_length=16384\nnoise\nx=-1\n")
        #expect(r?.maxRequestBytes == 99_999)
        #expect(r?.values["max_line_length"] == 16_384)
        #expect(r?.values["x"] == nil)
        #expect(ServerLimitsReply(parsing: "max_line_length=3") == nil)
        #expect(r?.refusal(name: "upper", text: String(repeating: "a", count: 99_992)) == nil)
        #expect(r?.refusal(name: "upper", text: String(repeating: "a", count: 99_993)) != nil)
    }
}
