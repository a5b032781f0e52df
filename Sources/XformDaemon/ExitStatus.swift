import Glibc
import XformReactor

/// Process exit statuses: success, plain failure, and the BSD `sysexits.h` codes.
///
/// systemd.exec(5) lists the same table, so a unit file can say `RestartPreventExitStatus=64 78`
/// to avoid restart loops on usage and configuration errors.
public enum ExitStatus: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// 0: everything went as planned (including a clean stop after SIGTERM).
    case success = 0
    /// 1: a failure with no better code.
    case failure = 1
    /// 64 `EX_USAGE`: the command line was wrong.
    case usage = 64
    /// 65 `EX_DATAERR`: input data was malformed (e.g. invalid pidfile contents, invalid UTF-8).
    case dataError = 65
    /// 66 `EX_NOINPUT`: an input file did not exist or was unreadable.
    case noInput = 66
    /// 67 `EX_NOUSER`: an unknown user or group was named.
    case noUser = 67
    /// 69 `EX_UNAVAILABLE`: a needed service is unavailable (e.g. the server is unreachable).
    case unavailable = 69
    /// 70 `EX_SOFTWARE`: an internal error; a bug.
    case software = 70
    /// 71 `EX_OSERR`: an operating-system error (cannot spawn, cannot create an epoll instance...).
    case osError = 71
    /// 73 `EX_CANTCREAT`: a file (log, pidfile) could not be created.
    case cannotCreate = 73
    /// 74 `EX_IOERR`: an error while doing I/O on a file.
    case ioError = 74
    /// 75 `EX_TEMPFAIL`: a temporary failure; trying again later may work.
    case temporaryFailure = 75
    /// 76 `EX_PROTOCOL`: the remote side broke the protocol.
    case protocolError = 76
    /// 77 `EX_NOPERM`: insufficient permission (cannot bind, cannot change user).
    case noPermission = 77
    /// 78 `EX_CONFIG`: the configuration is wrong.
    case configuration = 78

    /// The `sysexits.h` name, e.g. `EX_USAGE`, or `EXIT_SUCCESS`/`EXIT_FAILURE`.
    public var description: String {
        switch self {
        case .success: return "EXIT_SUCCESS"
        case .failure: return "EXIT_FAILURE"
        case .usage: return "EX_USAGE"
        case .dataError: return "EX_DATAERR"
        case .noInput: return "EX_NOINPUT"
        case .noUser: return "EX_NOUSER"
        case .unavailable: return "EX_UNAVAILABLE"
        case .software: return "EX_SOFTWARE"
        case .osError: return "EX_OSERR"
        case .cannotCreate: return "EX_CANTCREAT"
        case .ioError: return "EX_IOERR"
        case .temporaryFailure: return "EX_TEMPFAIL"
        case .protocolError: return "EX_PROTOCOL"
        case .noPermission: return "EX_NOPERM"
        case .configuration: return "EX_CONFIG"
        }
    }

    /// Ends the process with this status, flushing C stdio buffers first (`exit(3)`).
    public func exit() -> Never {
        Glibc.exit(rawValue)
    }
}

/// A fatal condition with a message for people and an exit status for machines.
///
/// Use it where no more specific ``ExitStatusError`` exists:
/// `throw DaemonFailure(.cannotCreate, "cannot open log file: ...")`.
public struct DaemonFailure: ExitStatusError, Equatable, Sendable {
    /// The exit status the process should end with.
    public var exitStatus: ExitStatus
    /// What went wrong, in one line.
    public var message: String

    /// Makes a failure that exits with `status` after printing `message`.
    public init(_ status: ExitStatus, _ message: String) {
        self.exitStatus = status
        self.message = message
    }

    public var description: String { message }
}

/// Prints `<program>: <error>` to standard error and exits with the error's status
/// (``ExitStatus/software`` for errors that carry none).
public func exitWithError(_ error: any Error, program: String) -> Never {
    let status = (error as? any ExitStatusError)?.exitStatus ?? .software
    writeToStandardError("\(program): \(error)\n")
    status.exit()
}
