import XformCore
import XformDaemon

/// A ``LogHandler`` that writes to standard error, in the server's own format: text lines with
/// a timestamp, or journal priorities (`<5>`) when standard error is systemd's journal. For
/// embedders' transforms and tools that want to see logs without writing a handler.
///
/// ```swift
/// let log = Logger(system: "pirate", handler: StandardErrorLogHandler(minimumLevel: .debug))
/// log.info("arr")   // 2026-12-01T01:02:03Z [pirate] info: arr
/// ```
///
/// Thread-safe: each line is written whole, with one `write(2)`.
public final class StandardErrorLogHandler: LogHandler {
    /// Records below this level are dropped.
    public let minimumLevel: LogLevel
    let lines: DaemonLogHandler

    /// Makes a handler for standard error.
    ///
    /// - Parameters:
    ///   - minimumLevel: the least severe level written (default `.info`).
    ///   - environment: read for `JOURNAL_STREAM`, to choose the journal format under systemd.
    public init(minimumLevel: LogLevel = .info, environment: [String: String] = ProcessEnvironment.current()) {
        self.minimumLevel = minimumLevel
        let format = LogFormat.detect(environment: environment, standardError: FileIdentity(fd: 2))
        self.lines = DaemonLogHandler(format: format, minimumLevel: minimumLevel, output: FileDescriptorOutput(fd: 2))
    }

    public func write(_ record: LogRecord) {
        lines.write(record)
    }
}
