import Glibc
import XformReactor

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
