import Testing
import XformCore
import XformFraming
import XformTesting

/// Records what an ``HTTPRequestReceiver`` delivers.
private final class RecordingHTTPReceiver: HTTPRequestReceiver {
    var requests: [HTTPRequest] = []
    var refused: [HTTPRequestError] = []
    var ended = 0
    var pauseAfterEach = false

    override func requestReceived(_ request: HTTPRequest) {
        requests.append(request)
        if pauseAfterEach { pauseDelivery() }
    }

    override func requestRefused(_ error: HTTPRequestError) {
        refused.append(error)
        super.requestRefused(error)
    }

    override func inputEnded() { ended += 1 }
}

private func connected(_ r: RecordingHTTPReceiver) -> StringTransport {
    let t = StringTransport()
    r.makeConnection(t)
    return t
}

private let twoGets = bytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")

@Suite("HTTPRequestReceiver")
struct HTTPReceiverTests {
    @Test("Pipelined requests in one read are delivered in order")
    func pipelined() {
        let r = RecordingHTTPReceiver()
        let t = connected(r)
        r.dataReceived(twoGets)
        #expect(r.requests.map(\.target) == ["/a", "/b"])
        #expect(!t.disconnecting)
    }

    @Test("Paused delivery holds requests until resumed, then delivers them in order")
    func pauseResume() {
        let r = RecordingHTTPReceiver()
        _ = connected(r)
        r.pauseAfterEach = true
        r.dataReceived(twoGets)
        #expect(r.requests.map(\.target) == ["/a"])
        #expect(r.bufferedByteCount > 0)
        r.resumeDelivery()
        #expect(r.requests.map(\.target) == ["/a", "/b"])
        r.pauseAfterEach = false
        r.resumeDelivery()
        #expect(r.bufferedByteCount == 0)
    }

    @Test("Reading stops when a paused receiver buffers more than its backlog limit, and resumes with delivery")
    func backlog() {
        let r = RecordingHTTPReceiver(backlogLimit: 40)
        let t = connected(r)
        r.pauseDelivery()
        r.dataReceived(bytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(!t.readingPaused)
        r.dataReceived(bytes("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(t.readingPaused)
        r.resumeDelivery()
        #expect(!t.readingPaused)
        #expect(r.requests.count == 2)
    }

    @Test("A malformed request stops delivery, is reported once, and nothing after it is read")
    func refused() {
        let r = RecordingHTTPReceiver()
        let t = connected(r)
        r.dataReceived(bytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"))
        #expect(r.requests.map(\.target) == ["/a"])
        #expect(r.refused == [.lengthRequired])
        #expect(t.disconnecting)
        r.dataReceived(twoGets)
        #expect(r.requests.count == 1)
        #expect(r.refused.count == 1)
    }

    @Test("EOF after complete requests delivers them, then ends input once")
    func eof() {
        let r = RecordingHTTPReceiver()
        _ = connected(r)
        r.pauseAfterEach = true
        r.dataReceived(twoGets)
        r.readConnectionLost()
        #expect(r.ended == 0)
        r.pauseAfterEach = false
        r.resumeDelivery()
        #expect(r.requests.count == 2)
        #expect(r.ended == 1)
        r.readConnectionLost()
        #expect(r.ended == 1)
    }

    @Test("Expect: 100-continue gets the interim response once, before the body")
    func expectContinue() {
        let r = RecordingHTTPReceiver()
        let t = connected(r)
        r.dataReceived(bytes("POST /t HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"))
        #expect(t.written == HTTPResponseEncoder.continueResponse)
        r.dataReceived(bytes("a"))
        #expect(t.written == HTTPResponseEncoder.continueResponse)
        r.dataReceived(bytes("bc"))
        #expect(r.requests.map(\.body) == [bytes("abc")])
    }
}
