import Glibc
import Synchronization
import Testing
import XformCore
import XformDaemon
import XformTesting

@testable import XformCommands

/// Counts reopen and rotate requests; fails rotations while `failure` is set.
private final class SpyLogOutput: LogOutput {
    let counts = Mutex((reopened: 0, rotated: 0))
    let failure = Mutex<String?>(nil)
    func write(_ line: String) {}
    func reopen() -> String? {
        counts.withLock { $0.reopened += 1 }
        return nil
    }
    func rotate() -> String? {
        counts.withLock { $0.rotated += 1 }
        return failure.withLock { $0 }
    }
}

/// A service whose stop completes when the test says so (open connections draining).
private final class DrainingService: Service {
    var pending: Deferred<Void>?
    var stopCalls = 0
    override func stopService() -> Deferred<Void> {
        _ = super.stopService()
        stopCalls += 1
        let d = Deferred<Void>()
        pending = d
        return d
    }
}

/// A lifecycle on a manual clock, recording every effect.
private final class Rig {
    let clock = ManualClock()
    let log = InMemoryLogHandler(minimumLevel: .debug)
    let root = MultiService(name: "root")
    let service = DrainingService(name: "drain")
    let output = SpyLogOutput()
    var stoppingNotified = 0
    var reactorStops = 0
    var forcedExits: [Int32] = []
    var lifecycle: TransformServerLifecycle!

    init(timeout: Duration? = .seconds(15), withLogFile: Bool = true) {
        try? root.addService(service)
        root.startService()
        lifecycle = TransformServerLifecycle(
            root: root, clock: clock, shutdownTimeout: timeout, logger: log.logger(system: "transform-server"),
            logOutput: withLogFile ? output : nil, statsReport: { ["uptime_seconds 3", "bytes_in 10"] },
            openConnections: { 2 }, notifyStopping: { [unowned self] in stoppingNotified += 1 },
            stopReactor: { [unowned self] in reactorStops += 1 },
            forceExit: { [unowned self] in forcedExits.append($0) })
    }
}

@Suite("transform-server signal handling")
struct TransformServerLifecycleTests {
    @Test("SIGTERM notifies systemd, stops the services, and stops the reactor only once they have drained")
    func gracefulStop() throws {
        let rig = Rig()
        rig.lifecycle.handle(SIGTERM)
        #expect(rig.stoppingNotified == 1)
        #expect(rig.service.stopCalls == 1)
        #expect(!rig.root.running)
        #expect(rig.lifecycle.state == .stopping)
        #expect(rig.reactorStops == 0)
        rig.clock.advance(by: .seconds(10))
        #expect(rig.reactorStops == 0)
        try rig.service.pending?.callback(())
        #expect(rig.reactorStops == 1)
        #expect(rig.lifecycle.state == .stopped)
        #expect(!rig.lifecycle.deadlineExpired)
        #expect(rig.clock.pendingCalls.isEmpty)
        #expect(rig.log.contains("received SIGTERM; stopping gracefully (waiting up to 15s)", level: .notice))
        #expect(rig.forcedExits.isEmpty)
    }

    @Test("SIGINT stops gracefully like SIGTERM")
    func interrupt() throws {
        let rig = Rig()
        rig.lifecycle.handle(SIGINT)
        try rig.service.pending?.callback(())
        #expect(rig.reactorStops == 1)
        #expect(rig.log.contains("received SIGINT; stopping gracefully"))
    }

    @Test("When the drain outlasts the shutdown timeout, a warning is logged and the reactor stops anyway")
    func deadline() throws {
        let rig = Rig(timeout: .seconds(2))
        rig.lifecycle.handle(SIGTERM)
        rig.clock.advance(by: .milliseconds(1999))
        #expect(rig.reactorStops == 0)
        rig.clock.advance(by: .milliseconds(1))
        #expect(rig.reactorStops == 1)
        #expect(rig.lifecycle.deadlineExpired)
        #expect(
            rig.log.contains(
                "shutdown deadline (2s) expired with 2 connection(s) still open; closing them", level: .warning))
        // The drain finishing later (as the reactor closes the connections) changes nothing.
        try rig.service.pending?.callback(())
        #expect(rig.reactorStops == 1)
    }

    @Test("A zero shutdown timeout waits for the drain however long it takes")
    func noDeadline() throws {
        let rig = Rig(timeout: nil)
        rig.lifecycle.handle(SIGTERM)
        #expect(rig.clock.pendingCalls.isEmpty)
        #expect(rig.log.contains("waiting without a deadline"))
        try rig.service.pending?.callback(())
        #expect(rig.reactorStops == 1)
    }

    @Test("A second SIGTERM or SIGINT while stopping forces the exit with 128+signal")
    func secondSignal() {
        let rig = Rig()
        rig.lifecycle.handle(SIGTERM)
        rig.lifecycle.handle(SIGINT)
        #expect(rig.forcedExits == [128 + SIGINT])
        #expect(rig.log.contains("received SIGINT again while stopping; exiting at once", level: .warning))
        #expect(rig.service.stopCalls == 1)
    }

    @Test("A failing stop is logged as an error and still stops the reactor")
    func failingStop() throws {
        let rig = Rig()
        rig.lifecycle.handle(SIGTERM)
        struct Boom: Error {}
        try rig.service.pending?.errback(Boom())
        #expect(rig.reactorStops == 1)
        #expect(rig.log.records.contains { $0.level == .error && $0.message.hasPrefix("error while stopping") })
    }

    @Test("SIGHUP reopens the log file and SIGUSR1 rotates it; neither stops anything")
    func logSignals() {
        let rig = Rig()
        rig.lifecycle.handle(SIGHUP)
        rig.lifecycle.handle(SIGUSR1)
        rig.clock.advance(by: .seconds(2))
        rig.lifecycle.handle(SIGUSR1)
        #expect(rig.output.counts.withLock { $0.reopened } == 1)
        #expect(rig.output.counts.withLock { $0.rotated } == 2)
        #expect(rig.lifecycle.state == .running && rig.service.stopCalls == 0)
        #expect(rig.log.contains("received SIGHUP; reopened the log file", level: .info))
        #expect(rig.log.contains("log file rotated", level: .info))
    }

    @Test("A burst of SIGUSR1 costs one rotation now and one merged rotation a second later")
    func rotationBurstCoalesced() {
        let rig = Rig()
        for _ in 0..<1000 { rig.lifecycle.handle(SIGUSR1) }
        #expect(rig.output.counts.withLock { $0.rotated } == 1)
        rig.clock.advance(by: .milliseconds(999))
        #expect(rig.output.counts.withLock { $0.rotated } == 1)
        rig.clock.advance(by: .milliseconds(1))
        #expect(rig.output.counts.withLock { $0.rotated } == 2)
        #expect(rig.log.contains("log file rotated (999 more SIGUSR1 merged into this rotation)", level: .info))
        rig.clock.advance(by: .seconds(5))
        #expect(rig.output.counts.withLock { $0.rotated } == 2)
        #expect(rig.clock.pendingCalls.isEmpty)
    }

    @Test("A failed rotation is logged as an error in the log itself, never as rotated")
    func rotationFailureLogged() {
        let rig = Rig()
        rig.output.failure.withLock { $0 = "cannot rotate log file: rename /x/log: Permission denied" }
        rig.lifecycle.handle(SIGUSR1)
        #expect(rig.log.contains("could not rotate the log file", level: .error))
        #expect(rig.log.contains("Permission denied", level: .error))
        #expect(!rig.log.contains("log file rotated"))
    }

    @Test("SIGHUP and SIGUSR1 are harmless when logging to a stream")
    func logSignalsWithoutFile() {
        let rig = Rig(withLogFile: false)
        rig.lifecycle.handle(SIGHUP)
        rig.lifecycle.handle(SIGUSR1)
        #expect(rig.lifecycle.state == .running)
        #expect(rig.log.contains("not logging to a file, nothing to reopen"))
        #expect(rig.log.contains("not logging to a file, nothing to rotate"))
    }

    @Test("SIGUSR2 logs the statistics report at info, one line per counter")
    func stats() {
        let rig = Rig()
        rig.lifecycle.handle(SIGUSR2)
        let lines = rig.log.records.filter { $0.message.hasPrefix("stats: ") }
        #expect(lines.map(\.message) == ["stats: uptime_seconds 3", "stats: bytes_in 10"])
        #expect(lines.allSatisfy { $0.level == .info })
        #expect(rig.lifecycle.state == .running)
    }

    @Test("Other signals change nothing")
    func otherSignals() {
        let rig = Rig()
        for s in [SIGCHLD, SIGWINCH, SIGCONT] { rig.lifecycle.handle(s) }
        #expect(rig.lifecycle.state == .running)
        #expect(rig.service.stopCalls == 0 && rig.reactorStops == 0 && rig.forcedExits.isEmpty)
    }

    @Test("Durations in log lines read like the options that set them")
    func durationFormat() {
        #expect(TransformServerLifecycle.format(.seconds(15)) == "15s")
        #expect(TransformServerLifecycle.format(.milliseconds(250)) == "250ms")
        #expect(TransformServerLifecycle.format(.milliseconds(1500)) == "1.5s")
    }
}
