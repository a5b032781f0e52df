import Testing
import XformCore
import XformFraming
import XformTesting

/// `s` with every `\n` turned into CRLF, as bytes.
private func crlf(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    for b in s.utf8 {
        if b == UInt8(ascii: "\n") { out.append(UInt8(ascii: "\r")) }
        out.append(b)
    }
    return out
}

private func get(_ target: String, _ headers: [HTTPHeader] = [HTTPHeader(name: "Host", value: "x")], keepAlive: Bool = true)
    -> HTTPRequest
{
    HTTPRequest(method: "GET", target: target, headers: headers, keepAlive: keepAlive)
}

private func decodeOne(_ input: [UInt8], limits: HTTPRequestLimits = HTTPRequestLimits()) throws -> HTTPRequest? {
    var d = HTTPRequestDecoder(limits: limits)
    d.feed(input)
    return try d.next()
}

@Suite("HTTPRequestDecoder")
struct HTTPDecoderTests {
    @Test("Pipelined GET and POST requests decode in order under every chunking")
    func verifierPipelined() {
        let host = HTTPHeader(name: "Host", value: "127.0.0.1:10003")
        let pairs: [([UInt8], [HTTPRequest])] = [
            (crlf("GET /metrics HTTP/1.1\nHost: 127.0.0.1:10003\n\n"), [get("/metrics", [host])]),
            (
                crlf("POST /transform/upper HTTP/1.1\nhost: 127.0.0.1:10003\nContent-Length: 5\n\n") + bytes("a\r\nb\n"),
                [
                    HTTPRequest(
                        method: "POST", target: "/transform/upper",
                        headers: [
                            HTTPHeader(name: "host", value: "127.0.0.1:10003"),
                            HTTPHeader(name: "Content-Length", value: "5"),
                        ], body: bytes("a\r\nb\n"))
                ]
            ),
            (crlf("GET /readyz HTTP/1.0\n\n"), [HTTPRequest(method: "GET", target: "/readyz", version: .http10, keepAlive: false)]),
            (
                crlf("GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\nHost: x\nConnection: close\n\n"),
                [get("/a"), get("/b", [HTTPHeader(name: "Host", value: "x"), HTTPHeader(name: "Connection", value: "close")], keepAlive: false)]
            ),
            (crlf("\nGET /healthz HTTP/1.1\nHost:x\n\n"), [get("/healthz")]),
            (
                crlf("POST /transform/upper HTTP/1.1\nHost: x\nContent-Length: 0\n\n"),
                [
                    HTTPRequest(
                        method: "POST", target: "/transform/upper",
                        headers: [HTTPHeader(name: "Host", value: "x"), HTTPHeader(name: "Content-Length", value: "0")])
                ]
            ),
        ]
        let failures = DecoderVerifier<HTTPRequestDecoder>.verify(inputOutputPairs: pairs) { HTTPRequestDecoder() }
        #expect(failures.isEmpty)
    }

    @Test("Header names are matched case-insensitively and values are trimmed")
    func caseInsensitiveHeaders() throws {
        let r = try #require(
            try decodeOne(crlf("POST /t HTTP/1.1\nhOsT: h\nCONTENT-length:   3 \t\nX-Thing:\tv a l \n\n") + bytes("abc")))
        #expect(r.body == bytes("abc"))
        #expect(r.header("content-length") == "3")
        #expect(r.header("x-thing") == "v a l")
        #expect(r.header("HOST") == "h")
        #expect(r.header("missing") == nil)
        #expect(r.path == "/t")
    }

    @Test("Keep-alive follows the version and the Connection tokens")
    func keepAliveRules() throws {
        func ka(_ version: String, _ connection: String?) throws -> Bool {
            var s = "GET / \(version)\nHost: x\n"
            if let connection { s += "Connection: \(connection)\n" }
            return try #require(try decodeOne(crlf(s + "\n"))).keepAlive
        }
        #expect(try ka("HTTP/1.1", nil))
        #expect(try !ka("HTTP/1.1", "close"))
        #expect(try !ka("HTTP/1.1", "Upgrade, CLOSE"))
        #expect(try ka("HTTP/1.1", "keep-alive"))
        #expect(try !ka("HTTP/1.0", nil))
        #expect(try ka("HTTP/1.0", "Keep-Alive"))
        #expect(try !ka("HTTP/1.0", "keep-alive, close"))
    }

    @Test("A head of exactly the limit is accepted and one byte more is refused with 431")
    func headLimit() throws {
        let limits = HTTPRequestLimits(maxHeadBytes: 64)
        let base = "GET / HTTP/1.1\nHost: x\nX: \n\n"
        let pad = 64 - crlf(base).count
        let exact = crlf("GET / HTTP/1.1\nHost: x\nX: " + String(repeating: "a", count: pad) + "\n\n")
        #expect(exact.count == 64)
        #expect(try decodeOne(exact, limits: limits)?.header("x")?.count == pad)
        let over = crlf("GET / HTTP/1.1\nHost: x\nX: " + String(repeating: "a", count: pad + 1) + "\n\n")
        let failures = DecoderVerifier<HTTPRequestDecoder>.verifyRejects(
            over, makeDecoder: { HTTPRequestDecoder(limits: limits) },
            matching: { ($0 as? HTTPRequestError) == .headersTooLarge })
        #expect(failures.isEmpty)
    }

    @Test("An endless head is refused once it passes the limit, without waiting for its end")
    func endlessHead() throws {
        var d = HTTPRequestDecoder()
        d.feed(crlf("GET / HTTP/1.1\nHost: x\n"))
        #expect(try d.next() == nil)
        for _ in 0..<80 {
            d.feed(crlf("X-Filler: " + String(repeating: "f", count: 100) + "\n"))
            do {
                _ = try d.next()
            } catch let e as HTTPRequestError {
                #expect(e == .headersTooLarge)
                #expect(e.status == 431)
                #expect(throws: HTTPRequestError.headersTooLarge) { try d.next() }
                return
            }
        }
        Issue.record("8 KiB of header fields were accepted")
    }

    @Test("A request line longer than the limit is refused with 414")
    func longRequestLine() {
        let line = bytes("GET /" + String(repeating: "a", count: 9000))
        let failures = DecoderVerifier<HTTPRequestDecoder>.verifyRejects(
            line, makeDecoder: { HTTPRequestDecoder() }, matching: { ($0 as? HTTPRequestError)?.status == 414 })
        #expect(failures.isEmpty)
    }

    @Test("More header fields than the maximum are refused with 431")
    func headerCount() throws {
        let limits = HTTPRequestLimits(maxHeaderCount: 3)
        #expect(try decodeOne(crlf("GET / HTTP/1.1\nHost: x\nA: 1\nB: 2\n\n"), limits: limits) != nil)
        #expect(throws: HTTPRequestError.headersTooLarge) {
            try decodeOne(crlf("GET / HTTP/1.1\nHost: x\nA: 1\nB: 2\nC: 3\n\n"), limits: limits)
        }
    }

    @Test("A body over the maximum is refused with 413 as soon as the head is read")
    func bodyLimit() throws {
        let limits = HTTPRequestLimits(maxBodyBytes: 10)
        #expect(try decodeOne(crlf("POST / HTTP/1.1\nHost: x\nContent-Length: 10\n\n") + bytes("0123456789"), limits: limits)?.body.count == 10)
        var d = HTTPRequestDecoder(limits: limits)
        d.feed(crlf("POST / HTTP/1.1\nHost: x\nContent-Length: 11\n\n"))
        #expect(throws: HTTPRequestError.payloadTooLarge(declared: "11")) { try d.next() }
        let huge = "99999999999999999999999999999999999999"
        #expect(throws: HTTPRequestError.payloadTooLarge(declared: huge)) {
            try decodeOne(crlf("POST / HTTP/1.1\nHost: x\nContent-Length: \(huge)\n\n"), limits: limits)
        }
        #expect(try decodeOne(crlf("POST / HTTP/1.1\nHost: x\nContent-Length: 0000000000000000000000003\n\n") + bytes("abc"), limits: limits)?.body == bytes("abc"))
    }

    @Test("A body arriving after its head waits for every declared byte")
    func bodyInPieces() throws {
        var d = HTTPRequestDecoder()
        d.feed(crlf("POST /transform/upper HTTP/1.1\nHost: x\nContent-Length: 6\n\n"))
        #expect(try d.next() == nil)
        #expect(!d.isIdle)
        d.feed(bytes("abc"))
        #expect(try d.next() == nil)
        d.feed(bytes("defGET"))
        #expect(try d.next()?.body == bytes("abcdef"))
        #expect(try d.next() == nil)
        #expect(throws: HTTPRequestError.incompleteRequest) { try d.finish() }
    }

    @Test("Expect: 100-continue is announced until the continue is sent")
    func expectContinue() throws {
        var d = HTTPRequestDecoder()
        d.feed(crlf("POST /t HTTP/1.1\nHost: x\nExpect: 100-continue\nContent-Length: 2\n\n"))
        #expect(try d.next() == nil)
        #expect(d.awaitsContinue)
        d.continueSent()
        #expect(!d.awaitsContinue)
        d.feed(bytes("ok"))
        #expect(try d.next()?.body == bytes("ok"))
        #expect(!d.awaitsContinue)
        #expect(d.isIdle)
        #expect(throws: HTTPRequestError.expectationFailed) {
            try decodeOne(crlf("POST /t HTTP/1.1\nHost: x\nExpect: something-else\nContent-Length: 2\n\nok"))
        }
    }

    /// Malformed requests and the status each must get.
    static let malformed: [(String, [UInt8], Int)] = [
        ("chunked body", crlf("POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n"), 411),
        ("chunked after gzip", crlf("POST / HTTP/1.1\nHost: x\nTransfer-Encoding: gzip, chunked\n\n"), 411),
        ("unknown transfer coding", crlf("POST / HTTP/1.1\nHost: x\nTransfer-Encoding: gzip\n\n"), 501),
        ("both framings", crlf("POST / HTTP/1.1\nHost: x\nContent-Length: 3\nTransfer-Encoding: chunked\n\n"), 400),
        ("conflicting lengths", crlf("POST / HTTP/1.1\nHost: x\nContent-Length: 3\nContent-Length: 4\n\nabcd"), 400),
        ("length list", crlf("POST / HTTP/1.1\nHost: x\nContent-Length: 3, 3\n\nabc"), 400),
        ("signed length", crlf("POST / HTTP/1.1\nHost: x\nContent-Length: +3\n\nabc"), 400),
        ("empty length", crlf("POST / HTTP/1.1\nHost: x\nContent-Length:\n\n"), 400),
        ("obs-fold", crlf("GET / HTTP/1.1\nHost: x\nX-A: 1\n  continued\n\n"), 400),
        ("space before colon", crlf("GET / HTTP/1.1\nHost : x\n\n"), 400),
        ("no colon", crlf("GET / HTTP/1.1\nHost x\n\n"), 400),
        ("empty name", crlf("GET / HTTP/1.1\nHost: x\n: v\n\n"), 400),
        ("control char in value", crlf("GET / HTTP/1.1\nHost: x\nX: a\u{01}b\n\n"), 400),
        ("NUL in value", crlf("GET / HTTP/1.1\nHost: x\nX: a\u{00}b\n\n"), 400),
        ("bare LF line", bytes("GET / HTTP/1.1\nHost: x\r\n\r\n"), 400),
        ("bare CR", bytes("GET / HTTP/1.1\r\nHo\rst: x\r\n\r\n"), 400),
        ("missing Host in 1.1", crlf("GET / HTTP/1.1\n\n"), 400),
        ("two Hosts", crlf("GET / HTTP/1.1\nHost: a\nHost: b\n\n"), 400),
        ("lowercase version", crlf("GET / http/1.1\nHost: x\n\n"), 400),
        ("HTTP/2.0", crlf("GET / HTTP/2.0\nHost: x\n\n"), 505),
        ("HTTP/0.9 style", crlf("GET /\n\n"), 400),
        ("double space", crlf("GET  / HTTP/1.1\nHost: x\n\n"), 400),
        ("space in target", crlf("GET /a b HTTP/1.1\nHost: x\n\n"), 400),
        ("trailing space", crlf("GET / HTTP/1.1 \nHost: x\n\n"), 400),
        ("bad method char", crlf("G(T / HTTP/1.1\nHost: x\n\n"), 400),
        ("non-ASCII target", crlf("GET /\u{e9} HTTP/1.1\nHost: x\n\n"), 400),
        ("TLS hello", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03] + crlf("\n\n"), 400),
        ("netstring", bytes("27:cummingsify.HERE IS MY POEM,\r\n\r\n"), 400),
        ("unsupported expectation", crlf("GET / HTTP/1.1\nHost: x\nExpect: 200-ok\n\n"), 417),
    ]

    @Test("Malformed requests are refused with their status under every chunking", arguments: 0..<malformed.count)
    func malformedTable(_ i: Int) {
        let (name, input, status) = Self.malformed[i]
        let failures = DecoderVerifier<HTTPRequestDecoder>.verifyRejects(
            input, recordIssues: false, makeDecoder: { HTTPRequestDecoder() },
            matching: { ($0 as? HTTPRequestError)?.status == status })
        #expect(failures.isEmpty, "\(name): \(failures.first.map(String.init(describing:)) ?? "")")
    }

    @Test("A good request before a malformed one is still delivered")
    func goodThenBad() throws {
        var d = HTTPRequestDecoder()
        d.feed(crlf("GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\n\n"))
        #expect(try d.next()?.target == "/a")
        #expect(throws: HTTPRequestError.badRequest("missing Host field")) { try d.next() }
    }

    @Test("Random bytes never crash the decoder and never produce more requests than heads")
    func fuzz() {
        var rng = SplitMix64(seed: 13)
        let pieces = [
            "GET ", "POST ", "/", "transform/upper", " HTTP/1.1", " HTTP/1.0", "\r\n", "\r", "\n", "Host: x",
            "Content-Length: ", "3", "99999999999", "Transfer-Encoding: chunked", "Connection: close", ":", " ",
            "abc", "\u{0}",
        ]
        for _ in 0..<2000 {
            var input: [UInt8] = []
            for _ in 0..<Int(rng.next() % 16) { input += bytes(pieces[Int(rng.next() % UInt64(pieces.count))]) }
            var d = HTTPRequestDecoder(limits: HTTPRequestLimits(maxHeadBytes: 64, maxBodyBytes: 16))
            var produced = 0
            for chunk in randomChunks(input, seed: rng.next(), max: 7) {
                d.feed(chunk)
                do {
                    while let r = try d.next() {
                        produced += 1
                        #expect(r.body.count <= 16)
                    }
                } catch {
                    #expect(error is HTTPRequestError)
                    break
                }
            }
            let heads = input.indices.filter { i in i + 3 < input.count && input[i..<i + 4].elementsEqual(bytes("\r\n\r\n")) }
            #expect(produced <= heads.count)
        }
    }
}

@Suite("HTTPResponseEncoder")
struct HTTPResponseEncoderTests {
    @Test("A text response has its exact head, length and body")
    func textResponse() {
        let r = HTTPResponse.text(200, bytes("here is my poem"), headers: [HTTPHeader(name: "X-Xform-Transform", value: "cummingsify")])
        #expect(
            HTTPResponseEncoder.encode(r, keepAlive: true)
                == bytes(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Xform-Transform: cummingsify\r\n"
                        + "Content-Length: 15\r\n\r\nhere is my poem"))
    }

    @Test("Connection fields follow keep-alive and the request's version")
    func connectionFields() {
        let r = HTTPResponse(status: 503, headers: [HTTPHeader(name: "X-Xform-Error", value: "shutting_down")])
        #expect(
            HTTPResponseEncoder.encode(r, keepAlive: false)
                == bytes("HTTP/1.1 503 Service Unavailable\r\nX-Xform-Error: shutting_down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
        #expect(
            HTTPResponseEncoder.encode(HTTPResponse(status: 204), keepAlive: true, requestVersion: .http10)
                == bytes("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"))
    }

    @Test("A HEAD response keeps the body's length but not the body")
    func headResponse() {
        #expect(
            HTTPResponseEncoder.encode(HTTPResponse(status: 200, body: bytes("ok\n")), keepAlive: true, includeBody: false)
                == bytes("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"))
    }

    @Test("A refused request's response carries the error's status and reason")
    func errorResponse() {
        let bytesOut = HTTPResponseEncoder.encode(.error(.lengthRequired), keepAlive: false)
        let text = String(decoding: bytesOut, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 411 Length Required\r\nContent-Type: text/plain; charset=utf-8\r\n"))
        #expect(text.hasSuffix("Connection: close\r\n\r\nchunked bodies are not supported; send a Content-Length\n"))
        for status in [400, 411, 413, 414, 417, 431, 501, 505, 404, 500, 503] {
            #expect(HTTPResponseEncoder.reasonPhrase(status) != "Unknown")
        }
    }
}
