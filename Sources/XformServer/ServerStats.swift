import XformCore
import XformMetrics

/// Counters for the whole server, shared by both ports: requests by transform and outcome,
/// connections, bytes, and a latency summary. Confined to the reactor thread; updating a
/// counter is an addition, cheap enough for the hot path.
public final class ServerStats {
    /// Requests per transform name, per outcome code (`ok` or an error code), all ports together.
    public var requests: [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for port in ServerPort.allCases {
            for (name, outcomes) in requests(port: port) {
                out[name, default: [:]].merge(outcomes, uniquingKeysWith: +)
            }
        }
        return out
    }

    /// Requests on `port` per transform name, per outcome code.
    public func requests(port: ServerPort) -> [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for (name, c) in byPort[port.index] {
            var outcomes = c.failures
            if c.ok > 0 { outcomes["ok"] = c.ok }
            if !outcomes.isEmpty { out[name] = outcomes }
        }
        return out
    }

    /// The request-duration histogram of each transform, all ports together. Requests that were
    /// not timed (small inline ones: a clock read would cost more than they do) are counted in
    /// the lowest bucket with a duration of zero.
    public var durations: [String: Histogram] {
        var out: [String: Histogram] = [:]
        for counters in byPort {
            for (name, c) in counters {
                var h = c.duration
                h.observe(0, times: UInt64(max(0, c.ok + c.failures.values.reduce(0, +) - Int(h.count))))
                out[name, default: Histogram()].merge(h)
            }
        }
        return out
    }

    /// The counters of each transform, per port (indexed by ``ServerPort``).
    // Unchecked, with `open` and `total`: touched as each connection opens, closes and makes
    // its first request (a checked access costs about 97 instructions, callgrind).
    @exclusivity(unchecked) var byPort: [[String: TransformCounters]] = Array(repeating: [:], count: ServerPort.allCases.count)
    /// Connections open now, per port (indexed by ``ServerPort``; no hashing per connection).
    @exclusivity(unchecked) private var open = Array(repeating: 0, count: ServerPort.allCases.count)
    /// Connections accepted since start, per port.
    @exclusivity(unchecked) private var total = Array(repeating: 0, count: ServerPort.allCases.count)
    /// Connections open now on `port`.
    public func openConnections(_ port: ServerPort) -> Int { open[port.index] }
    /// Connections accepted since start on `port`.
    public func totalConnections(_ port: ServerPort) -> Int { total[port.index] }
    /// Connections refused by the connection limit.
    public private(set) var refusedConnections = 0
    /// Bytes received and sent on one port's connections.
    struct PortBytes {
        var received = 0
        var sent = 0
    }

    /// Bytes received and sent per port, added to on every read and reply. A field per port,
    /// not an array: each protocol's port is a constant, so `bytes[port]` folds to one field.
    struct ByteCounts {
        var netstring = PortBytes()
        var line = PortBytes()
        var http = PortBytes()

        subscript(port: ServerPort) -> PortBytes {
            @inline(__always) get {
                switch port {
                case .netstring: return netstring
                case .line: return line
                case .http: return http
                }
            }
        }

        /// Counts `count` bytes received on `port`. A method, not a `_modify` through the
        /// subscript: the coroutine retained the stats object around every update (callgrind:
        /// two retain/release pairs per request).
        @inline(__always) mutating func add(received count: Int, port: ServerPort) {
            switch port {
            case .netstring: netstring.received &+= count
            case .line: line.received &+= count
            case .http: http.received &+= count
            }
        }

        /// Counts `count` bytes sent on `port`.
        @inline(__always) mutating func add(sent count: Int, port: ServerPort) {
            switch port {
            case .netstring: netstring.sent &+= count
            case .line: line.sent &+= count
            case .http: http.sent &+= count
            }
        }
    }

    // Unchecked: updated on every read and reply (a checked access costs about 76 instructions,
    // measured); plain integers, and no access spans a call.
    @exclusivity(unchecked) var bytes = ByteCounts()
    /// Bytes received on all connections.
    public var bytesIn: Int { ServerPort.allCases.reduce(0) { $0 + bytes[$1].received } }
    /// Bytes sent on all connections.
    public var bytesOut: Int { ServerPort.allCases.reduce(0) { $0 + bytes[$1].sent } }
    /// Bytes received on `port`'s connections.
    public func bytesIn(_ port: ServerPort) -> Int { bytes[port].received }
    /// Bytes sent on `port`'s connections.
    public func bytesOut(_ port: ServerPort) -> Int { bytes[port].sent }
    /// Latency histogram of asynchronous requests: bucket i counts latencies below 2^i µs.
    public private(set) var latencyBuckets = [Int](repeating: 0, count: 32)
    let started: Duration
    let clock: any ReactorTime

    public init(clock: any ReactorTime) {
        self.clock = clock
        self.started = clock.now
    }

    /// Requests that reached no transform (malformed, unknown or invalid name, too large,
    /// refused while shutting down), per error code.
    public private(set) var rejected: [String: Int] = [:]

    /// Counts one request that reached no transform.
    public func countRejected(_ code: String) { rejected[code, default: 0] += 1 }

    /// Inline requests with at least this many bytes of text are timed for the duration
    /// histogram; smaller ones take a few microseconds, less than the clock reads would add.
    public static let timedInlineBytes = 16 * 1024

    /// Counts one finished request on `port`.
    public func count(transform: String, port: ServerPort, outcome: String) {
        let c = counters(for: transform, port: port)
        if outcome == "ok" { c.ok &+= 1 } else { c.failures[outcome, default: 0] += 1 }
    }

    /// The counters of one transform on one port; protocols keep the last one to count without
    /// hashing.
    func counters(for transform: String, port: ServerPort) -> TransformCounters {
        if let c = byPort[port.index][transform] { return c }
        let c = TransformCounters(name: transform)
        byPort[port.index][transform] = c
        return c
    }

    /// Records how long one request of `transform` on `port` took (counted separately).
    func observe(_ duration: Duration, transform: String, port: ServerPort) {
        counters(for: transform, port: port).duration.observe(duration.seconds)
    }

    /// Records the latency of one request.
    public func record(latency: Duration) {
        let micros = max(0, Int(latency.seconds * 1e6))
        let bucket = min(31, micros == 0 ? 0 : (Int.bitWidth - micros.leadingZeroBitCount))
        latencyBuckets[bucket] += 1
    }

    func connectionOpened(port: ServerPort) {
        open[port.index] += 1
        total[port.index] += 1
    }

    func connectionClosed(port: ServerPort) { open[port.index] -= 1 }

    func connectionRefused() { refusedConnections += 1 }

    /// Connections closed at the limit to make room (they had not completed a request).
    public private(set) var evictedConnections = 0

    func connectionEvicted() { evictedConnections += 1 }

    /// Bytes held in pending work now, and how often the budget paused a connection.
    public internal(set) var pendingBytes: Int {
        get { pending.bytes }
        set { pending.bytes = newValue }
    }
    public internal(set) var throttles: Int {
        get { pending.throttles }
        set { pending.throttles = newValue }
    }
    // Unchecked: written as every deferred request starts and completes (a checked access
    // costs about 97 instructions, callgrind); plain integers, no access spans a call.
    @exclusivity(unchecked) private var pending = (bytes: 0, throttles: 0)

    /// The latency below which `fraction` of recorded requests fell (bucket upper bound, µs).
    public func latencyPercentile(_ fraction: Double) -> Int? {
        let total = latencyBuckets.reduce(0, +)
        guard total > 0 else { return nil }
        let target = Int((Double(total) * fraction).rounded(.up))
        var seen = 0
        for (i, n) in latencyBuckets.enumerated() {
            seen += n
            if seen >= target { return 1 << i }
        }
        return nil
    }

    /// The report `stats` prints: one `key value` line each, stable order.
    public func report() -> [String] {
        var lines = [String]()
        let up = (clock.now - started).seconds
        lines.append("uptime_seconds \(Int(up))")
        for port in ServerPort.allCases.sorted(by: { $0.rawValue < $1.rawValue }) where total[port.index] > 0 {
            lines.append("connections_open \(port.rawValue) \(open[port.index])")
            lines.append("connections_total \(port.rawValue) \(total[port.index])")
        }
        lines.append("connections_refused \(refusedConnections)")
        if evictedConnections > 0 { lines.append("connections_evicted \(evictedConnections)") }
        lines.append("pending_bytes \(pendingBytes)")
        if throttles > 0 { lines.append("connections_throttled \(throttles)") }
        lines.append("bytes_in \(bytesIn)")
        lines.append("bytes_out \(bytesOut)")
        for name in requests.keys.sorted() {
            let outcomes = requests[name]!.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            lines.append("requests \(name) " + outcomes.joined(separator: " "))
        }
        if !rejected.isEmpty {
            let outcomes = rejected.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            lines.append("requests_rejected " + outcomes.joined(separator: " "))
        }
        if let p50 = latencyPercentile(0.5), let p99 = latencyPercentile(0.99) {
            lines.append("async_latency_us p50<\(p50) p99<\(p99)")
        }
        return lines
    }
}

extension ServerPort {
    var index: Int {
        switch self {
        case .netstring: return 0
        case .line: return 1
        case .http: return 2
        }
    }
}

/// The request counters of one transform.
final class TransformCounters {
    // Unchecked: added to on every request (a checked access costs about 76 instructions,
    // measured); an integer, and no access spans a call.
    @exclusivity(unchecked) var ok = 0
    var failures: [String: Int] = [:]
    /// Durations of the requests that were timed (asynchronous and large ones).
    var duration = Histogram()
    /// The transform's name, as bytes for ``matches(_:)``.
    let nameBytes: [UInt8]

    init(name: String) { nameBytes = Array(name.utf8) }

    /// True when `name` is this transform's name.
    @inline(__always)
    func matches(_ name: UnsafeRawBufferPointer) -> Bool {
        guard name.count == nameBytes.count else { return false }
        return nameBytes.withUnsafeBytes { stored in
            for i in 0..<stored.count where stored[i] != name[i] { return false }
            return true
        }
    }
}
