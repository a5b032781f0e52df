import XformCore
import XformFraming
import XformMetrics
import XformTransforms

/// The HTTP front-end (protocol-spec/http.md), one instance per connection: a thin codec
/// (``HTTPRequestReceiver``, ``HTTPResponseEncoder``) around the connection's
/// ``ConnectionSession``, on the same backend, limits and counters as the netstring and line
/// ports.
///
/// Routes: `POST /transform/NAME` runs a transform on the body; `GET` (or `HEAD`) `/healthz`,
/// `/readyz`, `/metrics` and `/transforms` answer from the server's state. Keep-alive and
/// pipelining follow HTTP/1.x; responses go out in request order. A malformed request gets its
/// status and `Connection: close`, then the connection closes.
public final class HTTPTransformProtocol: HTTPRequestReceiver, TransformSessionHost, LimitCountedConnection {
    /// How the response to one request is framed.
    struct ReplyStyle {
        /// False: the response says `Connection: close` and the connection closes after it.
        var keepAlive: Bool
        /// The request's version (an HTTP/1.0 keep-alive response says so).
        var version: HTTPVersion
        /// A `HEAD` request: the head only.
        var headOnly: Bool
    }

    /// The response field that carries a typed error code.
    static let errorField = "X-Xform-Error"
    /// The path prefix of the transform route.
    static let transformPrefix = "/transform/"

    let state: ServerState
    var port: ServerPort { .http }
    var host: SessionHostState

    /// Creates the protocol for one connection from `peer` (log lines read the peer from the
    /// transport: no copy per connection).
    public init(state: ServerState, peer: SocketAddress) {
        self.state = state
        self.host = SessionHostState(configuration: state.sessionConfiguration)
        super.init(limits: HTTPRequestLimits(maxBodyBytes: state.limits.maxRequestBytes))
    }

    deinit { host.membership.end() }

    public override func connectionMade() {
        super.connectionMade()
        startSession()
    }

    public override func dataReceived(_ data: UnsafeRawBufferPointer) {
        received(data.count)
        super.dataReceived(data)
        perform(host.session.readEnded())
    }

    public override func requestReceived(_ request: HTTPRequest) {
        guard host.session.acceptsRequests else { return }
        let style = ReplyStyle(keepAlive: request.keepAlive, version: request.version, headOnly: request.method == "HEAD")
        route(request, style: style)
        if !request.keepAlive { perform(host.session.closeAfterOwed()) }
    }

    /// Answers one request by its path and method.
    func route(_ request: HTTPRequest, style: ReplyStyle) {
        let path = request.path
        if path.hasPrefix(Self.transformPrefix) {
            guard request.method == "POST" else { return respond(Self.methodNotAllowed("POST"), style: style) }
            var name = String(path.dropFirst(Self.transformPrefix.count))
            name.withUTF8 { name in
                request.body.withUnsafeBytes { runRequest(name: UnsafeRawBufferPointer(name), text: $0, style: style) }
            }
            return
        }
        let response: HTTPResponse
        switch path {
        case "/healthz":
            response = .text(200, Array("ok\n".utf8))
        case "/readyz":
            response =
                state.isReady
                ? .text(200, Array("ready\n".utf8))
                : .text(503, Array("draining\n".utf8), headers: [HTTPHeader(name: Self.errorField, value: "shutting_down")])
        case "/metrics":
            response = HTTPResponse(
                status: 200, headers: [HTTPHeader(name: "Content-Type", value: PrometheusText.contentType)],
                body: Array(state.metricsText().utf8))
        case "/transforms":
            if let unknown = state.catalogUnknown, request.method == "GET" || request.method == "HEAD" {
                return respond(
                    .text(
                        Self.status(of: unknown.code), Array((unknown.message + "\n").utf8),
                        headers: [HTTPHeader(name: Self.errorField, value: unknown.code)]),
                    style: style)
            }
            response = .text(200, Array(state.backend.catalog.map { "\($0.name)\t\($0.summary)\n" }.joined().utf8))
        default:
            return respond(
                .text(404, Array("not found\n".utf8), headers: [HTTPHeader(name: Self.errorField, value: "not_found")]),
                style: style)
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            return respond(Self.methodNotAllowed("GET, HEAD"), style: style)
        }
        respond(response, style: style)
    }

    static func methodNotAllowed(_ allow: String) -> HTTPResponse {
        .text(405, Array("method not allowed\n".utf8), headers: [HTTPHeader(name: "Allow", value: allow)])
    }

    /// Sends `response` framed for the request it answers, in request order.
    func respond(_ response: HTTPResponse, style: ReplyStyle) {
        send(encode(response, style: style))
    }

    /// Encodes `response`; while the connection drains (shutdown) it says `Connection: close`,
    /// so the client opens its next connection elsewhere instead of finding this one closed.
    func encode(_ response: HTTPResponse, style: ReplyStyle) -> [UInt8] {
        HTTPResponseEncoder.encode(
            response, keepAlive: style.keepAlive && !host.session.draining, requestVersion: style.version,
            includeBody: !style.headOnly)
    }

    // MARK: Replies

    func successReply(_ text: [UInt8], style: ReplyStyle) -> [UInt8] {
        encode(.text(200, text), style: style)
    }

    /// No in-place replies: an HTTP response has a head built per response, and this port is
    /// not the hot path.
    func writeFastReply(_ fast: CheckedASCIIFastPath, text: UnsafeRawBufferPointer, style: ReplyStyle) -> Bool { false }

    /// Every typed error has a status (protocol-spec/http.md section 2) and its code in
    /// `X-Xform-Error`; the body is the message, for people.
    func errorReply(_ error: WireError, style: ReplyStyle) -> [UInt8]? {
        encode(
            .text(
                Self.status(of: error.code), Array((error.message + "\n").utf8),
                headers: [HTTPHeader(name: Self.errorField, value: error.code)]),
            style: style)
    }

    /// A request still incomplete at the request timeout gets `408 Request Timeout`; an idle
    /// keep-alive connection closes silently, as HTTP servers do.
    func expiryNotice(_ expiry: ConnectionSession<Deferred<[UInt8]>>.Expiry) -> [UInt8]? {
        guard case .request = expiry else { return nil }
        return HTTPResponseEncoder.encode(
            .text(408, Array("request timeout\n".utf8), headers: [HTTPHeader(name: Self.errorField, value: expiry.code)]),
            keepAlive: false)
    }

    /// True while part of a request has arrived and the rest has not.
    var hasPartialRequest: Bool { bufferedByteCount > 0 }

    /// The status of a typed error code.
    static func status(of code: String) -> Int {
        switch code {
        case "unknown_transform": return 404
        case "bad_request", "invalid_utf8": return 400
        case "too_large": return 413
        case "shutting_down", "upstream_unavailable": return 503
        default: return 500
        }
    }

    // MARK: Malformed input, EOF, loss

    /// A malformed or over-limit request: its status, `Connection: close`, then the close.
    public override func requestRefused(_ error: HTTPRequestError) {
        debug("refused: \(error)")
        var response = HTTPResponse.error(error)
        response.headers.append(
            HTTPHeader(name: Self.errorField, value: error.status == 413 ? "too_large" : "bad_request"))
        send(HTTPResponseEncoder.encode(response, keepAlive: false))
        perform(host.session.closeAfterOwed())
    }

    /// `100 Continue` goes out only when no earlier response is owed (it would overtake it);
    /// otherwise the client sends its body after its own short wait.
    public override func continueRequested() {
        if host.session.mayWriteNow { write(HTTPResponseEncoder.continueResponse) }
    }

    public override func inputEnded() {
        perform(host.session.inputEnded())
    }

    public override func connectionLost(reason: ConnectionEnd) {
        endSession()
        super.connectionLost(reason: reason)
    }
}

/// Builds HTTP protocols (protocol-spec/http.md).
public final class HTTPTransformFactory: TransformProtocolFactory {
    public init(state: ServerState) {
        super.init(state: state) { HTTPTransformProtocol(state: $0, peer: $1) }
    }
}
