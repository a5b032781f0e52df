import Glibc
import XformCore
import XformDaemon

/// What `transform-server` does with each signal the reactor reads from its signalfd.
///
/// - TERM, INT: graceful stop. Turns the server unready (`/readyz` answers 503) and tells
///   systemd `STOPPING=1` at once; after `--drain-delay` (while the ports still serve, so load
///   balancers take the server out of rotation first), stops the root service (the ports
///   stop listening, then open connections drain: requests in flight finish, idle connections
///   close, new extended requests are answered `shutting_down`), then stops the reactor. If the
///   drain outlasts the shutdown timeout, a warning is logged and the reactor is stopped anyway
///   (its shutdown closes what is left); the exit status stays 0, since the operator chose that
///   deadline. A second TERM or INT during the stop exits at once with status 128+signal.
/// - HUP: reopens the log file (logrotate's `create` mode), then reloads what may change at run
///   time (`--max-concurrent-async`, re-read from the command line and `--config`). USR1: rotates it now, at most once
///   a second (signals in between are merged into one rotation at the end of that second); a
///   failed reopen or rotation is logged as an error, and logging continues on the old file.
/// - USR2: logs the statistics report at info, one line per counter.
/// - Anything else is ignored (logged at debug).
///
/// Confined to the reactor thread, like the services it stops. Every effect is injected, so
/// tests drive it with a manual clock.
final class TransformServerLifecycle {
    /// Where the stop stands.
    enum State: Equatable {
        /// Serving.
        case running
        /// Draining after the first TERM/INT.
        case stopping
        /// The reactor was asked to stop.
        case stopped
    }

    private(set) var state = State.running
    /// Set when the shutdown deadline expired before the drain finished.
    private(set) var deadlineExpired = false

    let root: Service
    let clock: any ReactorTime
    let shutdownTimeout: Duration?
    let logger: Logger
    let logOutput: (any LogOutput)?
    let statsReport: () -> [String]
    let openConnections: () -> Int
    let notifyStopping: () -> Void
    let stopReactor: () -> Void
    let forceExit: (Int32) -> Void
    let drainDelay: Duration
    let beginDrain: () -> Void
    let reload: () -> Void
    private var deadline: (any DelayedCall)?
    private var delayedStop: (any DelayedCall)?

    /// - Parameters:
    ///   - root: the service tree to stop.
    ///   - clock: schedules the shutdown deadline.
    ///   - shutdownTimeout: the deadline; `nil` waits for ever.
    ///   - logOutput: the log file to reopen or rotate; `nil` when logging to a stream.
    ///   - statsReport: the lines USR2 logs.
    ///   - openConnections: how many connections are still open (for the deadline warning).
    ///   - notifyStopping: tells systemd the stop began.
    ///   - stopReactor: ends `reactor.run()` (which then closes everything left).
    ///   - forceExit: ends the process at once with the given status (second signal).
    ///   - drainDelay: how long the server keeps serving, unready, before it stops listening.
    ///   - beginDrain: turns the server unready (the first thing a graceful stop does).
    ///   - reload: applies the re-read configuration (HUP, after the log file is reopened).
    init(
        root: Service, clock: any ReactorTime, shutdownTimeout: Duration?, logger: Logger,
        logOutput: (any LogOutput)?, statsReport: @escaping () -> [String], openConnections: @escaping () -> Int,
        notifyStopping: @escaping () -> Void, stopReactor: @escaping () -> Void, forceExit: @escaping (Int32) -> Void,
        drainDelay: Duration = .zero, beginDrain: @escaping () -> Void = {}, reload: @escaping () -> Void = {}
    ) {
        self.reload = reload
        self.drainDelay = drainDelay
        self.beginDrain = beginDrain
        self.root = root
        self.clock = clock
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
        self.logOutput = logOutput
        self.statsReport = statsReport
        self.openConnections = openConnections
        self.notifyStopping = notifyStopping
        self.stopReactor = stopReactor
        self.forceExit = forceExit
    }

    /// The conventional name of a signal (`SIGTERM`), or `signal N`.
    static func name(of signal: Int32) -> String {
        switch signal {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        case SIGUSR1: return "SIGUSR1"
        case SIGUSR2: return "SIGUSR2"
        default: return "signal \(signal)"
        }
    }

    /// Acts on one signal (see the type's documentation).
    func handle(_ signal: Int32) {
        switch signal {
        case SIGTERM, SIGINT:
            if state == .running {
                beginStop(signal)
            } else {
                logger.warning("received \(Self.name(of: signal)) again while stopping; exiting at once")
                forceExit(128 + signal)
            }
        case SIGHUP:
            if let logOutput {
                if let failure = logOutput.reopen() {
                    logger.error("received SIGHUP but could not reopen the log file (still writing to the old one): \(failure)")
                } else {
                    logger.info("received SIGHUP; reopened the log file")
                }
            } else {
                logger.info("received SIGHUP; not logging to a file, nothing to reopen")
            }
            reload()
        case SIGUSR1:
            if logOutput != nil {
                requestRotation()
            } else {
                logger.info("received SIGUSR1; not logging to a file, nothing to rotate")
            }
        case SIGUSR2:
            for line in statsReport() { logger.info("stats: \(line)") }
        default:
            logger.debug("ignoring \(Self.name(of: signal))")
        }
    }

    /// The shortest time between two rotations: SIGUSR1s closer together are merged.
    static let rotationInterval: Duration = .seconds(1)
    private var lastRotation: Duration?
    private var pendingRotation: (any DelayedCall)?
    private var mergedRotations = 0

    /// SIGUSR1: rotates now, or, within ``rotationInterval`` of the last rotation, once when the
    /// interval ends, merging every request made meanwhile. So a burst of signals costs one
    /// rotation a second, never a stall (issue 10 §4: 1,000 SIGUSR1 in a second made 276
    /// files and held a request for 965 ms).
    private func requestRotation() {
        if pendingRotation != nil {
            mergedRotations += 1
            return
        }
        if let last = lastRotation, clock.now - last < Self.rotationInterval {
            mergedRotations += 1
            pendingRotation = clock.callLater(last + Self.rotationInterval - clock.now) { [weak self] in
                self?.pendingRotation = nil
                self?.rotateNow()
            }
            return
        }
        rotateNow()
    }

    private func rotateNow() {
        guard let logOutput else { return }
        lastRotation = clock.now
        let merged = mergedRotations
        mergedRotations = 0
        let also = merged > 0 ? " (\(merged) more SIGUSR1 merged into this rotation)" : ""
        if let failure = logOutput.rotate() {
            // Issue 11: say so in the log itself, never "rotated"; logging goes on as before.
            logger.error("received SIGUSR1 but could not rotate the log file (still writing to the current file)\(also): \(failure)")
        } else {
            logger.info("received SIGUSR1; log file rotated\(also)")
        }
    }

    private func beginStop(_ signal: Int32) {
        state = .stopping
        let deadlineText = shutdownTimeout.map { "up to \(Self.format($0))" } ?? "without a deadline"
        logger.notice("received \(Self.name(of: signal)); stopping gracefully (waiting \(deadlineText))")
        beginDrain()
        notifyStopping()
        if drainDelay > .zero {
            logger.info("unready; serving for \(Self.format(drainDelay)) more before closing the ports")
            delayedStop = clock.callLater(drainDelay) { [weak self] in
                self?.delayedStop = nil
                self?.stopServices()
            }
        } else {
            stopServices()
        }
    }

    /// Stops listening and drains, within the shutdown deadline.
    private func stopServices() {
        guard state == .stopping else { return }
        if let shutdownTimeout {
            deadline = clock.callLater(shutdownTimeout) { [weak self] in self?.expire() }
        }
        let root = self.root
        // addBoth consumes a failure, so nothing is reported as unhandled later.
        maybeDeferred { root.stopService() }.addBoth { [weak self] outcome in
            guard let self else { return }
            if case .failure(let e) = outcome { self.logger.error("error while stopping: \(e)") }
            self.finish()
        }
    }

    private func expire() {
        guard state == .stopping else { return }
        deadlineExpired = true
        logger.warning(
            "shutdown deadline (\(Self.format(shutdownTimeout ?? .zero))) expired with \(openConnections()) "
                + "connection(s) still open; closing them")
        state = .stopped
        stopReactor()
    }

    private func finish() {
        deadline?.cancel()
        deadline = nil
        guard state == .stopping else { return }
        state = .stopped
        logger.info("all connections closed")
        stopReactor()
    }

    /// `15s`, `1.5s`, `250ms`.
    static func format(_ d: Duration) -> String {
        let (seconds, attoseconds) = d.components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        if ms < 1000 { return "\(ms)ms" }
        return "\(Double(ms) / 1000)s"
    }
}
