import Foundation
import Testing
import XformMetrics

/// A small exposition with every kind of family, used by several tests.
private func sampleExposition() -> [MetricFamily] {
    var upper = Histogram(bounds: [0.001, 0.01, 0.1])
    upper.observe(0.0005)
    upper.observe(0.001)
    upper.observe(0.05)
    upper.observe(3)
    let rot13 = Histogram(bounds: [0.001, 0.01, 0.1])
    return [
        .counter(
            "xform_requests_total", help: "Requests answered, by transform, port and outcome.",
            [
                ([MetricLabel("transform", "upper"), MetricLabel("port", "http"), MetricLabel("outcome", "ok")], 3),
                ([MetricLabel("transform", "rot13"), MetricLabel("port", "netstring"), MetricLabel("outcome", "too_large")], 1),
            ]),
        .gauge("xform_open_connections", help: "Connections open now.", [([MetricLabel("port", "line")], 2)]),
        .histogram(
            "xform_request_duration_seconds", help: "Time from a request's arrival to its reply, in seconds.",
            [([MetricLabel("transform", "upper")], upper), ([MetricLabel("transform", "rot13")], rot13)]),
        ProcessFigures(cpuSecondsTotal: 0.25, openFDs: 7, startTimeSeconds: 1_764_550_000.5).families[0],
    ]
}

@Suite("PrometheusText")
struct PrometheusTextTests {
    @Test("Counters, gauges and histograms render as exact 0.0.4 text")
    func exactText() {
        let expected = """
            # HELP xform_requests_total Requests answered, by transform, port and outcome.
            # TYPE xform_requests_total counter
            xform_requests_total{transform="upper",port="http",outcome="ok"} 3
            xform_requests_total{transform="rot13",port="netstring",outcome="too_large"} 1
            # HELP xform_open_connections Connections open now.
            # TYPE xform_open_connections gauge
            xform_open_connections{port="line"} 2
            # HELP xform_request_duration_seconds Time from a request's arrival to its reply, in seconds.
            # TYPE xform_request_duration_seconds histogram
            xform_request_duration_seconds_bucket{transform="upper",le="0.001"} 2
            xform_request_duration_seconds_bucket{transform="upper",le="0.01"} 2
            xform_request_duration_seconds_bucket{transform="upper",le="0.1"} 3
            xform_request_duration_seconds_bucket{transform="upper",le="+Inf"} 4
            xform_request_duration_seconds_sum{transform="upper"} 3.0515
            xform_request_duration_seconds_count{transform="upper"} 4
            xform_request_duration_seconds_bucket{transform="rot13",le="0.001"} 0
            xform_request_duration_seconds_bucket{transform="rot13",le="0.01"} 0
            xform_request_duration_seconds_bucket{transform="rot13",le="0.1"} 0
            xform_request_duration_seconds_bucket{transform="rot13",le="+Inf"} 0
            xform_request_duration_seconds_sum{transform="rot13"} 0
            xform_request_duration_seconds_count{transform="rot13"} 0
            # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
            # TYPE process_cpu_seconds_total counter
            process_cpu_seconds_total 0.25

            """
        #expect(PrometheusText.render(sampleExposition()) == expected)
    }

    @Test("Label values escape backslash, quote and newline; help escapes backslash and newline")
    func escaping() {
        let f = MetricFamily.gauge(
            "x", help: "a \\ b\nc \"q\"", [([MetricLabel("v", "C:\\dir \"n\"\nend")], 1)])
        #expect(
            PrometheusText.render([f])
                == "# HELP x a \\\\ b\\nc \"q\"\n# TYPE x gauge\nx{v=\"C:\\\\dir \\\"n\\\"\\nend\"} 1\n")
        #expect(PrometheusText.escapeLabelValue("plain ünïcode") == "plain ünïcode")
    }

    @Test("Values render as integers, shortest decimals or the special spellings")
    func values() {
        #expect(PrometheusText.formatValue(0) == "0")
        #expect(PrometheusText.formatValue(-0.0) == "0")
        #expect(PrometheusText.formatValue(42) == "42")
        #expect(PrometheusText.formatValue(1e15) == "1000000000000000")
        #expect(PrometheusText.formatValue(1e300) == "1e+300")
        #expect(PrometheusText.formatValue(0.005) == "0.005")
        #expect(PrometheusText.formatValue(0.0001) == "0.0001")
        #expect(PrometheusText.formatValue(2.5) == "2.5")
        #expect(PrometheusText.formatValue(.nan) == "NaN")
        #expect(PrometheusText.formatValue(.infinity) == "+Inf")
        #expect(PrometheusText.formatValue(-.infinity) == "-Inf")
    }

    @Test("Metric and label names follow the grammar, and foreign names are sanitised")
    func names() {
        #expect(PrometheusText.isValidMetricName("xform_requests_total"))
        #expect(PrometheusText.isValidMetricName("a:b_c"))
        #expect(!PrometheusText.isValidMetricName("9lives"))
        #expect(!PrometheusText.isValidMetricName("a-b"))
        #expect(!PrometheusText.isValidMetricName(""))
        #expect(PrometheusText.isValidLabelName("transform"))
        #expect(!PrometheusText.isValidLabelName("__name__"))
        #expect(!PrometheusText.isValidLabelName("a:b"))
        #expect(PrometheusText.sanitizeMetricName("cache hits/s") == "cache_hits_s")
        #expect(PrometheusText.sanitizeMetricName("3xx") == "_3xx")
        #expect(PrometheusText.sanitizeMetricName("é") == "__")
        #expect(PrometheusText.isValidMetricName(PrometheusText.sanitizeMetricName("é")))
    }

    @Test("promtool accepts the rendered text", .enabled(if: promtool() != nil))
    func promtoolAccepts() throws {
        var families = sampleExposition()
        families.append(
            contentsOf: ProcessFigures(
                residentMemoryBytes: 1_048_576, virtualMemoryBytes: 1_073_741_824, cpuSecondsTotal: 1.5, openFDs: 9, maxFDs: 1024,
                startTimeSeconds: 1_764_550_000.5
            ).families.dropFirst())
        let (status, output) = try runPromtool(PrometheusText.render(families))
        #expect(status == 0, "promtool: \(output)")
        #expect(output.isEmpty, "promtool complained: \(output)")
    }
}

@Suite("Histogram")
struct HistogramTests {
    @Test("An observation equal to a bound counts in that bound's bucket")
    func boundsInclusive() {
        var h = Histogram(bounds: [1, 2])
        h.observe(1)
        h.observe(1.5)
        h.observe(2)
        h.observe(2.0001)
        #expect(h.bucketCounts == [1, 2, 1])
        #expect(h.count == 4)
        let buckets = h.samples(name: "d").filter { $0.name == "d_bucket" }.map(\.value)
        #expect(buckets == [1, 3, 4])
    }

    @Test("Merging adds buckets, sums and counts")
    func merge() {
        var a = Histogram(), b = Histogram()
        a.observe(0.0002)
        b.observe(0.0002)
        b.observe(7)
        a.merge(b)
        #expect(a.count == 3)
        #expect(abs(a.sum - 7.0004) < 1e-12)
        #expect(a.bucketCounts[1] == 2)
        #expect(a.bucketCounts[Histogram.requestDurationBounds.count - 1] == 1)
        #expect(a.samples(name: "d").count == Histogram.requestDurationBounds.count + 3)
    }

    @Test("The process figures that are known become the standard families")
    func processFamilies() {
        #expect(ProcessFigures().families.isEmpty)
        let names = ProcessFigures(residentMemoryBytes: 1, cpuSecondsTotal: 2, openFDs: 3, maxFDs: 4, startTimeSeconds: 5)
            .families.map(\.name)
        #expect(
            names == [
                "process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_resident_memory_bytes",
                "process_start_time_seconds",
            ])
    }
}

/// The path of `promtool`, if installed.
func promtool() -> String? {
    ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Runs `promtool check metrics` on `text`; returns its exit status and combined output.
func runPromtool(_ text: String) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: promtool()!)
    p.arguments = ["check", "metrics"]
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = output
    try p.run()
    input.fileHandleForWriting.write(Data(text.utf8))
    try input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
