/// The standard `process_*` figures of the Prometheus client libraries, as read from the
/// operating system (the daemon layer reads them; see `XformDaemon.ProcessInspector`).
///
/// A figure the system could not give is nil and its family is left out.
public struct ProcessFigures: Sendable, Equatable {
    /// Resident set size, in bytes.
    public var residentMemoryBytes: Double?
    /// Virtual memory size, in bytes.
    public var virtualMemoryBytes: Double?
    /// User plus system CPU time, in seconds.
    public var cpuSecondsTotal: Double?
    /// Open file descriptors.
    public var openFDs: Double?
    /// The soft limit on open file descriptors.
    public var maxFDs: Double?
    /// When the process started, in seconds since the Unix epoch.
    public var startTimeSeconds: Double?

    /// Creates figures; every one is optional.
    public init(
        residentMemoryBytes: Double? = nil, virtualMemoryBytes: Double? = nil, cpuSecondsTotal: Double? = nil,
        openFDs: Double? = nil, maxFDs: Double? = nil, startTimeSeconds: Double? = nil
    ) {
        self.residentMemoryBytes = residentMemoryBytes
        self.virtualMemoryBytes = virtualMemoryBytes
        self.cpuSecondsTotal = cpuSecondsTotal
        self.openFDs = openFDs
        self.maxFDs = maxFDs
        self.startTimeSeconds = startTimeSeconds
    }

    /// The figures as metric families, with the names and help of the Prometheus client libraries.
    public var families: [MetricFamily] {
        var out: [MetricFamily] = []
        if let v = cpuSecondsTotal {
            out.append(.counter("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", [([], v)]))
        }
        if let v = openFDs { out.append(.gauge("process_open_fds", help: "Number of open file descriptors.", v)) }
        if let v = maxFDs { out.append(.gauge("process_max_fds", help: "Maximum number of open file descriptors.", v)) }
        if let v = virtualMemoryBytes {
            out.append(.gauge("process_virtual_memory_bytes", help: "Virtual memory size in bytes.", v))
        }
        if let v = residentMemoryBytes {
            out.append(.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.", v))
        }
        if let v = startTimeSeconds {
            out.append(
                .gauge("process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", v))
        }
        return out
    }
}
