import Glibc
import Synchronization
import XformCore
import XformReactor

/// Where formatted log lines go: standard error, a ``LogFile``, or a test's memory.
///
/// Implementations are thread-safe: a line is written whole, never interleaved with another.
public protocol LogOutput: Sendable {
    /// Writes one complete line (it already ends with a newline).
    func write(_ line: String)
    /// Closes and reopens the destination by name (SIGHUP, for logrotate's `create` mode).
    /// - Returns: nil on success, else why it failed (the old destination stays in use).
    @discardableResult func reopen() -> String?
    /// Rotates the destination now (SIGUSR1).
    /// - Returns: nil on success, else why it failed (the old destination stays in use).
    @discardableResult func rotate() -> String?
}

extension LogOutput {
    /// Outputs without a name to reopen do nothing.
    @discardableResult public func reopen() -> String? { nil }
    /// Outputs without files to rotate do nothing.
    @discardableResult public func rotate() -> String? { nil }
}

/// Writes log lines to a file descriptor that stays open: standard error by default.
public final class FileDescriptorOutput: LogOutput {
    private let fd: Mutex<Int32>

    /// Wraps `fd` (2, standard error, by default). The descriptor is not closed by this object.
    public init(fd: Int32 = 2) {
        self.fd = Mutex(fd)
    }

    public func write(_ line: String) {
        fd.withLock { _ = Syscall.writeAll($0, line) }
    }
}

/// The two line layouts the daemon writes.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-21T23:17:00+0000 [system] info: message`: UTC timestamp, Twisted system tag,
    /// level, message. Continuation lines of a multi-line message start with a tab (as twistd
    /// writes them), so `grep` sees one event per unindented line.
    case text
    /// `<6>[system] message`: a syslog priority prefix and no timestamp, for stderr captured by
    /// journald (`daemon(7)`); journald adds the time itself. Each line of a multi-line message
    /// carries the prefix, since journald makes one entry per line.
    case journal

    /// The format to use for standard error: ``journal`` when `JOURNAL_STREAM` names the same
    /// device and inode as standard error (as systemd.exec(5) says to check, since a child
    /// process may inherit the variable with a different stderr), else ``text``.
    ///
    /// - Parameters:
    ///   - environment: the process environment (for `JOURNAL_STREAM=<dev>:<ino>`).
    ///   - standardError: stderr's identity, from ``FileIdentity/init(fd:)``; `nil` if unknown.
    public static func detect(environment: [String: String], standardError: FileIdentity?) -> LogFormat {
        guard let value = environment["JOURNAL_STREAM"], let stderr = standardError,
            let journal = FileIdentity(journalStream: value)
        else { return .text }
        return journal == stderr ? .journal : .text
    }

    /// Resolves a `--log-format` value: `text` or `journal` are taken as given; `auto` or no
    /// value means ``detect(environment:standardError:)``.
    ///
    /// - Returns: the format, or `nil` for an unknown name.
    public static func resolve(
        _ option: String?, environment: [String: String], standardError: FileIdentity?
    ) -> LogFormat? {
        switch option {
        case nil, "auto": return detect(environment: environment, standardError: standardError)
        case let name?: return LogFormat(rawValue: name)
        }
    }
}

/// A file's identity: device and inode numbers.
public struct FileIdentity: Equatable, Sendable {
    /// The device number (`st_dev`).
    public var device: UInt64
    /// The inode number (`st_ino`).
    public var inode: UInt64

    /// Makes an identity from its numbers.
    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// The identity of an open descriptor (`fstat`), or `nil` if `fd` is not open.
    public init?(fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        self.init(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Parses systemd's `JOURNAL_STREAM` value, `<device>:<inode>` in decimal.
    public init?(journalStream: String) {
        let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let d = UInt64(parts[0]), let i = UInt64(parts[1]) else { return nil }
        self.init(device: d, inode: i)
    }
}

extension LogLevel {
    /// The syslog priority for journald's `<N>` prefix: debug 7, info 6, notice 5, warning 4,
    /// error 3, critical 2 (trace maps to debug).
    public var syslogPriority: Int {
        switch self {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}

/// The daemon's ``LogHandler``: formats records as ``LogFormat/text`` or ``LogFormat/journal``
/// lines and hands them to a ``LogOutput``.
///
/// Thread-safe: formatting uses only the record and the injected clock, and the output writes
/// each line under its lock.
public final class DaemonLogHandler: LogHandler {
    /// Events below this level are dropped.
    public let minimumLevel: LogLevel
    /// The line layout.
    public let format: LogFormat
    /// Where lines go.
    public let output: any LogOutput
    private let wallClock: @Sendable () -> Int64

    /// Makes a handler.
    ///
    /// - Parameters:
    ///   - wallClock: seconds since the Unix epoch for timestamps; injected by tests.
    public init(
        format: LogFormat, minimumLevel: LogLevel = .info, output: any LogOutput = FileDescriptorOutput(),
        wallClock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }
    ) {
        self.format = format
        self.minimumLevel = minimumLevel
        self.output = output
        self.wallClock = wallClock
    }

    public func write(_ record: LogRecord) {
        guard record.level >= minimumLevel else { return }
        output.write(formatLine(record))
    }

    /// The line `write` would emit for `record`, newline included.
    public func formatLine(_ record: LogRecord) -> String {
        let lines = record.message.split(separator: "\n", omittingEmptySubsequences: false)
        switch format {
        case .text:
            var s = DaemonLogHandler.timestamp(wallClock())
            s += " [\(record.system)] \(record.level): "
            s += lines.joined(separator: "\n\t")
            s += "\n"
            return s
        case .journal:
            let p = "<\(record.level.syslogPriority)>"
            var s = "\(p)[\(record.system)] \(lines[0])\n"
            for l in lines.dropFirst() { s += "\(p)\t\(l)\n" }
            return s
        }
    }

    /// `%Y-%m-%dT%H:%M:%S+0000` for `seconds` since the epoch, in UTC.
    public static func timestamp(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let year = Int(tm.tm_year) + 1900
        var y = String(year)
        while y.count < 4 { y = "0" + y }
        return "\(y)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))+0000"
    }
}
