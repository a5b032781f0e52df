import Glibc
import XformMetrics

/// Reads this process's standard `process_*` figures from Linux's `/proc` (for `/metrics`).
public enum ProcessInspector {
    /// The figures now: CPU time, resident and virtual memory and start time from
    /// `/proc/self/stat`, open descriptors from `/proc/self/fd`, the descriptor limit from
    /// `getrlimit`. A figure that cannot be read is nil.
    public static func figures() -> ProcessFigures {
        var f = ProcessFigures()
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = readSmallFile("/proc/self/stat"), let fields = statFields(stat), ticks > 0 {
            // Fields after "(comm) ", counted from 3 (state) as in proc(5).
            func field(_ n: Int) -> Double? { n - 3 < fields.count ? Double(fields[n - 3]) : nil }
            if let utime = field(14), let stime = field(15) { f.cpuSecondsTotal = (utime + stime) / ticks }
            f.virtualMemoryBytes = field(23)
            if let rss = field(24) { f.residentMemoryBytes = rss * pageSize }
            if let start = field(22), let boot = bootTime() { f.startTimeSeconds = boot + start / ticks }
        }
        f.openFDs = countOpenFDs()
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 { f.maxFDs = Double(limit.rlim_cur) }
        return f
    }

    /// The space-separated fields of `/proc/self/stat` after the command name, which is in
    /// parentheses and may itself hold spaces and parentheses.
    static func statFields(_ stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
    }

    /// The `btime` line of `/proc/stat`: the boot time, in seconds since the epoch.
    static func bootTime() -> Double? {
        guard let text = readSmallFile("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingPrefix(" "))
        }
        return nil
    }

    /// Entries of `/proc/self/fd`, less the one the listing itself holds open.
    static func countOpenFDs() -> Double? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var n = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { n += 1 }
        }
        return Double(max(0, n - 1))
    }

    /// Reads a `/proc` file (which reports size 0, so read until EOF), at most 64 KiB.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65_536 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
