/// A server's answer to `?limits` (protocol-spec/netstring.md section 3.1): `key=value` lines,
/// of which the client needs `max_request_bytes`.
public struct ServerLimitsReply: Sendable, Equatable {
    /// The longest netstring payload the server accepts, in bytes: for a transform request the
    /// whole `!name.text`.
    public var maxRequestBytes: Int
    /// Every numeric `key=value` line of the reply, known keys included.
    public var values: [String: Int]

    /// Names the limits directly (tests, other transports).
    public init(maxRequestBytes: Int, values: [String: Int] = [:]) {
        self.maxRequestBytes = maxRequestBytes
        self.values = values
        self.values["max_request_bytes"] = maxRequestBytes
    }

    /// Parses the text after the `+`; nil when it has no `max_request_bytes`. Lines that are not
    /// `key=decimal` are ignored, as the spec requires of clients.
    public init?(parsing text: String) {
        var values: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq]
            let value = line[line.index(after: eq)...]
            guard !key.isEmpty, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(value) else { continue }
            values[String(key)] = n
        }
        guard let max = values["max_request_bytes"] else { return nil }
        self.maxRequestBytes = max
        self.values = values
    }

    /// The bytes an extended transform request puts in its netstring: `!` + name + `.` + text.
    public static func payloadBytes(name: String, text: String) -> Int {
        2 + name.utf8.count + text.utf8.count
    }

    /// Why the server would refuse `name` on `text` as too large, or nil when it fits.
    public func refusal(name: String, text: String) -> String? {
        refusal(nameBytes: name.utf8.count, textBytes: text.utf8.count) { name }
    }

    /// Why the server would refuse a request of these sizes as too large, or nil when it fits;
    /// `name` is asked only for the message.
    func refusal(nameBytes: Int, textBytes: Int, name: () -> String) -> String? {
        let size = 2 + nameBytes + textBytes
        guard size > maxRequestBytes else { return nil }
        return "the request ('!\(name()).' and \(textBytes) bytes of text: \(size) bytes) is over the server's "
            + "limit of \(maxRequestBytes) bytes (refused before sending)"
    }
}
