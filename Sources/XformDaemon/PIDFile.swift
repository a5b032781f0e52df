import Glibc
import Synchronization
import XformReactor

/// Why a pidfile could not be taken or removed.
public enum PIDFileError: ExitStatusError, Equatable, Sendable {
    /// The path was relative; pidfile paths must be resolved before any `chdir`.
    case relativePath(String)
    /// The file could not be opened or created.
    case cannotOpen(SystemError)
    /// Another process holds the lock; its pid if the file holds one.
    case alreadyRunning(pid: Int32?, path: String)
    /// The pid could not be written or synced.
    case cannotWrite(SystemError)
    /// The file could not be removed on exit.
    case cannotRemove(SystemError)

    /// ``ExitStatus/temporaryFailure`` (75) for an instance already running: the same command
    /// works once the other process stops, so it is not a configuration error.
    /// ``ExitStatus/cannotCreate`` (73) for open failures, ``ExitStatus/ioError`` (74) for write
    /// and remove failures, ``ExitStatus/usage`` (64) for a relative path.
    public var exitStatus: ExitStatus {
        switch self {
        case .relativePath: return .usage
        case .cannotOpen: return .cannotCreate
        case .alreadyRunning: return .temporaryFailure
        case .cannotWrite, .cannotRemove: return .ioError
        }
    }

    public var description: String {
        switch self {
        case .relativePath(let p): return "pidfile path must be absolute: \(p)"
        case .cannotOpen(let e): return "cannot open pidfile: \(e)"
        case .alreadyRunning(let pid?, let path): return "already running (pid \(pid), pidfile \(path))"
        case .alreadyRunning(nil, let path): return "already running (pidfile \(path) is locked)"
        case .cannotWrite(let e): return "cannot write pidfile: \(e)"
        case .cannotRemove(let e): return "cannot remove pidfile: \(e)"
        }
    }
}

/// A pidfile locked with `flock` for the life of the process.
///
/// The lock, not the file's existence, says whether an instance runs: the kernel drops it when
/// the process dies, so a stale file never blocks a restart and no `kill(pid, 0)` guess is needed
/// (twisted#3851, #7555). Take it after daemonizing (so the pid is final) and before reporting
/// readiness; call ``remove()`` on clean exit while the lock is still held.
public final class PIDFile: Sendable {
    /// The absolute path of the file.
    public let path: String
    /// The pid written into the file.
    public let pid: Int32
    private let fd: Mutex<Int32>

    /// Opens `path` (`O_CREAT|O_RDWR|O_CLOEXEC`, mode 0644), locks it with
    /// `flock(LOCK_EX|LOCK_NB)`, and writes `pid` followed by a newline (truncate, write, fsync).
    ///
    /// - Throws: ``PIDFileError/alreadyRunning(pid:path:)`` when another open file description
    ///   holds the lock (with the pid read from the file); other ``PIDFileError`` cases for a
    ///   relative path or I/O failures.
    public init(path: String, pid: Int32 = getpid()) throws(PIDFileError) {
        guard path.hasPrefix("/") else { throw .relativePath(path) }
        self.path = path
        self.pid = pid
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        if fd < 0 { throw .cannotOpen(.current("open \(path)")) }
        var locked: Int32
        repeat { locked = flock(fd, LOCK_EX | LOCK_NB) } while locked != 0 && errno == EINTR
        if locked != 0 {
            let e = errno
            if e == EWOULDBLOCK {
                let other = PIDFile.parsePID(Syscall.readToEnd(fd, limit: 64).bytes)
                Syscall.close(fd)
                throw .alreadyRunning(pid: other, path: path)
            }
            Syscall.close(fd)
            throw .cannotOpen(SystemError("flock \(path)", errno: e))
        }
        let text = "\(pid)\n"
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 {
            let e = SystemError.current("truncate \(path)")
            Syscall.close(fd)
            throw .cannotWrite(e)
        }
        if let e = Syscall.writeAll(fd, text) {
            Syscall.close(fd)
            throw .cannotWrite(SystemError("write \(path)", errno: e))
        }
        if fsync(fd) != 0 {
            let e = SystemError.current("fsync \(path)")
            Syscall.close(fd)
            throw .cannotWrite(e)
        }
        self.fd = Mutex(fd)
    }

    /// Makes `path` absolute against `directory` (the current directory by default). Call it
    /// while parsing options, before any `chdir`.
    public static func absolutePath(_ path: String, relativeTo directory: String? = nil) -> String {
        Daemonizer.absolutePath(path, relativeTo: directory)
    }

    /// Parses a pidfile's contents: decimal digits with optional surrounding whitespace.
    ///
    /// - Returns: the pid, or `nil` for anything else (empty, garbage, zero or negative).
    public static func parsePID(_ bytes: [UInt8]) -> Int32? {
        let text = String(decoding: bytes, as: UTF8.self)
        let trimmed = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
        guard trimmed.count == 1, let pid = Int32(trimmed[0]), pid > 0 else { return nil }
        return pid
    }

    /// Unlinks the file while still holding the lock, then closes it (which releases the lock).
    /// Calling it again does nothing.
    ///
    /// - Throws: ``PIDFileError/cannotRemove(_:)`` if the unlink fails for a reason other than
    ///   the file being already gone; the descriptor is closed anyway.
    public func remove() throws(PIDFileError) {
        let failure: SystemError? = fd.withLock { fd in
            guard fd >= 0 else { return nil }
            var failure: SystemError?
            if unlink(path) != 0, errno != ENOENT { failure = .current("unlink \(path)") }
            Syscall.close(fd)
            fd = -1
            return failure
        }
        if let failure { throw .cannotRemove(failure) }
    }

    deinit {
        fd.withLock { if $0 >= 0 { Syscall.close($0) } }
    }
}
