import Synchronization
import XformCore
import XformMetrics

/// What the HTTP port's `/readyz` and `/metrics` report beyond the counters: whether the server
/// should be sent new work, and the figures other layers provide (the process's, read from
/// `/proc` by the daemon layer). Confined to the reactor thread.
public final class ServerHealth {
    /// True once every port listens (set by ``TransformServer`` when it has started).
    public internal(set) var listening = false
    /// True from the first moment of a graceful stop (``beginDrain()``, or the ``sharedDrain``
    /// another loop set).
    public var draining: Bool { ownDrain || (sharedDrain?.isSet ?? false) }
    private var ownDrain = false
    /// With `--reactors N`, the flag every loop shares: the loop that handles the signal sets
    /// it at once, so no loop answers `/readyz` 200 while its own ``beginDrain()`` is on the way.
    public var sharedDrain: DrainFlag?
    /// Extra metric families, rendered after the server's own (the `process_*` figures).
    public var extraFamilies: () -> [MetricFamily] = { [] }
    /// Turns this loop's own families into the whole process's (`--reactors N`: every loop's
    /// samples summed); nil with one loop.
    public var combineFamilies: (([MetricFamily]) -> [MetricFamily])?

    /// Creates the health of a server that is not listening yet.
    public init() {}

    /// The graceful stop has begun: `/readyz` answers 503 from now on, so load balancers stop
    /// sending new connections before the ports close.
    public func beginDrain() {
        ownDrain = true
        sharedDrain?.set()
    }
}

/// A graceful stop's first moment, shared by the event loops of `--reactors N`. Thread-safe.
public final class DrainFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    private let stopPending: @Sendable () -> Bool

    /// A flag not set yet.
    ///
    /// - Parameter stopPending: true while a stop signal waits to be read by the loop that
    ///   handles signals (so another loop is unready from the moment it was sent, not only once
    ///   that loop has read it); checked after the flag, only by ``isSet``.
    public init(stopPending: @escaping @Sendable () -> Bool = { false }) {
        self.stopPending = stopPending
    }

    /// True once ``set()`` was called, on any thread, or while a stop signal is pending.
    public var isSet: Bool { flag.load(ordering: .acquiring) || stopPending() }

    /// Marks the stop as begun.
    public func set() { flag.store(true, ordering: .releasing) }
}

extension ServerState {
    /// True while every port accepts connections and no graceful stop has begun: what
    /// `GET /readyz` answers 200 to.
    public var isReady: Bool { health.listening && !health.draining && !shuttingDown }

    /// The server's metrics in the Prometheus text format 0.0.4 (protocol-spec/http.md section 4).
    public func metricsText() -> String {
        PrometheusText.render(metricFamilies())
    }

    /// The metric families `GET /metrics` serves: requests by transform, port and outcome;
    /// durations by transform; connections and bytes; readiness; the backend's statistics; then
    /// ``ServerHealth/extraFamilies``. With several loops, ``ServerHealth/combineFamilies``
    /// sums every loop's families first.
    public func metricFamilies() -> [MetricFamily] {
        let own = loopMetricFamilies()
        return (health.combineFamilies?(own) ?? own) + health.extraFamilies()
    }

    /// This loop's own families, without the process-wide extra ones.
    public func loopMetricFamilies() -> [MetricFamily] {
        var requests: [([MetricLabel], Double)] = []
        for port in ServerPort.allCases {
            let byName = stats.requests(port: port)
            for name in byName.keys.sorted() {
                for (outcome, n) in byName[name]!.sorted(by: { $0.key < $1.key }) {
                    requests.append(
                        (
                            [MetricLabel("transform", name), MetricLabel("port", port.rawValue), MetricLabel("outcome", outcome)],
                            Double(n)
                        ))
                }
            }
        }
        let durations = stats.durations
        let ports = ServerPort.allCases
        var families: [MetricFamily] = [
            .counter("xform_requests_total", help: "Transform requests answered, by transform, port and outcome.", requests),
            .histogram(
                "xform_request_duration_seconds",
                help: "Time from a transform request's arrival to its reply, in seconds (small inline requests count as 0).",
                durations.keys.sorted().map { ([MetricLabel("transform", $0)], durations[$0]!) }),
            .gauge(
                "xform_connections_open", help: "Connections open now, by port.",
                ports.map { ([MetricLabel("port", $0.rawValue)], Double(stats.openConnections($0))) }),
            .counter(
                "xform_connections_total", help: "Connections accepted since the server started, by port.",
                ports.map { ([MetricLabel("port", $0.rawValue)], Double(stats.totalConnections($0))) }),
            .counter(
                "xform_connections_refused_total", help: "Connections refused by the connection limit.",
                [([], Double(stats.refusedConnections))]),
            .counter(
                "xform_received_bytes_total", help: "Bytes read from clients, by port.",
                ports.map { ([MetricLabel("port", $0.rawValue)], Double(stats.bytesIn($0))) }),
            .counter(
                "xform_sent_bytes_total", help: "Bytes written to clients, by port.",
                ports.map { ([MetricLabel("port", $0.rawValue)], Double(stats.bytesOut($0))) }),
            .gauge("xform_ready", help: "1 while /readyz answers 200, else 0.", isReady ? 1 : 0),
        ]
        for (name, value) in backend.statistics {
            families.append(
                MetricFamily(
                    name: "xform_backend_" + PrometheusText.sanitizeMetricName(name),
                    help: "The backend's \(name) figure.", type: .untyped,
                    samples: [MetricSample(name: "xform_backend_" + PrometheusText.sanitizeMetricName(name), value: value)]))
        }
        return families
    }
}
