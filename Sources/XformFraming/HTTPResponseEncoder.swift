/// One HTTP response before encoding: a status, extra header fields and a body.
///
/// `Content-Length` and `Connection` are added by ``HTTPResponseEncoder``; do not put them in
/// ``headers``.
public struct HTTPResponse: Sendable, Equatable {
    /// The status code (200, 404, ...).
    public var status: Int
    /// Header fields besides `Content-Length` and `Connection`, in order.
    public var headers: [HTTPHeader]
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ status: Int, _ body: [UInt8], headers: [HTTPHeader] = []) -> HTTPResponse {
        HTTPResponse(
            status: status, headers: [HTTPHeader(name: "Content-Type", value: "text/plain; charset=utf-8")] + headers,
            body: body)
    }

    /// A `text/plain` response for a refused request: the error's status and description.
    public static func error(_ error: HTTPRequestError) -> HTTPResponse {
        text(error.status, Array((error.description + "\n").utf8))
    }
}

/// Encodes responses for the HTTP port (protocol-spec/http.md): always `HTTP/1.1`, always a
/// `Content-Length`, and a `Connection` field saying what happens next.
public enum HTTPResponseEncoder {
    /// The interim response sent before reading a body announced with `Expect: 100-continue`.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Appends `response` to `out`.
    ///
    /// - Parameters:
    ///   - keepAlive: false adds `Connection: close` (the server closes after this response);
    ///     true adds `Connection: keep-alive` for HTTP/1.0 clients, which need it, and nothing
    ///     for HTTP/1.1 ones.
    ///   - requestVersion: the version of the request answered.
    ///   - includeBody: false for a `HEAD` request (the `Content-Length` is still the body's).
    public static func encode(
        _ response: HTTPResponse, keepAlive: Bool, requestVersion: HTTPVersion = .http11, includeBody: Bool = true,
        into out: inout [UInt8]
    ) {
        out.append(contentsOf: "HTTP/1.1 \(response.status) \(reasonPhrase(response.status))\r\n".utf8)
        for h in response.headers {
            precondition(
                !h.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }), "CR or LF in a response header value")
            out.append(contentsOf: "\(h.name): \(h.value)\r\n".utf8)
        }
        out.append(contentsOf: "Content-Length: \(response.body.count)\r\n".utf8)
        if !keepAlive {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if requestVersion == .http10 {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        if includeBody { out.append(contentsOf: response.body) }
    }

    /// Returns `response` encoded (see ``encode(_:keepAlive:requestVersion:includeBody:into:)``).
    public static func encode(
        _ response: HTTPResponse, keepAlive: Bool, requestVersion: HTTPVersion = .http11, includeBody: Bool = true
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + response.body.count)
        encode(response, keepAlive: keepAlive, requestVersion: requestVersion, includeBody: includeBody, into: &out)
        return out
    }

    /// The RFC 9110 reason phrase of `status` (`Unknown` for codes this server never sends).
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Unknown"
        }
    }
}
