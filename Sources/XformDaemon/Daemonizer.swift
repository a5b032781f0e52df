import CXformShims
import Glibc
import Synchronization
import XformReactor

/// What a daemon child writes on its status pipe.
///
/// The protocol is one message, then the child closes its end:
/// - `0`: the daemon is serving; the launcher exits 0.
/// - `<code> <message>`: startup failed; the launcher prints the message and exits with `code`.
public enum DaemonStatus: Equatable, Sendable {
    /// The daemon is serving.
    case ready
    /// Startup failed with this exit code and message.
    case failed(code: Int32, message: String)

    /// The bytes written on the pipe.
    public var encoded: [UInt8] {
        switch self {
        case .ready: return Array("0".utf8)
        case .failed(let code, let message):
            // One line: newlines in the message would read as several messages to a person.
            let flat = message.split(separator: "\n", omittingEmptySubsequences: true).joined(separator: " ")
            return Array("\(code == 0 ? 1 : code) \(flat)".utf8)
        }
    }

    /// Parses what the launcher read before end of file.
    ///
    /// - Returns: the status, or `nil` when nothing was written. Bytes that are not a valid
    ///   message decode as a failure with ``ExitStatus/software``.
    public static func decode(_ bytes: [UInt8]) -> DaemonStatus? {
        guard !bytes.isEmpty else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        var trimmed = Substring(text)
        while let l = trimmed.last, l == "\n" || l == "\r" || l == " " { trimmed = trimmed.dropLast() }
        if trimmed == "0" { return .ready }
        let codeText = trimmed.prefix { $0 != " " }
        if let code = Int32(codeText), code > 0, code < 256 {
            let message = trimmed.dropFirst(codeText.count).drop { $0 == " " }
            return .failed(code: code, message: String(message))
        }
        return .failed(code: ExitStatus.software.rawValue, message: "daemon sent an invalid startup status: '\(trimmed)'")
    }
}

/// How a spawned child ended, from `waitpid`.
public enum ChildTermination: Equatable, Sendable {
    /// It called `exit` with this status.
    case exited(Int32)
    /// A signal killed it.
    case signaled(Int32)

    /// Decodes a `waitpid` status word.
    public init(waitStatus: Int32) {
        if waitStatus & 0x7f == 0 {
            self = .exited((waitStatus >> 8) & 0xff)
        } else {
            self = .signaled(waitStatus & 0x7f)
        }
    }
}

/// What the launcher does once its child has reported (or died): exit code and message.
public struct LaunchOutcome: Equatable, Sendable {
    /// The launcher's exit code.
    public var exitCode: Int32
    /// What to print to stderr, if anything.
    public var message: String?

    /// Decides the launcher's outcome.
    ///
    /// - A status message wins: `ready` exits 0 silently; `failed` exits with its code and message.
    /// - With no message, the child died before reporting: its exit status is passed on
    ///   (a status of 0 becomes ``ExitStatus/software``, since the daemon is not running), and a
    ///   death by signal N exits 128+N, the shell's convention.
    public init(status: DaemonStatus?, termination: ChildTermination?) {
        switch (status, termination) {
        case (.ready?, _):
            self.init(exitCode: 0, message: nil)
        case (.failed(let code, let message)?, _):
            self.init(exitCode: code, message: message)
        case (nil, .exited(let code)?):
            self.init(
                exitCode: code == 0 ? ExitStatus.software.rawValue : code,
                message: "daemon exited with status \(code) before it was ready")
        case (nil, .signaled(let signal)?):
            self.init(exitCode: 128 + signal, message: "daemon was killed by signal \(signal) before it was ready")
        case (nil, nil):
            self.init(exitCode: ExitStatus.software.rawValue, message: "daemon closed its status pipe without reporting")
        }
    }

    init(exitCode: Int32, message: String?) {
        self.exitCode = exitCode
        self.message = message
    }
}

/// `--daemon` without forking a process that has threads: re-exec and wait on a status pipe.
///
/// ``launch(arguments:program:executable:announce:)`` creates a pipe, spawns this same executable
/// (its real path, with the original `argv[0]`, so `ps`, `pgrep transform-server` and `pidof`
/// see the daemon under its own name) with `posix_spawn` in a new session
/// (`POSIX_SPAWN_SETSID`), stdio on `/dev/null`, the default signal mask, and the pipe's write
/// end named in the environment (``statusFDEnvironment``), not on the command line `ps` shows.
/// The child (see ``DaemonChild``) starts fresh, sets itself up, and reports on the pipe; the
/// launcher's exit code therefore says whether the daemon really started.
public enum Daemonizer {
    /// The hidden argument's prefix; its value is the status pipe's descriptor. Still accepted
    /// from a launcher of an earlier version; the launcher now uses ``statusFDEnvironment``.
    public static let statusFDArgument = "--daemon-child-status-fd="
    /// The environment variable naming the status pipe's descriptor in the daemon child (the
    /// child removes it from its environment at once).
    public static let statusFDEnvironment = "XFORM_DAEMON_STATUS_FD"

    /// This program's real path (`/proc/self/exe` resolved), for re-executing it under its own
    /// name; `/proc/self/exe` itself when that cannot be read or no longer exists.
    public static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "/proc/self/exe" }
        let path = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return access(path, X_OK) == 0 ? path : "/proc/self/exe"
    }

    /// Spawns the daemon child and exits with the outcome: 0 once it reports ready, else its
    /// failure code after printing `<program>: <message>` to stderr.
    ///
    /// - Parameters:
    ///   - arguments: the full command line, program name first (`CommandLine.arguments`).
    ///   - executable: the binary to run; default: this one, by its real path.
    ///   - announce: once the daemon is serving, the line printed on standard output, given its
    ///     pid (say where it logs); nil prints nothing.
    public static func launch(
        arguments: [String] = CommandLine.arguments, program: String, executable: String = executablePath(),
        announce: ((pid_t) -> String)? = nil
    ) -> Never {
        let outcome: LaunchOutcome
        var pid: pid_t = 0
        do {
            (outcome, pid) = try spawnAndWait(arguments: arguments, executable: executable)
        } catch {
            outcome = LaunchOutcome(exitCode: ExitStatus.osError.rawValue, message: "cannot start daemon: \(error)")
        }
        if let message = outcome.message { writeToStandardError("\(program): \(message)\n") }
        if outcome.exitCode == 0, let announce { writeToStandardOutput(announce(pid) + "\n") }
        Glibc.exit(outcome.exitCode)
    }

    /// The spawn-and-wait half of ``launch(arguments:program:executable:)``, returning instead of
    /// exiting.
    ///
    /// - Returns: the outcome and the child's pid. A child that failed or died has been reaped;
    ///   a ready one is still running.
    /// - Throws: ``SystemError`` when the pipe or the spawn fails.
    public static func spawnAndWait(
        arguments: [String], executable: String
    ) throws(SystemError) -> (outcome: LaunchOutcome, pid: pid_t) {
        var fds: [Int32] = [-1, -1]
        if cxform_daemon_pipe_cloexec(&fds) != 0 { throw .current("pipe2") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        if let e = Syscall.setCloseOnExec(writeEnd, false) {
            Syscall.close(readEnd)
            Syscall.close(writeEnd)
            throw SystemError("fcntl", errno: e)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, cxform_daemon_spawn_setsid_flag())
        do {
            try SignalMask.restoreDefaults(in: &attributes)
        } catch {
            Syscall.close(readEnd)
            Syscall.close(writeEnd)
            throw error
        }

        var cArgs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        // The environment, with the status descriptor: invisible to `ps`, unlike an argument.
        var cEnv: [UnsafeMutablePointer<CChar>?] = []
        var i = 0
        while let entry = environ[i] {
            if strncmp(entry, statusFDEnvironment + "=", statusFDEnvironment.utf8.count + 1) != 0 {
                cEnv.append(strdup(entry))
            }
            i += 1
        }
        cEnv.append(strdup("\(statusFDEnvironment)=\(writeEnd)"))
        cEnv.append(nil)
        defer { for p in cEnv { free(p) } }
        fflush(nil)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &cArgs, &cEnv)
        Syscall.close(writeEnd)
        if rc != 0 {
            Syscall.close(readEnd)
            throw SystemError("posix_spawn \(executable)", errno: rc)
        }

        let (bytes, _) = Syscall.readToEnd(readEnd, limit: 64 * 1024)
        Syscall.close(readEnd)
        let status = DaemonStatus.decode(bytes)
        var termination: ChildTermination?
        if status == nil || status != .ready {
            var raw: Int32 = 0
            var waited: pid_t
            repeat { waited = waitpid(pid, &raw, 0) } while waited < 0 && errno == EINTR
            if waited == pid { termination = ChildTermination(waitStatus: raw) }
        }
        return (LaunchOutcome(status: status, termination: termination), pid)
    }

    /// Sets the file-mode creation mask (twistd uses 0077 when daemonizing).
    ///
    /// - Returns: the previous mask.
    @discardableResult
    public static func setUmask(_ mask: mode_t) -> mode_t {
        Glibc.umask(mask)
    }

    /// Changes the working directory (`--rundir`; `daemon(7)` recommends `/`).
    ///
    /// - Throws: ``SystemError`` when `chdir` fails.
    public static func changeDirectory(_ path: String) throws(SystemError) {
        if chdir(path) != 0 { throw .current("chdir \(path)") }
    }

    /// Creates `path` and its missing parents (`mkdir -p`), as systemd's `RuntimeDirectory=`
    /// does for a service: `--rundir` and the pidfile's and log file's directories. Existing
    /// directories are left as they are.
    ///
    /// - Parameter mode: for each directory created, before the umask (default 0755).
    /// - Returns: the directories created, outermost first.
    /// - Throws: ``SystemError`` naming the directory that could not be created.
    @discardableResult
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) -> [String] {
        var created: [String] = []
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, mode) == 0 {
                created.append(prefix)
            } else if errno != EEXIST {
                throw .current("mkdir \(prefix)")
            }
        }
        var info = stat()
        if stat(path, &info) != 0 { throw .current("stat \(path)") }
        if info.st_mode & S_IFMT != S_IFDIR { throw SystemError("mkdir \(path)", errno: ENOTDIR) }
        return created
    }

    /// The directory part of `path` (`/a/b/c.pid` -> `/a/b`), or nil when there is none.
    public static func directory(of path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// The current working directory, or `nil` if it cannot be read.
    public static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Makes `path` absolute against `directory` (the current directory by default), so it keeps
    /// its meaning after ``changeDirectory(_:)``. Empty and `-` are returned unchanged.
    public static func absolutePath(_ path: String, relativeTo directory: String? = nil) -> String {
        guard !path.isEmpty, path != "-", !path.hasPrefix("/") else { return path }
        let base = directory ?? currentDirectory() ?? "/"
        // Drop empty and "." components; ".." is kept, since symlinks make it ambiguous.
        let parts = (base + "/" + path).split(separator: "/").filter { $0 != "." }
        return "/" + parts.joined(separator: "/")
    }
}

/// The daemon child's end of the status pipe.
///
/// Found by ``extract(from:)``, which also removes the hidden argument so the command line parses
/// as the user wrote it. Report exactly once: ``reportReady()`` when serving, or
/// ``reportFailure(_:message:)`` before exiting. Thread-safe; later reports do nothing.
public final class DaemonChild: Sendable {
    private let fd: Mutex<Int32>

    /// The descriptor of the pipe's write end.
    public let statusFD: Int32

    /// Adopts `statusFD` and marks it close-on-exec, so processes the daemon spawns do not keep
    /// the launcher waiting.
    public init(statusFD: Int32) {
        self.statusFD = statusFD
        _ = Syscall.setCloseOnExec(statusFD, true)
        fd = Mutex(statusFD)
    }

    /// Finds the status descriptor: in ``Daemonizer/statusFDEnvironment`` (removed from the
    /// process's environment, so nothing the daemon spawns sees it) or, from a launcher of an
    /// earlier version, the hidden `--daemon-child-status-fd=N` argument (removed from the
    /// returned arguments).
    ///
    /// - Parameter environment: where to look; nil (the default) reads and cleans the process's.
    /// - Returns: the child handle (or `nil` when this process is not a daemon child) and the
    ///   remaining arguments, program name included if it was given.
    public static func extract(
        from arguments: [String], environment: [String: String]? = nil
    ) -> (child: DaemonChild?, arguments: [String]) {
        let fromEnvironment: String?
        if let environment {
            fromEnvironment = environment[Daemonizer.statusFDEnvironment]
        } else {
            fromEnvironment = getenv(Daemonizer.statusFDEnvironment).map { String(cString: $0) }
            if fromEnvironment != nil { unsetenv(Daemonizer.statusFDEnvironment) }
        }
        let rest = arguments.filter { !$0.hasPrefix(Daemonizer.statusFDArgument) }
        if let text = fromEnvironment, let fd = Int32(text), fd > 2 { return (DaemonChild(statusFD: fd), rest) }
        guard let fd = statusFD(in: arguments) else { return (nil, arguments) }
        return (DaemonChild(statusFD: fd), rest)
    }

    /// The status descriptor named by the hidden argument, if present and valid.
    public static func statusFD(in arguments: [String]) -> Int32? {
        for a in arguments where a.hasPrefix(Daemonizer.statusFDArgument) {
            if let fd = Int32(a.dropFirst(Daemonizer.statusFDArgument.count)), fd > 2 { return fd }
        }
        return nil
    }

    /// Tells the launcher the daemon is serving (it exits 0), then closes the pipe.
    public func reportReady() {
        send(.ready)
    }

    /// Tells the launcher startup failed (it prints `message` and exits with `status`), then
    /// closes the pipe. Exit with the same status afterwards.
    public func reportFailure(_ status: ExitStatus, message: String) {
        send(.failed(code: status.rawValue, message: message))
    }

    /// Like ``reportFailure(_:message:)`` with a raw exit code.
    public func reportFailure(code: Int32, message: String) {
        send(.failed(code: code, message: message))
    }

    private func send(_ status: DaemonStatus) {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            let bytes = status.encoded
            _ = bytes.withUnsafeBytes { Syscall.writeAll(fd, $0) }
            Syscall.close(fd)
            fd = -1
        }
    }
}
