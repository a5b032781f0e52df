import XformTransforms

extension ServerState {
    /// The full statistics report (line `stats`, SIGUSR2): the server's counters, then the
    /// backend's own figures (a proxy's cache and upstream counters), one `name value` line each.
    /// With several loops, ``combineReports`` sums every loop's report into this one.
    public func report() -> [String] {
        let own = loopReport()
        return combineReports?(own) ?? own
    }

    /// This state's own report, whatever the other loops hold.
    public func loopReport() -> [String] {
        stats.report() + asyncReport + backend.statistics.map { "\($0.name) \(Self.format($0.value))" }
    }

    /// The async gate's queue (`--max-concurrent-async`): jobs waiting, jobs underway, the limit.
    var asyncReport: [String] {
        guard let gate = asyncGate else { return [] }
        return [
            "async_pending \(gate.pendingCount)", "async_underway \(gate.underwayCount)",
            "async_limit \(gate.limit)",
        ]
    }

    /// A figure as people read it: whole numbers without a fraction, others to three places.
    static func format(_ value: Double) -> String {
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        let thousandths = (value * 1000).rounded() / 1000
        return String(thousandths)
    }
}
