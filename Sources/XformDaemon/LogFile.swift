import Glibc
import XformCore
import XformReactor

/// An append-mode log file that rotates by size, like twistd's `LogFile`.
///
/// When a line would take the file past ``rotateLength`` bytes (and the file is not empty),
/// the file is rotated first: `log.N` becomes `log.N+1` (the file numbered ``maxRotatedFiles``
/// is deleted), `log` becomes `log.1`, and a new `log` is opened. So a file only exceeds
/// the limit when one line alone is longer. ``rotate()`` does the same on demand (SIGUSR1);
/// ``reopen()`` opens the path again without renaming anything (SIGHUP, after an external
/// logrotate moved the file).
///
/// **Cost.** A rotation renames only the rotated files this object knows exist (counted once
/// when the file is opened, then kept), so it costs at most ``maxRotatedFiles`` renames (5 by
/// default) and never lists the directory; files numbered beyond the maximum (left by an
/// earlier, larger setting) are deleted once, when the file is opened. Issue 10 §4: with
/// 276 files kept for ever, each rotation's work grew with the file count and stalled requests.
///
/// A failing rotation or reopen never stops the process: ``rotate()`` returns the failure, a
/// rotation on size reports it through `reportError` (stderr by default) and writes it into the
/// log itself (issue 11: the failure must be visible where people look), and writing continues
/// on the descriptor already open. Thread-safe.
public final class LogFile: LogOutput {
    /// The live file's path.
    public let path: String
    /// The size that triggers rotation; 0 or less disables size rotation.
    public let rotateLength: Int
    /// How many rotated files (`log.1` ...) to keep.
    public let maxRotatedFiles: Int
    private let mode: mode_t
    private let reportError: @Sendable (String) -> Void
    private let failureLine: @Sendable (String) -> String

    private struct State {
        var fd: Int32
        var size: Int
        /// How many of `log.1` ... `log.<max>` exist, as far as this object knows.
        var rotated: Int
    }
    private let state: PthreadMutex<State>

    /// twistd's default rotation size: 1,000,000 bytes.
    public static let defaultRotateLength = 1_000_000
    /// The default ``maxRotatedFiles``: 5 (with the default size, at most 6 MB of logs).
    public static let defaultMaxRotatedFiles = 5
    /// The largest ``maxRotatedFiles`` accepted, so a rotation stays a bounded amount of work.
    public static let maxRotatedFilesLimit = 1000

    /// Opens (creating if needed) `path` for appending.
    ///
    /// - Parameters:
    ///   - rotateLength: rotate before a write that would pass this many bytes.
    ///   - maxRotatedFiles: keep at most this many rotated files (1 ... ``maxRotatedFilesLimit``).
    ///   - mode: permissions for a newly created file.
    ///   - reportError: where rotation and write failures are reported.
    ///   - failureLine: the line (newline included) written into the log when a rotation on
    ///     size fails; the daemon passes its own formatter so the line looks like the others.
    /// - Throws: ``DaemonFailure`` with ``ExitStatus/cannotCreate`` if the file cannot be opened.
    public init(
        path: String, rotateLength: Int = LogFile.defaultRotateLength,
        maxRotatedFiles: Int = LogFile.defaultMaxRotatedFiles, mode: mode_t = 0o644,
        reportError: @escaping @Sendable (String) -> Void = { writeToStandardError($0 + "\n") },
        failureLine: @escaping @Sendable (String) -> String = { "log rotation failed: \($0)\n" }
    ) throws(DaemonFailure) {
        precondition(
            (1...LogFile.maxRotatedFilesLimit).contains(maxRotatedFiles),
            "maxRotatedFiles must be in 1...\(LogFile.maxRotatedFilesLimit)")
        self.path = path
        self.rotateLength = rotateLength
        self.maxRotatedFiles = maxRotatedFiles
        self.mode = mode
        self.reportError = reportError
        self.failureLine = failureLine
        switch LogFile.open(path, mode: mode) {
        case .success(let opened):
            let rotated = LogFile.countRotated(path, max: maxRotatedFiles)
            state = PthreadMutex(State(fd: opened.fd, size: opened.size, rotated: rotated))
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
                if let failure {
                    // Said where people read: in the log, on the descriptor still open.
                    let note = failureLine(failure)
                    if Syscall.writeAll(s.fd, note) == nil { s.size += note.utf8.count }
                }
            }
            if let e = Syscall.writeAll(s.fd, line) {
                failure = "cannot write to log file \(path): \(SystemError.message(for: e))"
            } else {
                s.size += count
            }
        }
        if let failure { reportError(failure) }
    }

    /// Rotates now, whatever the size (SIGUSR1).
    ///
    /// - Returns: nil when rotated; else why not (the file stays open and in use).
    @discardableResult
    public func rotate() -> String? {
        state.withLock { rotateLocked(&$0) }
    }

    /// Reopens ``path`` (creating it), keeping the old descriptor if that fails (SIGHUP).
    ///
    /// - Returns: nil when reopened; else why not.
    @discardableResult
    public func reopen() -> String? {
        let failure: String? = state.withLock { s in
            switch LogFile.open(path, mode: mode) {
            case .success(let opened):
                Syscall.close(s.fd)
                s.fd = opened.fd
                s.size = opened.size
                return nil
            case .failure(let e):
                return "cannot reopen log file: \(e)"
            }
        }
        if let failure { reportError(failure) }
        return failure
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

    /// Counts `log.1` ... up to `max` (stopping at the first gap), and deletes the files numbered
    /// beyond `max` that follow without a gap. Run once, when the file is opened.
    private static func countRotated(_ path: String, max: Int) -> Int {
        var n = 0
        while n < max, access("\(path).\(n + 1)", F_OK) == 0 { n += 1 }
        guard n == max else { return n }
        var extra = max + 1
        while unlink("\(path).\(extra)") == 0 { extra += 1 }
        return n
    }

    private func rotateLocked(_ s: inout State) -> String? {
        // Make room: the oldest kept file goes when the maximum is reached.
        if s.rotated >= maxRotatedFiles {
            let oldest = "\(path).\(maxRotatedFiles)"
            if unlink(oldest) != 0, errno != ENOENT {
                return "cannot rotate log file: \(SystemError.current("unlink \(oldest)"))"
            }
            s.rotated = maxRotatedFiles - 1
        }
        var n = s.rotated
        while n >= 1 {
            let from = "\(path).\(n)"
            // A file removed behind our back leaves a gap: nothing to move.
            if rename(from, "\(path).\(n + 1)") != 0, errno != ENOENT {
                return "cannot rotate log file: \(SystemError.current("rename \(from)"))"
            }
            n -= 1
        }
        // A live file deleted behind our back has nothing to archive: just start a new one.
        if rename(path, "\(path).1") != 0, errno != ENOENT {
            return "cannot rotate log file: \(SystemError.current("rename \(path)"))"
        }
        s.rotated += 1
        switch LogFile.open(path, mode: mode) {
        case .success(let opened):
            Syscall.close(s.fd)
            s.fd = opened.fd
            s.size = opened.size
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
