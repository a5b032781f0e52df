/// The kind of a metric family, as the `# TYPE` line states it.
public enum MetricType: String, Sendable, Equatable {
    /// A value that only goes up (reset on restart); named `..._total`.
    case counter
    /// A value that goes up and down.
    case gauge
    /// Observations counted into cumulative buckets, with `_bucket`, `_sum` and `_count` samples.
    case histogram
    /// Anything else.
    case untyped
}

/// One label of a sample: a name (`[a-zA-Z_][a-zA-Z0-9_]*`) and any UTF-8 value.
public struct MetricLabel: Sendable, Equatable, Hashable {
    /// The label name.
    public var name: String
    /// The label value, escaped when rendered.
    public var value: String

    /// Creates a label.
    public init(_ name: String, _ value: String) {
        precondition(PrometheusText.isValidLabelName(name), "invalid Prometheus label name \(name)")
        self.name = name
        self.value = value
    }
}

/// One line of a family: a sample name (the family name, or it with `_bucket`/`_sum`/`_count`),
/// its labels and its value.
public struct MetricSample: Sendable, Equatable {
    /// The sample's full name.
    public var name: String
    /// The labels, in the order they are rendered.
    public var labels: [MetricLabel]
    /// The value.
    public var value: Double

    /// Creates a sample.
    public init(name: String, labels: [MetricLabel] = [], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }
}

/// A metric family: one `# HELP` and `# TYPE` header and its samples.
public struct MetricFamily: Sendable, Equatable {
    /// The family name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    public var name: String
    /// One line saying what is measured, with its unit.
    public var help: String
    /// The family's type.
    public var type: MetricType
    /// The samples, rendered in this order.
    public var samples: [MetricSample]

    /// Creates a family. Names that break the grammar are a programming error.
    public init(name: String, help: String, type: MetricType, samples: [MetricSample]) {
        precondition(PrometheusText.isValidMetricName(name), "invalid Prometheus metric name \(name)")
        self.name = name
        self.help = help
        self.type = type
        self.samples = samples
    }

    /// A counter or gauge family with one sample per label set.
    public static func simple(
        _ type: MetricType, _ name: String, help: String, _ values: [([MetricLabel], Double)]
    ) -> MetricFamily {
        MetricFamily(
            name: name, help: help, type: type, samples: values.map { MetricSample(name: name, labels: $0.0, value: $0.1) })
    }

    /// A counter family with one sample per label set.
    public static func counter(_ name: String, help: String, _ values: [([MetricLabel], Double)]) -> MetricFamily {
        simple(.counter, name, help: help, values)
    }

    /// A gauge family with one sample per label set.
    public static func gauge(_ name: String, help: String, _ values: [([MetricLabel], Double)]) -> MetricFamily {
        simple(.gauge, name, help: help, values)
    }

    /// A gauge family with one unlabelled sample.
    public static func gauge(_ name: String, help: String, _ value: Double) -> MetricFamily {
        simple(.gauge, name, help: help, [([], value)])
    }

    /// A histogram family with one histogram per label set.
    public static func histogram(_ name: String, help: String, _ histograms: [([MetricLabel], Histogram)]) -> MetricFamily {
        MetricFamily(
            name: name, help: help, type: .histogram,
            samples: histograms.flatMap { $0.1.samples(name: name, labels: $0.0) })
    }
}

/// The Prometheus text exposition format, version 0.0.4: what `GET /metrics` answers.
///
/// Pure: families in, text out. Each family renders as its `# HELP` line, its `# TYPE` line and
/// its samples; label values and help text are escaped as the format requires.
public enum PrometheusText {
    /// The `Content-Type` of the format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Renders `families`, in order. Families with no samples are rendered with their header
    /// lines only, which the format allows.
    public static func render(_ families: [MetricFamily]) -> String {
        var out = ""
        out.reserveCapacity(families.count * 160)
        for f in families {
            out += "# HELP \(f.name) \(escapeHelp(f.help))\n"
            out += "# TYPE \(f.name) \(f.type.rawValue)\n"
            for s in f.samples {
                out += s.name
                if !s.labels.isEmpty {
                    out += "{"
                    for (i, l) in s.labels.enumerated() {
                        if i > 0 { out += "," }
                        out += "\(l.name)=\"\(escapeLabelValue(l.value))\""
                    }
                    out += "}"
                }
                out += " \(formatValue(s.value))\n"
            }
        }
        return out
    }

    /// Formats a sample value: integers without a fraction, `NaN`, `+Inf`, `-Inf`, else the
    /// shortest decimal that reads back as the same Double.
    public static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 9_007_199_254_740_992 { return String(Int64(v)) }  // exact integers: below 2^53
        return v.description
    }

    /// Escapes a label value: backslash, double quote and newline.
    public static func escapeLabelValue(_ s: String) -> String { escape(s, quotes: true) }

    /// Escapes help text: backslash and newline.
    public static func escapeHelp(_ s: String) -> String { escape(s, quotes: false) }

    private static func escape(_ s: String, quotes: Bool) -> String {
        guard s.utf8.contains(where: { $0 == 0x5C || $0 == 0x0A || (quotes && $0 == 0x22) }) else { return s }
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quotes: out += "\\\""
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// True for a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static func isValidMetricName(_ name: String) -> Bool {
        isName(name, colon: true)
    }

    /// True for a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
    public static func isValidLabelName(_ name: String) -> Bool {
        isName(name, colon: false) && !name.hasPrefix("__")
    }

    /// Turns any string into a valid metric name part: invalid characters become `_`, and a
    /// leading digit gets a `_` in front (for names that come from elsewhere, such as a
    /// backend's statistics).
    public static func sanitizeMetricName(_ s: String) -> String {
        var out = ""
        for (i, b) in s.utf8.enumerated() {
            if i == 0, b &- UInt8(ascii: "0") < 10 { out += "_" }
            out.unicodeScalars.append(isNameByte(b, colon: true, first: false) ? Unicode.Scalar(b) : "_")
        }
        return out.isEmpty ? "_" : out
    }

    private static func isName(_ name: String, colon: Bool) -> Bool {
        guard !name.isEmpty else { return false }
        for (i, b) in name.utf8.enumerated() where !isNameByte(b, colon: colon, first: i == 0) { return false }
        return true
    }

    @inline(__always)
    private static func isNameByte(_ b: UInt8, colon: Bool, first: Bool) -> Bool {
        b &- UInt8(ascii: "a") < 26 || b &- UInt8(ascii: "A") < 26 || b == UInt8(ascii: "_")
            || (colon && b == UInt8(ascii: ":")) || (!first && b &- UInt8(ascii: "0") < 10)
    }
}
