/// A Prometheus histogram with fixed buckets: counts of observations at or under each upper
/// bound, their sum and their count.
///
/// A plain value: one per transform, per event loop; loops' histograms are added together with
/// ``merge(_:)`` when `/metrics` is read, so recording never contends.
public struct Histogram: Sendable, Equatable {
    /// The upper bounds of the buckets, ascending (`+Inf` is implicit).
    public let bounds: [Double]
    /// Observations per bucket, not cumulative; the last entry counts those over every bound.
    public private(set) var bucketCounts: [UInt64]
    /// The sum of the observed values.
    public private(set) var sum: Double = 0
    /// How many values were observed.
    public private(set) var count: UInt64 = 0

    /// Buckets for request durations, in seconds: 100 µs to 10 s. A request costs a few
    /// microseconds of server CPU, so the low buckets matter; the top ones catch slow transforms
    /// and thread-pool queueing.
    public static let requestDurationBounds: [Double] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    /// Creates an empty histogram. `bounds` must be finite and strictly ascending.
    public init(bounds: [Double] = Histogram.requestDurationBounds) {
        precondition(!bounds.isEmpty && bounds.allSatisfy(\.isFinite), "histogram bounds must be finite")
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "histogram bounds must ascend")
        self.bounds = bounds
        bucketCounts = Array(repeating: 0, count: bounds.count + 1)
    }

    /// Records one observation (a value equal to a bound falls in that bound's bucket).
    public mutating func observe(_ value: Double) {
        observe(value, times: 1)
    }

    /// Records `n` observations of the same value.
    public mutating func observe(_ value: Double, times n: UInt64) {
        guard n > 0 else { return }
        var i = 0
        while i < bounds.count && value > bounds[i] { i += 1 }
        bucketCounts[i] += n
        sum += value * Double(n)
        count += n
    }

    /// Adds `other`'s observations to this histogram's. The bounds must be equal.
    public mutating func merge(_ other: Histogram) {
        precondition(bounds == other.bounds, "merging histograms with different buckets")
        for i in bucketCounts.indices { bucketCounts[i] += other.bucketCounts[i] }
        sum += other.sum
        count += other.count
    }

    /// The histogram's samples under family `name`: one cumulative `_bucket` per bound plus
    /// `le="+Inf"`, then `_sum` and `_count`; `labels` come before `le`.
    public func samples(name: String, labels: [MetricLabel] = []) -> [MetricSample] {
        var out: [MetricSample] = []
        out.reserveCapacity(bounds.count + 3)
        var cumulative: UInt64 = 0
        for (i, b) in bounds.enumerated() {
            cumulative += bucketCounts[i]
            out.append(
                MetricSample(
                    name: name + "_bucket", labels: labels + [MetricLabel("le", PrometheusText.formatValue(b))],
                    value: Double(cumulative)))
        }
        out.append(MetricSample(name: name + "_bucket", labels: labels + [MetricLabel("le", "+Inf")], value: Double(count)))
        out.append(MetricSample(name: name + "_sum", labels: labels, value: sum))
        out.append(MetricSample(name: name + "_count", labels: labels, value: Double(count)))
        return out
    }
}
