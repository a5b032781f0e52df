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
        stats.report() + backend.statistics.map { "\($0.name) \(Self.format($0.value))" }
    }

    /// A figure as people read it: whole numbers without a fraction, others to three places.
    static func format(_ value: Double) -> String {
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        let thousandths = (value * 1000).rounded() / 1000
        return String(thousandths)
    }
}
