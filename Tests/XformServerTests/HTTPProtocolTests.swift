import Testing
import XformCore
import XformFraming
import XformMetrics
@testable import XformServer
import XformTesting
import XformTransforms

extension Harness {
    /// An HTTP protocol connected to a fresh string transport, behind the connection limit.
    func http() -> (HTTPTransformProtocol, StringTransport) {
        let t = StringTransport(deliversConnectionLost: true)
        let c = state.limited(HTTPTransformFactory(state: state), port: .http).buildProtocol(peer: t.peer)!
        t.connect(c)
        return (c as! HTTPTransformProtocol, t)
    }
}

/// A POST of `body` to `/transform/name`.
private func post(_ name: String, _ body: String, close: Bool = false) -> String {
    "POST /transform/\(name) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n"
        + (close ? "Connection: close\r\n" : "") + "\r\n" + body
}

private func get(_ path: String) -> String { "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n" }

private func ok(_ body: String) -> String {
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
}

@Suite("HTTP transform protocol, in memory")
struct HTTPProtocolTests {
    @Test("POST /transform/NAME answers the transformed text and keeps the connection")
    func transform() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive(post("cummingsify", "HERE IS MY POEM"))
        #expect(t.string() == ok("here is my poem"))
        #expect(!t.disconnecting)
        #expect(h.state.stats.requests(port: .http)["cummingsify"]?["ok"] == 1)
    }

    @Test("Pipelined requests are answered in order even when an early one is asynchronous, then Connection: close closes")
    func pipelinedWithAsync() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive(post("slowcummingsify", "FIRST") + get("/healthz") + post("upper", "second", close: true))
        #expect(t.value().isEmpty, "nothing may overtake the slow first reply")
        h.clock.advance(by: .milliseconds(100))
        #expect(
            t.string()
                == ok("first") + ok("ok\n")
                + "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\nConnection: close\r\n\r\nSECOND")
        #expect(t.disconnecting)
        #expect(h.state.stats.durations["slowcummingsify"]?.count == 1)
        #expect((h.state.stats.durations["slowcummingsify"]?.sum ?? 0) >= 0.1)
    }

    @Test("Typed errors become statuses with the code in X-Xform-Error")
    func typedErrors() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive(post("nope", "x"))
        #expect(t.string().hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(t.string().contains("\r\nX-Xform-Error: unknown_transform\r\n"))
        t.clear()
        t.receive(Array("POST /transform/upper HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n".utf8) + [0xFF, 0xFE])
        #expect(t.string().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(t.string().contains("\r\nX-Xform-Error: invalid_utf8\r\n"))
        #expect(!t.disconnecting)
    }

    @Test("A body over the request limit gets 413 and the close, before it is read")
    func tooLarge() {
        var limits = ServerLimits()
        limits.maxRequestBytes = 10
        let h = Harness(limits: limits)
        let (_, t) = h.http()
        t.receive("POST /transform/upper HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        #expect(t.string().hasPrefix("HTTP/1.1 413 Content Too Large\r\n"))
        #expect(t.string().contains("\r\nX-Xform-Error: too_large\r\nContent-Length: "))
        #expect(t.string().contains("\r\nConnection: close\r\n"))
        #expect(t.disconnecting)
    }

    @Test("/readyz answers 200 while listening and 503 from the first moment of a drain")
    func readiness() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive(get("/readyz"))
        #expect(t.string().hasPrefix("HTTP/1.1 503"), "not ready before the ports listen")
        t.clear()
        h.state.health.listening = true
        t.receive(get("/readyz"))
        #expect(t.string() == ok("ready\n"))
        t.clear()
        h.state.health.beginDrain()
        t.receive(get("/readyz") + get("/healthz"))
        #expect(
            t.string()
                == "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "X-Xform-Error: shutting_down\r\nContent-Length: 9\r\n\r\ndraining\n" + ok("ok\n"))
    }

    @Test("/metrics serves the counters by transform, port and outcome in the Prometheus format")
    func metrics() {
        let h = Harness()
        h.state.health.extraFamilies = { [.gauge("process_open_fds", help: "Number of open file descriptors.", 7)] }
        let (_, nt) = h.netstring()
        nt.receive(ns("!upper.abc"))
        let (_, t) = h.http()
        t.receive(post("upper", "abc") + post("upper", String(repeating: "x", count: 20_000)) + get("/metrics"))
        let text = t.string()
        #expect(text.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(text.contains("\nxform_requests_total{transform=\"upper\",port=\"netstring\",outcome=\"ok\"} 1\n"))
        #expect(text.contains("\nxform_requests_total{transform=\"upper\",port=\"http\",outcome=\"ok\"} 2\n"))
        #expect(text.contains("\nxform_request_duration_seconds_count{transform=\"upper\"} 3\n"))
        #expect(text.contains("\nxform_connections_open{port=\"http\"} 1\n"))
        #expect(text.contains("\nxform_connections_total{port=\"netstring\"} 1\n"))
        // Bytes by port: "10:!upper.abc," in, "4:+ABC," out on the netstring port.
        #expect(text.contains("\nxform_received_bytes_total{port=\"netstring\"} 14\n"))
        #expect(text.contains("\nxform_sent_bytes_total{port=\"netstring\"} 7\n"))
        #expect(text.contains("\nxform_received_bytes_total{port=\"line\"} 0\n"))
        #expect(!text.contains("\nxform_received_bytes_total{port=\"http\"} 0\n"))
        #expect(h.state.stats.bytesIn == ServerPort.allCases.map { h.state.stats.bytesIn($0) }.reduce(0, +))
        #expect(text.contains("\nxform_ready 0\n"))
        #expect(text.hasSuffix("# TYPE process_open_fds gauge\nprocess_open_fds 7\n"))
    }

    @Test("Wrong methods get 405 with Allow, unknown paths 404, HEAD the head only, /transforms the catalog")
    func routes() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive("GET /transform/upper HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(t.string().hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(t.string().contains("\r\nAllow: POST\r\n"))
        t.clear()
        t.receive(get("/nothing"))
        #expect(t.string().hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(t.string().contains("\r\nX-Xform-Error: not_found\r\n"))
        t.clear()
        t.receive("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(t.string() == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\n")
        t.clear()
        t.receive(get("/transforms"))
        let body = t.string().components(separatedBy: "\r\n\r\n")[1]
        let names = body.split(separator: "\n").map { String($0.split(separator: "\t")[0]) }
        #expect(names == h.service.catalog.map(\.name))
        #expect(names.contains("cummingsify"))
    }

    @Test("A malformed request is answered 400 with Connection: close, after the responses owed before it")
    func malformed() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive(post("slowcummingsify", "A") + "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n")
        #expect(t.value().isEmpty)
        h.clock.advance(by: .milliseconds(100))
        let s = t.string()
        #expect(s.hasPrefix(ok("a") + "HTTP/1.1 400 Bad Request\r\n"))
        #expect(s.contains("Connection: close\r\n"))
        #expect(t.disconnecting)
    }

    @Test("During a drain, the owed response says Connection: close, then the connection closes")
    func drainCloses() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive(post("slowcummingsify", "A"))
        h.state.beginShutdown()
        #expect(!t.disconnecting)
        h.clock.advance(by: .milliseconds(100))
        #expect(
            t.string()
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 1\r\nConnection: close\r\n\r\na")
        #expect(t.disconnecting)
    }

    @Test("Closing the connection cancels a pending transform (Part 19)")
    func cancelOnLoss() {
        let h = Harness()
        let (_, t) = h.http()
        t.receive(post("slowcummingsify", "A"))
        t.loseConnection()
        h.clock.advance(by: .milliseconds(100))
        #expect(t.value().isEmpty)
        #expect(h.state.connectionCount == 0)
    }
}
