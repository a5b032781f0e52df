import Glibc
import XformClient
import XformCore
import XformDaemon
import XformReactor

/// The `xform` command: transforms text with a transform server and prints exactly the result.
///
/// `xform [options] <transform> [<file>...]` reads standard input when no file is given; several
/// files are sent concurrently, at most `--jobs` at a time (one ``TransformProxy`` sharing
/// kept-alive connections, fed by a ``ResizableDispatchQueue``, see ``XformBatch``) and their
/// results printed in argument order, like `cat`:
/// a file that fails is reported on standard error and the others are still printed. The exit
/// status is that of the first failure in argument order (see ``exitStatusHelp``).
///
/// The logic lives here so that `main.swift` is one line and tests can run the command in-process
/// with captured input and output (``CommandIO``).
public enum XformCommand {
    /// The command line declaration: parser, `--help` and error texts all come from it.
    public static let spec = CommandSpec(
        name: "xform",
        overview: "Transform text with a transform server.",
        discussion:
            "Reads standard input when no file is given and prints exactly the transformed text, with no newline "
            + "added. Several files are transformed concurrently and printed in argument order (or, with -o, each "
            + "written to DIR/<file's base name>). Transient failures (connection refused or lost, a server shutting "
            + "down) are retried with exponential backoff, a timeout once, all within --deadline; definitive ones "
            + "(an unknown transform, a refused request, a reply that is not the protocol's) fail at once. A text "
            + "over the server's limit (asked once with ?limits: '!' + transform name + '.' + text, in bytes) is "
            + "refused before sending. Output to a closed pipe (xform ... | head) ends quietly with status 0.",
        usage: "xform [<options>] <transform> [<file> ...]\nxform [<options>] --list",
        arguments: [
            ArgumentSpec("transform", help: "The transform to apply (see --list).", optional: true),
            ArgumentSpec(
                "file", help: "Files to transform (standard input when none is given).", optional: true,
                repeating: true),
        ],
        options: [
            .option("host", help: "The server's host name or address.", default: "127.0.0.1"),
            .option(
                "port", short: "p",
                help: "The server's port (default: 10001, the netstring port; 10002 with --line)."),
            .flag("line", help: "Speak the line protocol instead of the netstring protocol."),
            .option(
                "timeout", short: "t", valueName: "duration",
                help: "How long each attempt waits for its reply (30, 1.5, 250ms, 2s, 1m).", default: "30s"),
            .option("retries", valueName: "n", help: "How many times a transient failure is retried.", default: "9"),
            .option(
                "deadline", valueName: "duration",
                help: "The most time a call may take in all, retries and their delays included (0: no bound).",
                default: "30s"),
            .option(
                "retry-timeouts", valueName: "n",
                help: "How many times an attempt that timed out is retried (within --retries and --deadline).",
                default: "1"),
            .flag("no-retry", help: "Do not retry: the same as --retries 0."),
            .option(
                "output-dir", short: "o", valueName: "dir",
                help: "Write each file's result to DIR/<the file's base name> instead of standard output."),
            .flag("verbose", short: "v", help: "Print each failed attempt and the delay before the next on stderr."),
            .flag("list", help: "List the server's transforms, one per line, and exit."),
            .option("jobs", short: "j", valueName: "n", help: "How many files are in flight at once.", default: "8"),
            .flag(
                "progress",
                help: "Show a progress line on standard error (default: when it is a terminal and there are several files)."),
            .flag("no-progress", help: "Never show the progress line."),
        ],
        sections: [exitStatusHelp],
        version: version)

    /// What `--version` prints.
    public static let version = "xform 1.0.0"

    /// The EXIT STATUS section of `--help` (the README has the same table).
    public static let exitStatusHelp = HelpSection(
        "Exit status",
        [
            .item("0", "Success."),
            .item("1", "The transform failed on the server."),
            .item("64 (EX_USAGE)", "The command line is wrong."),
            .item(
                "65 (EX_DATAERR)",
                "The input is not UTF-8, or the server refused the request: unknown transform, bad request, too "
                    + "large."),
            .item("66 (EX_NOINPUT)", "An input file cannot be read."),
            .item(
                "69 (EX_UNAVAILABLE)",
                "The server cannot be reached (refused, unknown host, connection lost) after the retries."),
            .item("71 (EX_OSERR)", "The event loop cannot be created."),
            .item("73 (EX_CANTCREAT)", "A result cannot be written into the -o directory."),
            .item("74 (EX_IOERR)", "Standard output cannot be written (a closed pipe is not an error: status 0)."),
            .item("75 (EX_TEMPFAIL)", "No reply within the timeout, or the server is shutting down."),
            .item(
                "76 (EX_PROTOCOL)",
                "The server broke the protocol, or an original-protocol server closed the connection without a "
                    + "reply."),
        ])

    /// Where the command reads and writes; tests capture these.
    public struct CommandIO {
        /// Reads all of standard input.
        public var readStandardInput: () -> Result<[UInt8], SystemError>
        /// Reads a whole file.
        public var readFile: (String) -> Result<[UInt8], SystemError>
        /// Writes bytes to standard output; returns false if that failed.
        public var writeOutput: ([UInt8]) -> Bool
        /// Writes text to standard error.
        public var writeError: (String) -> Void
        /// Whether standard error is a terminal (where the progress line is shown by default).
        public var isErrorTerminal: () -> Bool
        /// Writes a whole file (created or truncated, mode 0666 before the umask).
        public var writeFile: (String, [UInt8]) -> Result<Void, SystemError>

        /// Builds an IO set from its parts.
        public init(
            readStandardInput: @escaping () -> Result<[UInt8], SystemError>,
            readFile: @escaping (String) -> Result<[UInt8], SystemError>,
            writeOutput: @escaping ([UInt8]) -> Bool,
            writeError: @escaping (String) -> Void,
            isErrorTerminal: @escaping () -> Bool = { false },
            writeFile: @escaping (String, [UInt8]) -> Result<Void, SystemError> = CommandIO.writeWholeFile
        ) {
            self.readStandardInput = readStandardInput
            self.readFile = readFile
            self.writeOutput = writeOutput
            self.writeError = writeError
            self.isErrorTerminal = isErrorTerminal
            self.writeFile = writeFile
        }

        /// Creates or truncates `path` and writes `bytes` to it.
        public static func writeWholeFile(_ path: String, _ bytes: [UInt8]) -> Result<Void, SystemError> {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
            if fd < 0 { return .failure(SystemError.current("open")) }
            defer { close(fd) }
            if let e = Syscall.writeAll(fd, bytes) { return .failure(SystemError("write", errno: e)) }
            return .success(())
        }

        /// The process's standard streams and file system.
        public static var standard: CommandIO {
            CommandIO(
                readStandardInput: { readAll(fd: 0, call: "read(stdin)") },
                readFile: { path in
                    let fd = open(path, O_RDONLY | O_CLOEXEC)
                    if fd < 0 { return .failure(SystemError.current("open")) }
                    defer { close(fd) }
                    return readAll(fd: fd, call: "read")
                },
                writeOutput: { bytes in Syscall.writeAll(1, bytes) == nil },
                writeError: { writeToStandardError($0) },
                isErrorTerminal: { isatty(2) == 1 })
        }
    }

    /// What one run decided, before it ran: the parsed settings.
    struct Settings {
        var transform: String?
        var files: [String]
        var list: Bool
        var configuration: TransformProxy.Configuration
        var endpoint: Endpoint
        /// `-o`: where each file's result goes, instead of standard output.
        var outputDirectory: String?
        /// `-v`: print each failed attempt.
        var verbose = false
        /// The most requests in flight (`--jobs`).
        var jobs = 8
        /// `--progress` (true), `--no-progress` (false), or neither (nil: decide by the terminal).
        var progress: Bool?
    }

    /// Runs `xform` with `arguments` (without the program name).
    ///
    /// - Returns: the exit status (see ``exitStatusHelp``).
    public static func main(
        arguments: [String], environment: [String: String] = ProcessEnvironment.current(),
        io: CommandIO = .standard
    ) -> Int32 {
        let columns = HelpFormatter.columns(environment: environment)
        let settings: Settings
        do {
            settings = try parse(arguments)
        } catch {
            let text = spec.errorText(for: error, columns: columns)
            if error.isCleanExit {
                _ = io.writeOutput(Array(text.utf8))
            } else {
                io.writeError(text)
            }
            return error.exitStatus.rawValue
        }
        return run(settings, io: io).rawValue
    }

    static func parse(_ arguments: [String]) throws(CommandLineError) -> Settings {
        let parsed = try spec.parse(arguments, configFileReader: { (_) throws(CommandLineError) in "" })
        let list = parsed.flag("list")
        let transform = parsed.argument("transform")
        var files = parsed.arguments("file")
        if list {
            // `xform --list` takes no transform and no files.
            let extra = (transform.map { [$0] } ?? []) + files
            if !extra.isEmpty { throw .unexpectedArguments(extra) }
            files = []
        } else if transform == nil {
            throw .missingArgument("transform", noArguments: arguments.isEmpty)
        }
        let line = parsed.flag("line")
        let port = try parsed.int("port", in: 1...65535) ?? (line ? 10002 : 10001)
        let host = parsed.string("host") ?? "127.0.0.1"
        guard let timeout = try parsed.duration("timeout"), timeout > .zero else {
            throw .invalidValue(value: parsed.string("timeout") ?? "", option: "timeout", reason: "must be positive")
        }
        let retries = parsed.flag("no-retry") ? 0 : (try parsed.int("retries", in: 0...1000) ?? 9)
        guard let deadline = try parsed.duration("deadline"), deadline >= .zero else {
            throw .invalidValue(value: parsed.string("deadline") ?? "", option: "deadline", reason: "must not be negative")
        }
        let outputDirectory = parsed.string("output-dir")
        if let outputDirectory {
            if files.isEmpty {
                throw .invalidValue(value: outputDirectory, option: "output-dir", reason: "needs files to name the results")
            }
            var seen: Set<String> = []
            for f in files where !seen.insert(baseName(f)).inserted {
                throw .invalidValue(
                    value: outputDirectory, option: "output-dir",
                    reason: "two files have the base name '\(baseName(f))'")
            }
        }
        var configuration = TransformProxy.Configuration()
        configuration.wire = line ? .line : .netstring
        configuration.timeout = timeout
        configuration.connectTimeout = timeout
        configuration.backoff = Backoff(maxAttempts: retries + 1)
        configuration.deadline = deadline == .zero ? nil : deadline
        configuration.timeoutRetries = try parsed.int("retry-timeouts", in: 0...1000) ?? 1
        var settings = Settings(
            transform: transform, files: files, list: list, configuration: configuration,
            endpoint: Endpoint(host: host, port: port))
        settings.outputDirectory = outputDirectory
        settings.verbose = parsed.flag("verbose")
        settings.jobs = try parsed.int("jobs", in: 1...10_000) ?? 8
        if parsed.flag("progress"), parsed.flag("no-progress") {
            throw .invalidValue(value: "--no-progress", option: "progress", reason: "cannot be combined with --no-progress")
        }
        settings.progress = parsed.flag("progress") ? true : parsed.flag("no-progress") ? false : nil
        return settings
    }

    /// One input: its label for error messages (nil for standard input) and its text or why
    /// it could not be read.
    struct Input {
        var label: String?
        var text: Result<String, Failure>
    }

    /// An error for people (one line) and its exit status.
    struct Failure: Error {
        var status: ExitStatus
        var message: String
    }

    static func run(_ settings: Settings, io: CommandIO) -> ExitStatus {
        let reactor: EpollReactor
        do {
            reactor = try EpollReactor()
        } catch {
            io.writeError("xform: cannot create the event loop: \(error)\n")
            return .osError
        }
        let proxy = TransformProxy(
            endpoints: [settings.endpoint], reactor: reactor, configuration: settings.configuration)
        reportRetries(of: proxy, on: reactor, verbose: settings.verbose, io: io)

        if settings.list {
            var outcome: Result<[String], TransformProxyError>?
            reactor.callLater(.zero) {
                proxy.list().addObserver { result in
                    outcome = result.mapError(TransformProxyError.from)
                    stop(reactor)
                }.addErrback { _ in [] }
            }
            reactor.run()
            switch outcome {
            case .success(let names)?:
                let text = names.map { $0 + "\n" }.joined()
                if !io.writeOutput(Array(text.utf8)) { return outputFailed(io, errno: errno) }
                return .success
            case .failure(let error)?:
                let f = failure(for: error)
                io.writeError("xform: \(f.message)\n")
                return f.status
            case nil:
                io.writeError("xform: the event loop stopped before the reply\n")
                return .software
            }
        }

        let inputs = readInputs(settings.files, io: io)
        let name = settings.transform ?? ""
        var results = [Result<String, Failure>?](repeating: nil, count: inputs.count)
        let terminal = io.isErrorTerminal()
        let showProgress = settings.progress ?? (terminal && inputs.count > 1)
        var batch: Deferred<[Result<String, TransformProxyError>?]>?
        reactor.callLater(.zero) {
            var texts: [String?] = []
            for (i, input) in inputs.enumerated() {
                switch input.text {
                case .success(let text): texts.append(text)
                case .failure(let f):
                    results[i] = .failure(f)
                    texts.append(nil)
                }
            }
            let all = XformBatch.start(
                texts: texts, name: name, jobs: settings.jobs, proxy: proxy, clock: reactor,
                progress: showProgress ? XformBatch.Progress(terminal: terminal, write: io.writeError) : nil)
            batch = all
            all.addObserver { outcome in
                if case .success(let each) = outcome {
                    for (i, result) in each.enumerated() where result != nil {
                        results[i] = result!.mapError { failure(for: $0) }
                    }
                }
                stop(reactor)
            }
        }
        reactor.run()
        withExtendedLifetime(batch) {}

        var status: ExitStatus?
        for (i, input) in inputs.enumerated() {
            switch results[i] {
            case .success(let text)?:
                if let directory = settings.outputDirectory, let label = input.label {
                    let path = directory + "/" + baseName(label)
                    if case .failure(let e) = io.writeFile(path, Array(text.utf8)) {
                        io.writeError("xform: \(label): cannot write '\(path)': \(SystemError.message(for: e.errno))\n")
                        if status == nil { status = .cannotCreate }
                    }
                } else if !io.writeOutput(Array(text.utf8)) {
                    return outputFailed(io, errno: errno)
                }
            case .failure(let f)?:
                let prefix = input.label.map { "\($0): " } ?? ""
                io.writeError("xform: \(prefix)\(f.message)\n")
                if status == nil { status = f.status }
            case nil:
                io.writeError("xform: the event loop stopped before the reply\n")
                if status == nil { status = .software }
            }
        }
        return status ?? .success
    }

    /// Stops the reactor from inside one of its callbacks. `requestStop()` rather than `stop()`:
    /// it also wakes `epoll_wait`, whereas `stop()` called from a timer callback leaves the loop
    /// blocked with nothing left to wake it (see the report on EpollReactor).
    static func stop(_ reactor: EpollReactor) {
        reactor.threadingHandle.requestStop()
    }

    /// Standard output failed with `errno`. A reader that went away (`xform ... | head`: EPIPE)
    /// is not an error, as for `cat` and `curl`, which stay quiet: exit 0 without a message,
    /// since everything the reader wanted was written. Anything else is 74 with the reason.
    static func outputFailed(_ io: CommandIO, errno code: Int32) -> ExitStatus {
        if code == EPIPE { return .success }
        io.writeError("xform: cannot write to standard output: \(SystemError.message(for: code))\n")
        return .ioError
    }

    /// `-v` prints each failed attempt and the delay before the next; without it, one line
    /// once the first retry has been going on for a second, as package managers do, so a
    /// server that does not answer never leaves the user waiting in silence.
    static func reportRetries(of proxy: TransformProxy, on reactor: EpollReactor, verbose: Bool, io: CommandIO) {
        var noticeTimer: (any DelayedCall)?
        proxy.onRetry = { attempt, error, delay in
            if verbose {
                io.writeError(
                    "xform: attempt \(attempt) failed: \(error); retrying in \(TransformProxyError.format(delay))\n")
            } else if noticeTimer == nil {
                noticeTimer = reactor.callLater(.seconds(1)) {
                    io.writeError("xform: server not answering, retrying… (-v shows each attempt)\n")
                }
            }
        }
    }

    /// The last path component of `path` (`a/b.txt` -> `b.txt`), for `-o`.
    static func baseName(_ path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        return trimmed.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? trimmed
    }

    /// Reads every input: standard input when there are no files. Unreadable files and text
    /// that is not UTF-8 become failures of their own.
    static func readInputs(_ files: [String], io: CommandIO) -> [Input] {
        func decode(_ bytes: Result<[UInt8], SystemError>, label: String?) -> Input {
            switch bytes {
            case .failure(let e):
                let what = label.map { "cannot read '\($0)'" } ?? "cannot read standard input"
                return Input(label: nil, text: .failure(Failure(status: .noInput, message: "\(what): \(SystemError.message(for: e.errno))")))
            case .success(let b):
                guard let s = String(validating: b, as: UTF8.self) else {
                    return Input(label: label, text: .failure(Failure(status: .dataError, message: "the input is not valid UTF-8")))
                }
                return Input(label: label, text: .success(s))
            }
        }
        if files.isEmpty { return [decode(io.readStandardInput(), label: nil)] }
        return files.map { path in
            path == "-" ? decode(io.readStandardInput(), label: "<stdin>") : decode(io.readFile(path), label: path)
        }
    }

    /// The one-line message and exit status for a proxy failure.
    static func failure(for error: TransformProxyError) -> Failure {
        switch error {
        case .connectionRefused(let e):
            return Failure(status: .unavailable, message: "cannot reach the server at \(e): connection refused")
        case .connectFailed(let e, let reason):
            return Failure(status: .unavailable, message: "cannot reach the server at \(e): \(reason)")
        case .unknownHost(let e):
            return Failure(status: .unavailable, message: "unknown host '\(e.host)'")
        case .connectionLost(let e):
            return Failure(status: .unavailable, message: "the connection to \(e) was lost before a complete reply")
        case .timedOut(let d):
            return Failure(
                status: .temporaryFailure, message: "no reply from the server within \(TransformProxyError.format(d))")
        case .shuttingDown(let e):
            return Failure(status: .temporaryFailure, message: "the server at \(e) is shutting down; try again later")
        case .unknownTransform(let name, _):
            return Failure(status: .dataError, message: "unknown transform '\(name)' (see 'xform --list')")
        case .badRequest(let m):
            return Failure(status: .dataError, message: "the server refused the request: \(m)")
        case .tooLarge(let m):
            return Failure(status: .dataError, message: "the input is too large for the server: \(m)")
        case .invalidUTF8:
            return Failure(status: .dataError, message: "the input is not valid UTF-8")
        case .transformFailed(let m):
            return Failure(status: .failure, message: "the transform failed: \(m)")
        case .protocolError(let e, let detail):
            return Failure(status: .protocolError, message: "protocol error from \(e): \(detail)")
        case .closedWithoutReply(let e):
            return Failure(
                status: .protocolError,
                message:
                    "the server at \(e) closed the connection without a reply (an original-protocol server does this for an unknown transform or any other error)"
            )
        case .notSupported(let m):
            return Failure(status: .unavailable, message: m)
        case .cancelled:
            return Failure(status: .failure, message: "cancelled")
        }
    }
}

/// Reads `fd` to its end, retrying on EINTR.
func readAll(fd: Int32, call: String) -> Result<[UInt8], SystemError> {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(SystemError.current(call))
        }
        if n == 0 { return .success(out) }
        out.append(contentsOf: chunk[0..<n])
    }
}

