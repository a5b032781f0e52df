import Glibc

/// A failed system call: which call, on what, and the `errno` it left.
///
/// The daemon layer reports these to people, so ``description`` reads like a line of a log:
/// `open /var/run/x.pid: Permission denied`.
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

/// Errors that know which sysexits code the process should exit with.
///
/// Every error the daemon layer throws conforms, so a `main.swift` can end with one `catch`:
/// print the description and exit with ``exitStatus``.
public protocol ExitStatusError: Error, CustomStringConvertible {
    /// The process exit status this error calls for.
    var exitStatus: ExitStatus { get }
}

/// The process environment as a dictionary, and the few edits the daemon layer makes to it.
public enum ProcessEnvironment {
    /// A snapshot of the current environment (`environ`). Later `setenv`/`unsetenv` calls are not
    /// reflected in the returned value.
    public static func current() -> [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let pair = String(cString: entry)
            if let eq = pair.firstIndex(of: "=") {
                result[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
            }
            cursor += 1
        }
        return result
    }

    /// Removes `names` from the process environment so no child process inherits them.
    ///
    /// Touches process-wide state: call it from `main` before threads that read the environment
    /// exist.
    public static func unset(_ names: [String]) {
        for name in names { unsetenv(name) }
    }
}

/// Small EINTR-safe wrappers used across the module.
enum Syscall {
    /// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
    ///
    /// - Returns: `nil` on success, or the `errno` of the failing `write`.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        guard var base = bytes.baseAddress else { return nil }
        var left = bytes.count
        while left > 0 {
            let n = write(fd, base, left)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            left -= n
            base += n
        }
        return nil
    }

    /// Writes all of `text`'s UTF-8 bytes to `fd`, retrying on EINTR and short writes.
    static func writeAll(_ fd: Int32, _ text: String) -> Int32? {
        var text = text
        return text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    }

    /// Reads `fd` to end of file, retrying on EINTR.
    ///
    /// - Returns: the bytes read and, if reading stopped on an error, its `errno`.
    static func readToEnd(_ fd: Int32, limit: Int = 1 << 20) -> (bytes: [UInt8], errno: Int32?) {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return (out, errno)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return (out, nil)
    }

    /// Closes `fd`, ignoring EINTR (on Linux the descriptor is released anyway).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Sets or clears `FD_CLOEXEC` on `fd`.
    ///
    /// - Returns: `nil` on success, or the `errno` of the failing `fcntl`.
    static func setCloseOnExec(_ fd: Int32, _ on: Bool) -> Int32? {
        let flags = fcntl(fd, F_GETFD)
        if flags < 0 { return errno }
        let updated = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC)
        if updated != flags, fcntl(fd, F_SETFD, updated) < 0 { return errno }
        return nil
    }
}

/// Writes a line to the process's standard error, unbuffered (fd 2).
///
/// Used for the messages a daemon must get out even when logging is broken.
public func writeToStandardError(_ text: String) {
    _ = Syscall.writeAll(2, text)
}

/// Writes text to the process's standard output, unbuffered (fd 1).
public func writeToStandardOutput(_ text: String) {
    _ = Syscall.writeAll(1, text)
}
