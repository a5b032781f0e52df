import Glibc
import Synchronization

/// An append-mode log file that rotates by size, like twistd's `LogFile`.
///
/// When a line would take the file past ``rotateLength`` bytes (and the file is not empty),
/// the file is rotated first: `log.N` becomes `log.N+1` (files numbered ``maxRotatedFiles`` or
/// more are deleted), `log` becomes `log.1`, and a new `log` is opened. So a file only exceeds
/// the limit when one line alone is longer. ``rotate()`` does the same on demand (SIGUSR1);
/// ``reopen()`` opens the path again without renaming anything (SIGHUP, after an external
/// logrotate moved the file).
///
/// A failing rotation or reopen never stops the process: it is reported through
/// `reportError` (stderr by default) and writing continues on the descriptor already open.
/// Thread-safe.
public final class LogFile: LogOutput {
    /// The live file's path.
    public let path: String
    /// The size that triggers rotation; 0 or less disables size rotation.
    public let rotateLength: Int
    /// How many rotated files (`log.1` ...) to keep; `nil` keeps them all.
    public let maxRotatedFiles: Int?
    private let mode: mode_t
    private let reportError: @Sendable (String) -> Void

    private struct State {
        var fd: Int32
        var size: Int
    }
    private let state: Mutex<State>

    /// twistd's default rotation size: 1,000,000 bytes.
    public static let defaultRotateLength = 1_000_000

    /// Opens (creating if needed) `path` for appending.
    ///
    /// - Parameters:
    ///   - rotateLength: rotate before a write that would pass this many bytes.
    ///   - maxRotatedFiles: keep at most this many rotated files (at least 1), or all of them.
    ///   - mode: permissions for a newly created file.
    ///   - reportError: where rotation and write failures are reported.
    /// - Throws: ``DaemonFailure`` with ``ExitStatus/cannotCreate`` if the file cannot be opened.
    public init(
        path: String, rotateLength: Int = LogFile.defaultRotateLength, maxRotatedFiles: Int? = nil,
        mode: mode_t = 0o644,
        reportError: @escaping @Sendable (String) -> Void = { writeToStandardError($0 + "\n") }
    ) throws(DaemonFailure) {
        precondition(maxRotatedFiles.map { $0 >= 1 } ?? true, "maxRotatedFiles must be at least 1")
        self.path = path
        self.rotateLength = rotateLength
        self.maxRotatedFiles = maxRotatedFiles
        self.mode = mode
        self.reportError = reportError
        switch LogFile.open(path, mode: mode) {
        case .success(let opened): state = Mutex(State(fd: opened.fd, size: opened.size))
        case .failure(let e): throw DaemonFailure(.cannotCreate, "cannot open log file: \(e)")
        }
    }

    deinit {
        state.withLock { Syscall.close($0.fd) }
    }

    /// The live file's size as this object counts it.
    public var size: Int { state.withLock { $0.size } }

    /// Appends `line`, rotating first if it would pass ``rotateLength``.
    public func write(_ line: String) {
        var failure: String?
        state.withLock { s in
            let count = line.utf8.count
            if rotateLength > 0, s.size > 0, s.size + count > rotateLength {
                failure = rotateLocked(&s)
            }
            if let e = Syscall.writeAll(s.fd, line) {
                failure = "cannot write to log file \(path): \(SystemError.message(for: e))"
            } else {
                s.size += count
            }
        }
        if let failure { reportError(failure) }
    }

    /// Rotates now, whatever the size (SIGUSR1). Failures are reported, not thrown.
    public func rotate() {
        let failure = state.withLock { rotateLocked(&$0) }
        if let failure { reportError(failure) }
    }

    /// Reopens ``path`` (creating it), keeping the old descriptor if that fails (SIGHUP).
    public func reopen() {
        let failure: String? = state.withLock { s in
            switch LogFile.open(path, mode: mode) {
            case .success(let opened):
                Syscall.close(s.fd)
                s = State(fd: opened.fd, size: opened.size)
                return nil
            case .failure(let e):
                return "cannot reopen log file: \(e)"
            }
        }
        if let failure { reportError(failure) }
    }

    /// The paths of the rotated files that exist, `log.1` upward, stopping at the first gap.
    public func rotatedFiles() -> [String] {
        var result: [String] = []
        var n = 1
        while access("\(path).\(n)", F_OK) == 0 {
            result.append("\(path).\(n)")
            n += 1
        }
        return result
    }

    private func rotateLocked(_ s: inout State) -> String? {
        let existing = rotatedFiles().count
        var n = existing
        while n >= 1 {
            let from = "\(path).\(n)"
            if let max = maxRotatedFiles, n >= max {
                if unlink(from) != 0 { return "cannot rotate log file: \(SystemError.current("unlink \(from)"))" }
            } else if rename(from, "\(path).\(n + 1)") != 0 {
                return "cannot rotate log file: \(SystemError.current("rename \(from)"))"
            }
            n -= 1
        }
        // A live file deleted behind our back has nothing to archive: just start a new one.
        if rename(path, "\(path).1") != 0, errno != ENOENT {
            return "cannot rotate log file: \(SystemError.current("rename \(path)"))"
        }
        switch LogFile.open(path, mode: mode) {
        case .success(let opened):
            Syscall.close(s.fd)
            s = State(fd: opened.fd, size: opened.size)
            return nil
        case .failure(let e):
            // Keep writing to the renamed file rather than losing lines.
            return "cannot rotate log file: \(e)"
        }
    }

    private static func open(_ path: String, mode: mode_t) -> Result<(fd: Int32, size: Int), SystemError> {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode)
        if fd < 0 { return .failure(.current("open \(path)")) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = SystemError.current("fstat \(path)")
            Syscall.close(fd)
            return .failure(e)
        }
        return .success((fd, Int(st.st_size)))
    }
}
