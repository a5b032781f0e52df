import Glibc
import XformClient
import XformCore
import XformDaemon
import XformServer
import XformTransforms

/// Where the server's log lines go.
public enum TransformServerLogDestination: Sendable, Equatable {
    /// Standard error (the foreground default; journald captures it under systemd).
    case standardError
    /// Standard output (`--logfile -`; refused with `--daemon`).
    case standardOutput
    /// A size-rotated file at this absolute path.
    case file(String)
}

/// Everything `transform-server` was asked to do, validated, with every path made absolute.
///
/// Built by ``TransformServerCommand/parseOptions(_:currentDirectory:configFileReader:)`` from the
/// command line and the `--config` file; consumed by ``TransformServerCommand/main(arguments:)``.
public struct TransformServerOptions: Sendable, Equatable {
    /// The address both ports listen on.
    public var interface = "127.0.0.1"
    /// The netstring port (0 picks a free one).
    public var netstringPort = 10001
    /// The line port (0 picks a free one).
    public var linePort = 10002
    /// The HTTP port (protocol-spec/http.md; 0 picks a free one), or nil for none (the default).
    public var httpPort: Int?
    /// How long a graceful stop keeps the ports serving, unready, before closing them.
    public var drainDelay: Duration = .zero
    /// Request, line, idle and connection limits.
    public var limits = ServerLimits()
    /// The most asynchronous and thread-pool transforms underway at once (0: unbounded); `nil`
    /// takes ``TransformServerCommand/defaultMaxConcurrentAsync``. Re-read from `--config` on SIGHUP.
    public var maxConcurrentAsync: Int?
    /// How long a graceful stop waits before closing what is still open; `nil` waits forever.
    public var shutdownTimeout: Duration? = .seconds(15)
    /// The least severe level logged.
    public var logLevel: LogLevel = .info
    /// `text` or `journal`; `nil` detects the journal from `JOURNAL_STREAM`.
    public var logFormat: LogFormat?
    /// Where log lines go.
    public var logDestination: TransformServerLogDestination = .standardError
    /// The log file's rotation size in bytes; 0 disables size rotation.
    public var logMaxSize = LogFile.defaultRotateLength
    /// How many rotated log files to keep (5 by default, at most 1,000).
    public var logMaxFiles = LogFile.defaultMaxRotatedFiles
    /// True for `--daemon`: re-exec in the background and return once serving.
    public var daemon = false
    /// The absolute pidfile path, or `nil` for none.
    public var pidfile: String?
    /// The user to switch to after binding, by name or number.
    public var user: String?
    /// The group to switch to after binding, by name or number.
    public var group: String?
    /// The file-mode creation mask to set, or `nil` to keep the inherited one.
    public var umask: mode_t?
    /// The absolute directory to change to, or `nil` to stay.
    public var rundir: String?
    /// The upstream servers (`--upstream`, in failover order); not empty: run as a proxy.
    public var upstreams: [Endpoint] = []
    /// The transforms to serve for original-protocol upstreams (`--upstream-transforms`);
    /// `nil` asks the upstream for its list.
    public var upstreamTransforms: [String]?
    /// How many event loops serve (`--reactors`), each on its own thread with its own
    /// `SO_REUSEPORT` listeners; `nil` (`auto`) means one per core.
    public var reactors: Int? = 1
    /// The proxy's result cache bound in bytes, keys and values counted; 0 disables it.
    public var cacheBytes = 64 * 1024 * 1024
    /// How long the proxy serves a cached result; `nil` until evicted.
    public var cacheTTL: Duration?

    /// The defaults, as `transform-server` with no options runs.
    public init() {}
}

/// What `main` should do with a command line: run the server, or print and exit.
public enum TransformServerInvocation: Sendable, Equatable {
    /// Start the server with these options.
    case run(TransformServerOptions)
    /// Print `standardOutput` and `standardError` (either may be empty) and exit with `status`.
    case exit(status: Int32, standardOutput: String, standardError: String)
}

extension TransformServerCommand {
    /// The program name used in help, errors and logs.
    public static let programName = "transform-server"
    /// What `--version` prints.
    public static let version = "transform-server 1.0.0"
    /// The log file used with `--daemon` when `--logfile` is not given, inside the run directory.
    public static let defaultDaemonLogFile = "transform-server.log"

    /// The default `--max-concurrent-async`: twice the reactor's thread pool size (one thread
    /// per online core, at least 2), so the pool stays busy while the gate decides the order.
    public static var defaultMaxConcurrentAsync: Int {
        2 * max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// The command's declaration: options, help sections, version.
    public static let spec = CommandSpec(
        name: programName,
        overview: "Serves text transformations over the netstring and line protocols, and HTTP.",
        discussion: """
            Runs in the foreground and logs to standard error unless --daemon is given. Every \
            option can also be set in a --config file (key = value, keys are the long option \
            names); the command line wins.
            """,
        options: [
            .option(
                "interface", aliases: ["iface"], valueName: "address",
                help: "The address both ports listen on.", default: "127.0.0.1"),
            .option(
                "netstring-port", valueName: "port",
                help: "The netstring port; 0 picks a free port, shown in the log.", default: "10001"),
            .option(
                "line-port", valueName: "port",
                help: "The line port; 0 picks a free port, shown in the log.", default: "10002"),
            .option(
                "http-port", valueName: "port",
                help: "Also serve HTTP on this port: POST /transform/NAME, GET /metrics, /healthz, /readyz, "
                    + "/transforms (default: no HTTP port)."),
            .option(
                "max-request-bytes", valueName: "bytes",
                help: "The longest request accepted, in bytes: on the netstring port the whole payload, name "
                    + "included ('!upper.' + text: 99,992 bytes of text for upper by default); on the line port the "
                    + "text of a block. Clients read it with ?limits.",
                default: "99999"),
            .option(
                "max-line-length", valueName: "bytes", help: "The longest line accepted on the line port.",
                default: "16384"),
            .option(
                "idle-timeout", valueName: "duration",
                help: "Close connections with no complete request for this long; 0 never does.",
                default: "120s"),
            .option(
                "request-timeout", valueName: "duration",
                help: "Close connections whose request is not complete this long after its first byte; 0 never does.",
                default: "30s"),
            .option(
                "max-connections", valueName: "count", help: "The most open connections per port.",
                default: "1024"),
            .option(
                "max-concurrent-async", valueName: "count",
                help: "The most asynchronous and thread-pool transforms underway at once, shared fairly among "
                    + "connections; 0 is unbounded. Default: twice the thread pool size. Re-read from --config on HUP."),
            .option(
                "shutdown-timeout", valueName: "duration",
                help: "How long a graceful stop waits for requests in flight before closing connections; 0 waits "
                    + "for ever.",
                default: "15s"),
            .option(
                "upstream", valueName: "host:port",
                help: "Run as a caching proxy in front of the transform server at this netstring address; "
                    + "repeat for failover, tried in order.",
                repeatable: true),
            .option(
                "upstream-transforms", valueName: "names",
                help: "The transforms to serve, comma-separated, for upstreams that speak only the original "
                    + "protocol (which cannot list them). Default: the upstream's list."),
            .option(
                "cache-bytes", valueName: "bytes",
                help: "The proxy's result cache bound, keys and values counted; 0 disables the cache.",
                default: String(64 * 1024 * 1024)),
            .option(
                "cache-ttl", valueName: "duration",
                help: "How long the proxy serves a cached result; 0 until evicted.", default: "0"),
            .option(
                "reactors", valueName: "count",
                help: "Serve with this many event loops, one per thread, each accepting on its own SO_REUSEPORT "
                    + "socket per port; auto is one per core.",
                default: "1"),
            .option(
                "drain-delay", valueName: "duration",
                help: "On TERM/INT, answer /readyz with 503 and keep serving this long before the ports close, so "
                    + "load balancers stop sending first.",
                default: "0s"),
            .option(
                "log-level", valueName: "level", help: "The least severe events logged.", default: "info",
                values: LogLevel.allCases.map(\.description)),
            .option(
                "log-format", valueName: "format",
                help: "The log line layout; auto means journal when standard error is the systemd journal.",
                default: "auto", values: ["auto", "text", "journal"]),
            .option(
                "logfile", valueName: "path",
                help: "Log to this file, rotated by size; - is standard output. Default: standard error, or "
                    + "\(defaultDaemonLogFile) in the run directory with --daemon."),
            .option(
                "log-max-size", valueName: "bytes", help: "Rotate the log file before it passes this size; 0 never does.",
                default: String(LogFile.defaultRotateLength)),
            .option(
                "log-max-files", valueName: "count", help: "Keep at most this many rotated log files (1-1000).",
                default: String(LogFile.defaultMaxRotatedFiles)),
            .flag(
                "daemon",
                help: "Run in the background; the command returns once the server is serving, or fails with the "
                    + "server's error."),
            .flag("nodaemon", short: "n", help: "Run in the foreground (the default); overrides --daemon."),
            .option(
                "pidfile", valueName: "path",
                help: "Write the process id to this file and lock it while running (default: none)."),
            .option(
                "user", short: "u", aliases: ["uid"], valueName: "user",
                help: "Switch to this user (name or number) after binding the ports."),
            .option(
                "group", short: "g", aliases: ["gid"], valueName: "group",
                help: "Switch to this group after binding (default: the user's primary group)."),
            .option(
                "umask", valueName: "mask",
                help: "The file-mode creation mask, in octal (default: inherited, or 0077 with --daemon)."),
            .option(
                "rundir", valueName: "directory",
                help: "Change to this directory before starting; it is created when missing, as are the pidfile's and "
                    + "the log file's directories.",
                default: "."),
            .option(
                "config", valueName: "file",
                help: "Read options from this file, one 'key = value' per line; the command line wins.",
                configurable: false),
        ],
        sections: [
            HelpSection(
                "Signals",
                [
                    .item(
                        "TERM, INT",
                        "Stop gracefully: turn unready (/readyz answers 503), after --drain-delay stop listening, "
                            + "finish the requests in flight (up to --shutdown-timeout), "
                            + "close, remove the pidfile, exit 0. A second one exits at once with status 128+signal."),
                    .item("HUP", "Reopen the log file (after logrotate moved it); re-read --max-concurrent-async from --config."),
                    .item("USR1", "Rotate the log file now."),
                    .item("USR2", "Log the server statistics."),
                ]),
            HelpSection(
                "Exit status",
                [
                    .item("0", "Stopped cleanly (including after TERM or INT)."),
                    .item("64", "Bad command line."),
                    .item("66", "The config file cannot be read."),
                    .item("67", "Unknown --user or --group."),
                    .item("70", "Internal error."),
                    .item("71", "Cannot listen (address in use...) or other system error."),
                    .item("73", "Cannot create the log file or the pidfile."),
                    .item("74", "Cannot write the pidfile."),
                    .item("77", "Permission denied (binding a port, switching user)."),
                    .item("78", "Bad configuration, or already running (the pidfile is locked)."),
                    .item("128+N", "Forced to exit by a second signal N."),
                ]),
            HelpSection(
                "Environment",
                [
                    .item("NOTIFY_SOCKET", "Readiness (READY=1) and stop (STOPPING=1) notifications for systemd."),
                    .item(
                        "LISTEN_FDS", "Listening sockets from systemd, matched by the names netstring, line and http "
                            + "(LISTEN_FDNAMES), else by position."),
                    .item("JOURNAL_STREAM", "Standard error is the journal: log in the journal format."),
                ]),
        ],
        version: version)

    /// Parses and validates a command line (without the program name).
    ///
    /// Paths (`--pidfile`, `--logfile`, `--rundir`) are made absolute against `currentDirectory`
    /// now, before any `chdir`. A `--daemon` run without `--logfile` logs to
    /// ``defaultDaemonLogFile`` in the run directory.
    ///
    /// - Returns: the options.
    /// - Throws: ``CommandLineError`` for help and version requests, unknown options, missing or
    ///   invalid values (also those read from the config file), and an unreadable config file.
    public static func parseOptions(
        _ arguments: [String], currentDirectory: String,
        configFileReader: (String) throws(CommandLineError) -> String = CommandSpec.readConfigFile
    ) throws(CommandLineError) -> TransformServerOptions {
        let parsed = try spec.parse(arguments, configFileReader: configFileReader)
        var o = TransformServerOptions()
        func absolute(_ path: String) -> String { Daemonizer.absolutePath(path, relativeTo: currentDirectory) }

        o.daemon = parsed.flag("daemon") && !parsed.flag("nodaemon")
        o.interface = try parsed.value("interface") { (text) throws(ValueParseError) in
            guard !text.isEmpty else { throw ValueParseError("expected an address such as 127.0.0.1 or ::1") }
            return text
        } ?? o.interface
        o.netstringPort = try parsed.int("netstring-port", in: 0...65535) ?? o.netstringPort
        o.linePort = try parsed.int("line-port", in: 0...65535) ?? o.linePort
        o.httpPort = try parsed.int("http-port", in: 0...65535)
        o.drainDelay = try parsed.duration("drain-delay") ?? o.drainDelay
        o.reactors = try parsed.value("reactors") { (text) throws(ValueParseError) -> Int? in
            if text == "auto" { return nil }
            guard let n = Int(text), (1...256).contains(n) else {
                throw ValueParseError("expected auto or a count from 1 to 256")
            }
            return n
        } ?? o.reactors
        o.limits.maxRequestBytes = try parsed.int("max-request-bytes", in: 1...1 << 30) ?? o.limits.maxRequestBytes
        o.limits.maxLineLength = try parsed.int("max-line-length", in: 1...1 << 30) ?? o.limits.maxLineLength
        if let idle = try parsed.duration("idle-timeout") { o.limits.idleTimeout = idle == .zero ? nil : idle }
        if let late = try parsed.duration("request-timeout") { o.limits.requestTimeout = late == .zero ? nil : late }
        o.limits.maxConnections = try parsed.int("max-connections", in: 1...1_000_000) ?? o.limits.maxConnections
        o.maxConcurrentAsync = try parsed.int("max-concurrent-async", in: 0...1_000_000)
        if let stop = try parsed.duration("shutdown-timeout") { o.shutdownTimeout = stop == .zero ? nil : stop }
        o.logLevel = try parsed.value("log-level") { (text) throws(ValueParseError) in
            guard let level = LogLevel(name: text) else { throw ValueParseError(nil) }
            return level
        } ?? o.logLevel
        o.logFormat = try parsed.value("log-format") { (text) throws(ValueParseError) -> LogFormat? in
            if text == "auto" { return nil }
            guard let f = LogFormat(rawValue: text) else { throw ValueParseError(nil) }
            return f
        } ?? nil
        o.logMaxSize = try parsed.int("log-max-size", in: 0...Int.max) ?? o.logMaxSize
        o.logMaxFiles = try parsed.int("log-max-files", in: 1...LogFile.maxRotatedFilesLimit) ?? o.logMaxFiles
        o.umask = try parsed.umask("umask")
        let rundir = try parsed.value("rundir") { (text) throws(ValueParseError) in
            guard !text.isEmpty else { throw ValueParseError("expected a directory") }
            return absolute(text)
        }
        // The default "." is where we are: nothing to change unless asked.
        o.rundir = parsed.wasGiven("rundir") ? rundir : nil
        let runDirectory = rundir ?? currentDirectory
        let daemon = o.daemon
        o.logDestination = try parsed.value("logfile") { (text) throws(ValueParseError) -> TransformServerLogDestination in
            if text == "-" {
                if daemon { throw ValueParseError("a daemon cannot log to standard output") }
                return .standardOutput
            }
            if text.isEmpty { return daemon ? .file(runDirectory + "/" + defaultDaemonLogFile) : .standardError }
            return .file(absolute(text))
        } ?? (daemon ? .file(Daemonizer.absolutePath(defaultDaemonLogFile, relativeTo: runDirectory)) : .standardError)
        o.pidfile = try parsed.value("pidfile") { (text) throws(ValueParseError) -> String? in
            text.isEmpty ? nil : absolute(text)
        } ?? nil
        o.user = parsed.string("user").flatMap { $0.isEmpty ? nil : $0 }
        o.group = parsed.string("group").flatMap { $0.isEmpty ? nil : $0 }
        for text in parsed.strings("upstream") {
            do {
                o.upstreams.append(try parseEndpoint(text))
            } catch {
                throw .invalidValue(value: text, option: "upstream", reason: error.reason)
            }
        }
        o.upstreamTransforms = try parsed.value("upstream-transforms") { (text) throws(ValueParseError) -> [String] in
            let names = text.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw ValueParseError("expected names such as cummingsify,upper") }
            if let bad = names.first(where: { !TransformName.isValid($0) }) {
                throw ValueParseError("'\(bad)' is not a valid transform name")
            }
            return names
        }
        if o.upstreamTransforms != nil, o.upstreams.isEmpty {
            throw .invalidValue(
                value: parsed.string("upstream-transforms") ?? "", option: "upstream-transforms",
                reason: "it needs --upstream")
        }
        o.cacheBytes = try parsed.int("cache-bytes", in: 0...Int.max) ?? o.cacheBytes
        if let ttl = try parsed.duration("cache-ttl") { o.cacheTTL = ttl == .zero ? nil : ttl }
        return o
    }

    /// Parses `host:port` (`[v6]:port` for IPv6 literals).
    static func parseEndpoint(_ text: String) throws(ValueParseError) -> Endpoint {
        let why = "expected host:port, such as 127.0.0.1:10001 or [::1]:10001"
        guard let colon = text.lastIndex(of: ":") else { throw ValueParseError(why) }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValueParseError(why)
        }
        return Endpoint(host: host, port: port)
    }

    /// Decides what a command line (without the program name) asks for, without side effects
    /// beyond reading the config file: the options to run with, or the text and status to exit
    /// with (help and version on stdout with 0; errors on stderr with 64, 66 or 78).
    public static func evaluate(
        _ arguments: [String], environment: [String: String], currentDirectory: String,
        configFileReader: (String) throws(CommandLineError) -> String = CommandSpec.readConfigFile
    ) -> TransformServerInvocation {
        do {
            return .run(
                try parseOptions(arguments, currentDirectory: currentDirectory, configFileReader: configFileReader))
        } catch {
            let text = spec.errorText(for: error, columns: HelpFormatter.columns(environment: environment))
            return error.isCleanExit
                ? .exit(status: error.exitStatus.rawValue, standardOutput: text, standardError: "")
                : .exit(status: error.exitStatus.rawValue, standardOutput: "", standardError: text)
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
