import Glibc
import XformCore

/// A failed system call: which call, on what, and the `errno` it left.
///
/// The one errno error of the package: the reactor throws it from `socket`, `bind`, `epoll_create1`
/// and the like, the daemon layer from `open`, `flock`, `posix_spawn`. Its ``description`` reads
/// like a line of a log: `bind: Address already in use`.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call that failed, with its subject, e.g. `open /var/run/x.pid`.
    public var call: String
    /// The `errno` value the call left.
    public var errno: Int32

    /// Wraps `errno` for `call`.
    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// Captures the current `errno` for `call`.
    public static func current(_ call: String) -> SystemError { SystemError(call, errno: Glibc.errno) }

    /// `call: strerror(errno)`.
    public var description: String { "\(call): \(SystemError.message(for: errno))" }

    /// The C library's text for an `errno` value (`strerror`).
    public static func message(for code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }
}

/// Small EINTR-safe wrappers for blocking descriptors (files, pipes, standard streams), shared by
/// the daemon layer and the commands. Sockets on the reactor go through ``TCPConnection`` instead.
public enum Syscall {
    /// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
    ///
    /// - Returns: `nil` on success, or the `errno` of the failing `write`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        guard var base = bytes.baseAddress else { return nil }
        var left = bytes.count
        while left > 0 {
            let n = write(fd, base, left)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                return Glibc.errno
            }
            left -= n
            base += n
        }
        return nil
    }

    /// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
    ///
    /// - Returns: `nil` on success, or the `errno` of the failing `write`.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { writeAll(fd, $0) }
    }

    /// Writes all of `text`'s UTF-8 bytes to `fd`, retrying on EINTR and short writes.
    ///
    /// - Returns: `nil` on success, or the `errno` of the failing `write`.
    public static func writeAll(_ fd: Int32, _ text: String) -> Int32? {
        var text = text
        return text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    }

    /// Reads `fd` to end of file (at most `limit` bytes), retrying on EINTR.
    ///
    /// - Returns: the bytes read and, if reading stopped on an error, its `errno`.
    public static func readToEnd(_ fd: Int32, limit: Int = 1 << 20) -> (bytes: [UInt8], errno: Int32?) {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                return (out, Glibc.errno)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return (out, nil)
    }

    /// Closes `fd`, ignoring EINTR (on Linux the descriptor is released anyway).
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Sets or clears `FD_CLOEXEC` on `fd`.
    ///
    /// - Returns: `nil` on success, or the `errno` of the failing `fcntl`.
    public static func setCloseOnExec(_ fd: Int32, _ on: Bool) -> Int32? {
        let flags = fcntl(fd, F_GETFD)
        if flags < 0 { return Glibc.errno }
        let updated = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)
        if updated != flags, fcntl(fd, F_SETFD, updated) < 0 { return Glibc.errno }
        return nil
    }
}

extension DeferredDiagnostics {
    /// The handler that writes each unhandled Deferred failure as one line to standard error
    /// (fd 2, unbuffered). `EpollReactor.init` installs it when no handler is installed yet.
    public static let standardError: Handler = { error in
        _ = Syscall.writeAll(2, error.description + "\n")
    }
}
