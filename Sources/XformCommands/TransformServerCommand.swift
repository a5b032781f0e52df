import Glibc
import XformCore
import XformDaemon
import XformFraming
import XformProxy
import XformReactor
import XformServer
import XformTransforms

/// The `transform-server` command: options, daemon start-up in twistd's order, signals, and
/// a graceful stop.
///
/// `main.swift` calls ``prepareProcess()`` first (before any thread exists), then
/// `exit(TransformServerCommand.main(arguments: CommandLine.arguments))`.
///
/// Start-up order: parse and validate (64/66/78) -> with `--daemon`, re-exec in the background
/// and wait on the status pipe -> umask, rundir -> pidfile (flock; 78 when already running) ->
/// log -> reactor and signal handling -> the server (`MultiService[transforms, netstring port,
/// line port]`) -> bind or adopt systemd's sockets (71/77/78) -> drop privileges (77) -> start ->
/// one `listening for ... requests on HOST:PORT` line per port -> `READY=1` -> status pipe
/// "ready" -> `reactor.run()`.
public enum TransformServerCommand {
    /// The signals the server handles through the reactor's signalfd.
    public static let handledSignals: [Int32] = SignalMask.handledSignals

    /// Blocks TERM, INT, HUP, USR1 and USR2 and ignores SIGPIPE. Call it first thing in
    /// `main.swift`, before Dispatch, Foundation or anything else has started a thread: threads
    /// inherit the mask, so the signals stay pending for the reactor's signalfd.
    public static func prepareProcess() {
        SignalMask.blockTerminationSignals()
        SignalMask.ignoreBrokenPipe()
    }

    /// Runs the command.
    ///
    /// - Parameters:
    ///   - arguments: the full command line, program name first.
    ///   - transforms: served besides the built-in ones (`TransformServerKit`'s embedders); a
    ///     name that is invalid or already taken stops the start-up with status 78.
    /// - Returns: the exit status (0 after a clean stop). With `--daemon` the launcher never
    ///   returns: it exits with the daemon's start-up outcome.
    public static func main(arguments: [String], transforms: [Transform] = []) -> Int32 {
        let (child, arguments) = DaemonChild.extract(from: arguments)
        let environment = ProcessEnvironment.current()
        let currentDirectory = Daemonizer.currentDirectory() ?? "/"
        let invocation = evaluate(
            Array(arguments.dropFirst()), environment: environment, currentDirectory: currentDirectory)
        switch invocation {
        case .exit(let status, let out, let err):
            if !out.isEmpty { writeToStandardOutput(out) }
            if !err.isEmpty { writeToStandardError(err) }
            child?.reportFailure(code: status, message: err)
            return status
        case .run(let options):
            if options.daemon, child == nil {
                Daemonizer.launch(arguments: arguments, program: programName) { pid in
                    "\(programName): started in the background (pid \(pid))\(logDescription(options.logDestination))"
                }
            }
            // SIGHUP re-reads the command line and --config (relative to where we started, not
            // the run directory) for the options that may change at run time.
            let reread = { () -> Result<TransformServerOptions, CommandLineError> in
                do throws(CommandLineError) {
                    return .success(
                        try parseOptions(
                            Array(arguments.dropFirst()), currentDirectory: currentDirectory,
                            configFileReader: { (path) throws(CommandLineError) in
                                try CommandSpec.readConfigFile(Daemonizer.absolutePath(path, relativeTo: currentDirectory))
                            }))
                } catch {
                    return .failure(error)
                }
            }
            return TransformServerRunner(
                options: options, daemonChild: child, environment: environment, transforms: transforms,
                rereadOptions: reread
            ).run()
        }
    }
}

extension TransformServerCommand {
    /// `, logging to PATH` for the launcher's start line, or nothing when the log is not a file.
    static func logDescription(_ destination: TransformServerLogDestination) -> String {
        if case .file(let path) = destination { return ", logging to \(path)" }
        return ""
    }
}

/// A start-up failure that names the exit status.
typealias StartupFailure = DaemonFailure

/// One run of the server process, from the validated options to the exit status.
///
/// Confined to the main thread, which becomes the reactor thread.
final class TransformServerRunner {
    let options: TransformServerOptions
    let daemonChild: DaemonChild?
    let environment: [String: String]
    /// Served besides the built-in transforms.
    let transforms: [Transform]
    /// Parses the command line and `--config` again (SIGHUP).
    let rereadOptions: (() -> Result<TransformServerOptions, CommandLineError>)?

    private var pidFile: PIDFile?
    private var logFile: LogFile?
    private var logToFile = false
    private var logger = Logger(system: TransformServerCommand.programName)
    private let notifier: SystemdNotify

    init(
        options: TransformServerOptions, daemonChild: DaemonChild?, environment: [String: String],
        transforms: [Transform] = [],
        rereadOptions: (() -> Result<TransformServerOptions, CommandLineError>)? = nil
    ) {
        self.rereadOptions = rereadOptions
        self.options = options
        self.daemonChild = daemonChild
        self.environment = environment
        self.transforms = transforms
        self.notifier = SystemdNotify(environment: environment)
    }

    /// Starts, serves until stopped, and returns the exit status.
    func run() -> Int32 {
        TransformServerCommand.prepareProcess()
        let reactor: EpollReactor
        let server: TransformServer
        let lifecycle: TransformServerLifecycle
        do throws(StartupFailure) {
            (reactor, server, lifecycle) = try start()
        } catch {
            return failStartup(error)
        }
        // The server's services are only referenced from the reactor's handlers: keep them alive.
        withExtendedLifetime(server) { reactor.run() }
        removePIDFile()
        logger.notice(lifecycle.deadlineExpired ? "stopped after the shutdown deadline" : "stopped")
        return ExitStatus.success.rawValue
    }

    // MARK: Start-up

    /// The proxy backend for `--upstream`, or nil when the server serves its own transforms.
    private func makeProxy(reactor: EpollReactor, handler: any LogHandler) -> ProxyBackend? {
        guard !options.upstreams.isEmpty else { return nil }
        var configuration = ProxyBackend.Configuration(upstreams: options.upstreams)
        configuration.upstreamTransforms = options.upstreamTransforms
        configuration.cacheBytes = options.cacheBytes
        configuration.cacheTTL = options.cacheTTL
        let proxy = ProxyBackend(configuration: configuration, reactor: reactor, logger: Logger(system: "proxy", handler: handler))
        let upstreams = options.upstreams.map(\.description).joined(separator: ", ")
        logger.notice("proxy mode: upstream \(upstreams); cache \(options.cacheBytes) bytes")
        return proxy
    }

    /// `MultiService[proxy, server]`: the proxy starts before the ports and stops after them.
    static func proxyRoot(_ proxy: ProxyBackend, server: MultiService) -> MultiService {
        let root = MultiService(name: "transform-proxy")
        // Distinct names: adding cannot fail.
        try? root.addService(proxy)
        try? root.addService(server)
        return root
    }

    private func start() throws(StartupFailure) -> (EpollReactor, TransformServer, TransformServerLifecycle) {
        // 1. umask and working directory (all paths were made absolute while parsing). The run
        // directory and the pidfile's and log's directories are created when missing, as
        // systemd's RuntimeDirectory= does.
        if let mask = options.umask ?? (options.daemon ? 0o077 : nil) { Daemonizer.setUmask(mask) }
        var directories: [String] = []
        if let dir = options.rundir { directories.append(dir) }
        if let dir = options.pidfile.flatMap(Daemonizer.directory(of:)) { directories.append(dir) }
        if case .file(let path) = options.logDestination, let dir = Daemonizer.directory(of: path) {
            directories.append(dir)
        }
        for dir in directories {
            do throws(SystemError) {
                try Daemonizer.makeDirectories(dir)
            } catch {
                throw StartupFailure(.cannotCreate, "cannot create the directory \(dir): \(error)")
            }
        }
        if let dir = options.rundir {
            do throws(SystemError) {
                try Daemonizer.changeDirectory(dir)
            } catch {
                throw StartupFailure(.configuration, "cannot change to the run directory: \(error)")
            }
        }

        // 2. Users and groups are resolved before anything is bound (67 for unknown names).
        let credentials = try resolveCredentials()

        // 3. The pidfile, locked for the life of the process.
        if let path = options.pidfile {
            do throws(PIDFileError) {
                pidFile = try PIDFile(path: path)
            } catch {
                if case .alreadyRunning(let pid, let path) = error {
                    let who = pid.map { "already running (pid \($0))" } ?? "already running"
                    throw StartupFailure(.configuration, "another transform-server is \(who): pidfile \(path) is locked")
                }
                throw StartupFailure(error.exitStatus, error.description)
            }
        }

        // 4. The log.
        let handler = try openLog()
        logger = Logger(system: TransformServerCommand.programName, handler: handler)
        logger.notice("\(TransformServerCommand.version) starting (pid \(getpid()))")

        // 5. The reactor; signals are read from its signalfd (they were blocked in main).
        let reactor: EpollReactor
        do {
            reactor = try EpollReactor(logger: Logger(system: "reactor", handler: handler))
        } catch {
            throw StartupFailure(.osError, "cannot create the reactor: \(error)")
        }

        // 6. Sockets from systemd, if any.
        let inherited = try inheritedSockets()
        let loopCount = options.reactors ?? max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if loopCount > 1 {
            if !options.upstreams.isEmpty {
                throw StartupFailure(.configuration, "--reactors \(loopCount) cannot be used with --upstream (one loop only)")
            }
        }
        let reusePort = loopCount > 1

        // 7. The server: one backend behind both ports, the local TransformService (with any
        //    transforms an embedder added) or, with --upstream, the caching proxy.
        let backend: any TransformBackend
        let proxy = makeProxy(reactor: reactor, handler: handler)
        if let proxy {
            if !transforms.isEmpty {
                logger.notice("proxy mode: the \(transforms.count) added transform(s) are not served; the upstream's are")
            }
            backend = proxy
        } else {
            backend = try makeTransformService()
        }
        let asyncLimit = options.maxConcurrentAsync ?? TransformServerCommand.defaultMaxConcurrentAsync
        let shared = SharedLoopLimits(
            loops: loopCount, maxConnections: options.limits.maxConnections, asyncLimit: asyncLimit)
        let state = ServerState(
            backend: backend, clock: reactor, threadPool: reactor, limits: shared.loopLimits(options.limits),
            logger: logger,
            maxConcurrentAsync: shared.asyncShare(of: asyncLimit, loop: 0))
        shared.attach(state)
        let server = TransformServer(
            state: state,
            bindNetstring: binder(
                "netstring", port: options.netstringPort, inherited: inherited.netstring, reactor, reusePort: reusePort,
                first: true),
            bindLine: binder(
                "line", port: options.linePort, inherited: inherited.line, reactor, reusePort: reusePort, first: true),
            bindHTTP: options.httpPort.map {
                binder("http", port: $0, inherited: inherited.http, reactor, reusePort: reusePort, first: true)
            })
        state.health.extraFamilies = { ProcessInspector.figures().families }
        // The proxy starts first (its first list fetch) and stops last, after the ports drained.
        var root = proxy.map { Self.proxyRoot($0, server: server.root) } ?? server.root
        // --reactors N: the other loops stop (drain) alongside this one's server.
        let board = LoopBoard(loops: loopCount)
        let extraLoops = ExtraLoopsService(loops: [], board: board, home: reactor.threadingHandle)
        if loopCount > 1 {
            state.combineReports = { board.combined(own: $0, loop: 0) }
            state.health.combineFamilies = { board.combinedFamilies(own: $0, loop: 0) }
            let group = MultiService(name: "transform-server-loops")
            // Distinct names: adding cannot fail.
            try? group.addService(extraLoops)
            try? group.addService(root)
            root = group
        }

        let lifecycle = TransformServerLifecycle(
            root: root, clock: reactor, shutdownTimeout: options.shutdownTimeout, logger: logger,
            logOutput: logFile, statsReport: { state.report() },
            openConnections: { shared.openConnections ?? state.connectionCount },
            notifyStopping: { [notifier, logger] in
                do throws(SystemError) { try notifier.stopping() } catch {
                    logger.warning("cannot notify systemd: \(error)")
                }
            },
            // requestStop() also wakes epoll_wait: a stop asked from a timer callback (the drain
            // finishing when a slow reply is sent) must not wait for the next I/O event.
            stopReactor: { [handle = reactor.threadingHandle] in handle.requestStop() },
            forceExit: { [weak self] status in
                self?.removePIDFile()
                _exit(status)
            }, drainDelay: options.drainDelay,
            beginDrain: {
                state.health.beginDrain()
                for loop in extraLoops.loops { loop.threading.callFromThread { loop.state.health.beginDrain() } }
            },
            reload: { [rereadOptions, logger] in
                // The new limit reaches every loop: its share, applied on the loop's own thread.
                guard let rereadOptions,
                    let limit = Self.reloadedAsyncLimit(current: shared.asyncLimit, from: rereadOptions(), logger: logger)
                else { return }
                shared.asyncLimit = limit
                state.asyncGate?.limit = shared.asyncShare(of: limit, loop: 0)
                for loop in extraLoops.loops {
                    let share = shared.asyncShare(of: limit, loop: loop.index)
                    loop.threading.callFromThread { loop.state.asyncGate?.limit = share }
                }
            })
        do {
            try reactor.handleSignals(TransformServerCommand.handledSignals) { signal in
                // Every loop turns unready now, before the stop's first log line.
                if signal == SIGTERM || signal == SIGINT { shared.drain?.set() }
                lifecycle.handle(signal)
            }
        } catch {
            throw StartupFailure(.osError, "cannot handle signals: \(error)")
        }

        // 8. Bind (privileged), 9. drop privileges, 10. start.
        do {
            try root.privilegedStartService()
        } catch let failure as StartupFailure {
            throw failure
        } catch {
            throw StartupFailure(.osError, "cannot start: \(error)")
        }
        if loopCount > 1 {
            extraLoops.loops = try makeExtraLoops(
                count: loopCount - 1, board: board, shared: shared, inherited: inherited, handler: handler,
                ports: (server.netstringServer.port, server.lineServer.port, server.httpServer?.port))
        }
        if let credentials { try drop(to: credentials) }
        root.startService()
        if loopCount > 1 {
            for loop in extraLoops.loops {
                loop.server.root.startService()
                loop.run(board: board)
            }
            board.publishEvery(LoopBoard.interval, loop: 0, clock: reactor, state: state)
            let passed = inherited.netstring != nil || inherited.line != nil || inherited.http != nil
            logger.notice(
                "serving with \(loopCount) event loops (\(passed ? "sharing the sockets passed by systemd" : "SO_REUSEPORT"))")
        }

        var addresses = [("netstring", server.netstringServer.port), ("line", server.lineServer.port)]
        if let http = server.httpServer { addresses.append(("http", http.port)) }
        for (name, port) in addresses {
            logger.notice("listening for \(name) requests on \(port.map { "\($0.address)" } ?? "?")")
        }
        let status = addresses.map { "\($0.0)=\($0.1.map { "\($0.address)" } ?? "?")" }.joined(separator: " ")
        do throws(SystemError) {
            try notifier.ready(status: "serving \(status)")
        } catch {
            logger.warning("cannot notify systemd: \(error)")
        }
        daemonChild?.reportReady()
        return (reactor, server, lifecycle)
    }

    /// The local transforms: the built-in ones and any the embedder added (78 for a bad name).
    private func makeTransformService() throws(StartupFailure) -> TransformService {
        let service = TransformService()
        for t in transforms {
            do throws(TransformRegistrationError) {
                try service.register(t)
            } catch {
                throw StartupFailure(.configuration, "cannot add the transform '\(t.name)': \(error)")
            }
        }
        return service
    }

    /// Builds and binds loops 1..<count+1 of `--reactors N` on the ports loop 0 bound (so port 0
    /// resolves once), each with its own reactor, transform registry (the same transforms,
    /// built again: cheap, and nothing is shared on the request path), state and thread pool.
    private func makeExtraLoops(
        count: Int, board: LoopBoard, shared: SharedLoopLimits, inherited: InheritedSockets, handler: any LogHandler,
        ports: (netstring: (any ListeningPort)?, line: (any ListeningPort)?, http: (any ListeningPort)?)
    ) throws(StartupFailure) -> [ServingLoop] {
        var loops: [ServingLoop] = []
        for index in 1...count {
            let reactor: EpollReactor
            do {
                reactor = try EpollReactor(logger: Logger(system: "reactor-\(index)", handler: handler))
            } catch {
                throw StartupFailure(.osError, "cannot create reactor \(index): \(error)")
            }
            let state = ServerState(
                backend: try makeTransformService(), clock: reactor, threadPool: reactor,
                limits: shared.loopLimits(options.limits),
                logger: logger, maxConcurrentAsync: shared.asyncShare(of: shared.asyncLimit, loop: index))
            shared.attach(state)
            state.combineReports = { board.combined(own: $0, loop: index) }
            state.health.combineFamilies = { board.combinedFamilies(own: $0, loop: index) }
            state.health.extraFamilies = { ProcessInspector.figures().families }
            func bind(_ name: String, _ port: (any ListeningPort)?, _ passed: Int32?) throws(StartupFailure)
                -> TransformServer.Binder
            {
                // A socket from systemd: this loop watches its own duplicate of it.
                let own = try passed.map { (fd) throws(StartupFailure) in
                    let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
                    guard copy >= 0 else {
                        throw Self.listenFailure(
                            name, place: "inherited socket \(fd)", error: SystemError("dup", errno: errno))
                    }
                    return copy
                }
                return binder(
                    name, port: port?.address.port ?? 0, inherited: own, reactor, reusePort: true, first: false)
            }
            let server = TransformServer(
                state: state, bindNetstring: try bind("netstring", ports.netstring, inherited.netstring),
                bindLine: try bind("line", ports.line, inherited.line),
                bindHTTP: options.httpPort == nil ? nil : try bind("http", ports.http, inherited.http))
            do {
                try server.root.privilegedStartService()
            } catch let failure as StartupFailure {
                throw failure
            } catch {
                throw StartupFailure(.osError, "cannot start loop \(index): \(error)")
            }
            loops.append(ServingLoop(index: index, reactor: reactor, state: state, server: server))
        }
        return loops
    }

    private func resolveCredentials() throws(StartupFailure) -> Credentials? {
        let credentials: Credentials?
        do throws(PrivilegeError) {
            credentials = try Privileges.resolve(user: options.user, group: options.group)
        } catch {
            throw StartupFailure(error.exitStatus, error.description)
        }
        guard let credentials else { return nil }
        if geteuid() != 0 {
            // Without root the only possible "switch" is to who we already are.
            if credentials.uid.map({ $0 == getuid() }) ?? true, credentials.gid == getgid() { return nil }
            throw StartupFailure(
                .noPermission,
                "cannot switch to \(describe(credentials)): only root can change user or group (are you root?)")
        }
        return credentials
    }

    private func drop(to credentials: Credentials) throws(StartupFailure) {
        do throws(PrivilegeError) {
            try Privileges.drop(to: credentials)
        } catch {
            throw StartupFailure(error.exitStatus, error.description)
        }
        logger.info("switched to \(describe(credentials))")
    }

    private func describe(_ c: Credentials) -> String {
        var parts: [String] = []
        if let uid = c.uid { parts.append("user \(c.userName ?? options.user ?? "?") (uid \(uid))") }
        parts.append("gid \(c.gid)")
        return parts.joined(separator: ", ")
    }

    private func openLog() throws(StartupFailure) -> DaemonLogHandler {
        let output: any LogOutput
        let format: LogFormat
        switch options.logDestination {
        case .standardError:
            output = FileDescriptorOutput(fd: 2)
            format = options.logFormat ?? LogFormat.detect(environment: environment, standardError: FileIdentity(fd: 2))
        case .standardOutput:
            output = FileDescriptorOutput(fd: 1)
            format = options.logFormat ?? .text
        case .file(let path):
            format = options.logFormat ?? .text
            // A failed rotation on size is written into the file as an error line like the others.
            let formatter = DaemonLogHandler(format: format, output: FileDescriptorOutput(fd: -1))
            do throws(DaemonFailure) {
                let file = try LogFile(
                    path: path, rotateLength: options.logMaxSize, maxRotatedFiles: options.logMaxFiles,
                    failureLine: { formatter.formatLine(LogRecord(level: .error, system: "log", message: $0)) })
                logFile = file
                output = file
            } catch {
                throw StartupFailure(error.exitStatus, "\(error.message)")
            }
            logToFile = true
        }
        return DaemonLogHandler(format: format, minimumLevel: options.logLevel, output: output)
    }

    struct InheritedSockets {
        var netstring: Int32?
        var line: Int32?
        var http: Int32?
    }

    /// Sockets passed by systemd: by name (`netstring`, `line`, `http`), else by position.
    private func inheritedSockets() throws(StartupFailure) -> InheritedSockets {
        let fds: ListenFDs
        do throws(SystemError) {
            fds = try ListenFDs.adopt(environment: environment)
        } catch {
            throw StartupFailure(.osError, "cannot use the sockets passed by systemd: \(error)")
        }
        if let problem = fds.problem { logger.warning(problem) }
        guard !fds.isEmpty else { return InheritedSockets() }
        var result = InheritedSockets()
        if let names = fds.names, names.contains("netstring") || names.contains("line") || names.contains("http") {
            result.netstring = fds.descriptor(named: "netstring")
            result.line = fds.descriptor(named: "line")
            result.http = options.httpPort == nil ? nil : fds.descriptor(named: "http")
        } else {
            result.netstring = fds.descriptors.first
            result.line = fds.descriptors.count > 1 ? fds.descriptors[1] : nil
            result.http = options.httpPort != nil && fds.descriptors.count > 2 ? fds.descriptors[2] : nil
        }
        let used = [result.netstring, result.line, result.http].compactMap { $0 }
        let unused = fds.descriptors.filter { !used.contains($0) }
        if !unused.isEmpty { logger.warning("ignoring inherited socket(s) \(unused) with unknown names") }
        logger.info("socket activation: \(fds.descriptors.count) socket(s) passed by systemd")
        return result
    }

    /// Opens one port: adopts the inherited socket if there is one, else listens. The first
    /// loop's bind is exclusive (another process on the port is refused, `SO_REUSEPORT` or
    /// not); the other loops' binds join it.
    private func binder(
        _ name: String, port: Int, inherited: Int32?, _ reactor: EpollReactor, reusePort: Bool, first: Bool
    ) -> TransformServer.Binder {
        let interface = options.interface
        let address = SocketAddress(host: interface, port: port).description
        return { factory in
            do {
                // With several loops, each watches the passed socket: one of them is woken per connection.
                if let fd = inherited {
                    return try reactor.adoptListeningSocket(fd: fd, factory: factory, exclusiveWakeups: reusePort)
                }
                return try reactor.listenTCP(
                    port: port, factory: factory, interface: interface, backlog: 1024, reusePort: reusePort,
                    bindExclusively: first)
            } catch {
                let place = inherited.map { "inherited socket \($0)" } ?? address
                throw Self.listenFailure(name, place: place, error: error)
            }
        }
    }

    /// Maps a bind failure to its exit status: 77 for permissions, 78 for an address this host
    /// does not have, 71 for everything else (address in use...).
    static func listenFailure(_ name: String, place: String, error: any Error) -> StartupFailure {
        let status: ExitStatus
        var hint = ""
        switch (error as? SystemError)?.errno {
        case EACCES?, EPERM?:
            status = .noPermission
            hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        case EADDRNOTAVAIL?:
            status = .configuration
            hint = " (is --interface an address of this host?)"
        case EADDRINUSE?:
            status = .osError
            hint = " (is another server running?)"
        default:
            status = .osError
        }
        return StartupFailure(status, "cannot listen for \(name) requests on \(place): \(error)\(hint)")
    }

    // MARK: Failure and exit

    private func failStartup(_ failure: StartupFailure) -> Int32 {
        if logToFile { logger.error("cannot start: \(failure.message)") }
        writeToStandardError("\(TransformServerCommand.programName): \(failure.message)\n")
        daemonChild?.reportFailure(failure.exitStatus, message: failure.message)
        removePIDFile()
        return failure.exitStatus.rawValue
    }

    private func removePIDFile() {
        guard let pidFile else { return }
        self.pidFile = nil
        do throws(PIDFileError) {
            try pidFile.remove()
        } catch {
            logger.warning("\(error)")
        }
    }
}

extension TransformServerRunner {
    /// SIGHUP: the `--max-concurrent-async` the re-read command line and config file ask for
    /// (the only option changed at run time), logged, or nil to keep `current`: unchanged, or
    /// the configuration is unreadable or invalid (logged as an error).
    static func reloadedAsyncLimit(
        current: Int, from reread: Result<TransformServerOptions, CommandLineError>, logger: Logger
    ) -> Int? {
        switch reread {
        case .success(let options):
            let limit = options.maxConcurrentAsync ?? TransformServerCommand.defaultMaxConcurrentAsync
            guard limit != current else { return nil }
            logger.info("received SIGHUP; max-concurrent-async changed from \(current) to \(limit)")
            return limit
        case .failure(let error):
            logger.error("received SIGHUP but could not re-read the configuration (keeping max-concurrent-async \(current)): \(error)")
            return nil
        }
    }
}

/// What the event loops of `--reactors N` share so the process-wide limits hold for the
/// process, not for each loop: one connection budget per port (`--max-connections`), the
/// drain flag (`/readyz`), and the split of `--max-concurrent-async` and of the pending-bytes
/// budget into per-loop shares (each loop has its own gate, budget and thread pool). With one
/// loop it shares nothing.
final class SharedLoopLimits {
    let loops: Int
    /// The process's `--max-concurrent-async` (changed by SIGHUP, on the main loop's thread).
    var asyncLimit: Int
    let budgets: [ConnectionBudget]?
    let drain: DrainFlag?

    init(loops: Int, maxConnections: Int, asyncLimit: Int) {
        self.loops = loops
        self.asyncLimit = asyncLimit
        budgets = loops > 1 ? ServerPort.allCases.map { _ in ConnectionBudget(limit: maxConnections) } : nil
        drain = loops > 1 ? DrainFlag(stopPending: { SignalMask.isPending([SIGTERM, SIGINT]) }) : nil
    }

    /// Loop `loop`'s share of the async limit `limit`: `limit / loops`, the remainder to the
    /// first loops, at least 1 (0 stays unbounded).
    func asyncShare(of limit: Int, loop: Int) -> Int {
        guard limit > 0 else { return 0 }
        return max(1, limit / loops + (loop < limit % loops ? 1 : 0))
    }

    /// One loop's limits: `limits` with the budget of pending bytes for all connections
    /// divided evenly between the loops.
    func loopLimits(_ limits: ServerLimits) -> ServerLimits {
        var own = limits
        own.maxPendingBytesTotal = max(1, limits.maxPendingBytesTotal / loops)
        return own
    }

    /// Connections open now in every loop together (nil with one loop: ask the loop's state).
    var openConnections: Int? { budgets?.reduce(0) { $0 + $1.openConnections } }

    /// Makes `state` (one loop's) use the shared budgets and drain flag.
    func attach(_ state: ServerState) {
        state.connectionBudgets = budgets
        state.health.sharedDrain = drain
    }
}
