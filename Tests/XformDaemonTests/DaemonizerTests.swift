import Glibc
import Testing

@testable import XformDaemon
import XformReactor

@Suite("Daemon status pipe")
struct DaemonStatusTests {
    @Test("Ready is the single byte 0; failures are '<code> <message>' on one line")
    func encoding() {
        #expect(DaemonStatus.ready.encoded == Array("0".utf8))
        #expect(DaemonStatus.failed(code: 75, message: "already running (pid 9)").encoded == Array("75 already running (pid 9)".utf8))
        #expect(DaemonStatus.failed(code: 73, message: "a\nb").encoded == Array("73 a b".utf8))
        #expect(DaemonStatus.failed(code: 0, message: "x").encoded == Array("1 x".utf8))
    }

    @Test("Status messages decode back; nothing written decodes as nil; garbage is a software error")
    func decoding() {
        #expect(DaemonStatus.decode(Array("0".utf8)) == .ready)
        #expect(DaemonStatus.decode(Array("0\n".utf8)) == .ready)
        #expect(DaemonStatus.decode(Array("75 already running (pid 9)".utf8)) == .failed(code: 75, message: "already running (pid 9)"))
        #expect(DaemonStatus.decode(Array("67".utf8)) == .failed(code: 67, message: ""))
        #expect(DaemonStatus.decode([]) == nil)
        #expect(DaemonStatus.decode(Array("hello".utf8)) == .failed(code: 70, message: "daemon sent an invalid startup status: 'hello'"))
        #expect(DaemonStatus.decode(Array("300 x".utf8))?.isReady == false)
    }

    @Test("The launcher exits 0 on ready, with the child's code on failure, and reports silent deaths")
    func outcomes() {
        #expect(LaunchOutcome(status: .ready, termination: nil) == LaunchOutcome(exitCode: 0, message: nil))
        #expect(
            LaunchOutcome(status: .failed(code: 73, message: "cannot open log file"), termination: .exited(73))
                == LaunchOutcome(exitCode: 73, message: "cannot open log file"))
        #expect(
            LaunchOutcome(status: nil, termination: .exited(3))
                == LaunchOutcome(exitCode: 3, message: "daemon exited with status 3 before it was ready"))
        #expect(LaunchOutcome(status: nil, termination: .exited(0)).exitCode == 70)
        #expect(
            LaunchOutcome(status: nil, termination: .signaled(9))
                == LaunchOutcome(exitCode: 137, message: "daemon was killed by signal 9 before it was ready"))
        #expect(LaunchOutcome(status: nil, termination: nil).exitCode == 70)
    }

    @Test("waitpid status words decode to exits and signals")
    func waitStatus() {
        #expect(ChildTermination(waitStatus: 0) == .exited(0))
        #expect(ChildTermination(waitStatus: 75 << 8) == .exited(75))
        #expect(ChildTermination(waitStatus: 9) == .signaled(9))
        #expect(ChildTermination(waitStatus: 15 | 0x80) == .signaled(15))
    }

    @Test("The hidden status-fd argument is found and removed; other command lines are untouched")
    func extract() throws {
        let args = ["transform-server", "--daemon", "--daemon-child-status-fd=9", "--line-port", "1"]
        #expect(DaemonChild.statusFD(in: args) == 9)
        let plain = DaemonChild.extract(from: ["transform-server", "--daemon"])
        #expect(plain.child == nil)
        #expect(plain.arguments == ["transform-server", "--daemon"])
        #expect(DaemonChild.statusFD(in: ["x", "--daemon-child-status-fd=two"]) == nil)
        #expect(DaemonChild.statusFD(in: ["x", "--daemon-child-status-fd=1"]) == nil)
    }

    @Test("A daemon child reports once through its pipe, then the pipe is closed")
    func childReports() {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let (child, rest) = DaemonChild.extract(from: ["srv", "\(Daemonizer.statusFDArgument)\(fds[1])", "--daemon"])
        #expect(rest == ["srv", "--daemon"])
        #expect(child?.statusFD == fds[1])
        #expect(fcntl(fds[1], F_GETFD) & FD_CLOEXEC != 0)
        child?.reportFailure(.temporaryFailure, message: "already running (pid 5)")
        child?.reportReady()
        let (bytes, _) = Syscall.readToEnd(fds[0])
        #expect(DaemonStatus.decode(bytes) == .failed(code: 75, message: "already running (pid 5)"))
    }

    /// Runs `script` under bash as a stand-in daemon child (bash, since dash cannot redirect to
    /// descriptors above 9); the status descriptor is in `$XFORM_DAEMON_STATUS_FD`. Reaps the
    /// child, which the launcher leaves running on success.
    func launch(_ script: String) throws -> LaunchOutcome {
        let (outcome, pid) = try Daemonizer.spawnAndWait(
            arguments: ["/bin/bash", "-c", "fd=$XFORM_DAEMON_STATUS_FD; " + script], executable: "/bin/bash")
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        return outcome
    }

    @Test("A spawned child that writes 0 makes the launcher succeed")
    func spawnReady() throws {
        #expect(try launch("printf 0 >&$fd") == LaunchOutcome(exitCode: 0, message: nil))
    }

    @Test("A spawned child's failure code and message reach the launcher")
    func spawnFailure() throws {
        #expect(try launch("printf '78 bad config' >&$fd; exit 78") == LaunchOutcome(exitCode: 78, message: "bad config"))
    }

    @Test("A spawned child that dies silently passes its exit status on")
    func spawnSilentDeath() throws {
        #expect(try launch("exit 3") == LaunchOutcome(exitCode: 3, message: "daemon exited with status 3 before it was ready"))
    }

    @Test("The spawned child runs in a new session with stdio on /dev/null")
    func spawnDetached() throws {
        // The child reports success only if it leads its own session and stdin reads as empty.
        let script = """
            sid=$(ps -o sid= -p $$ 2>/dev/null | tr -d ' '); \
            if [ -n "$sid" ] && [ "$sid" != "$$" ]; then printf '71 not a session leader' >&$fd; exit 71; fi; \
            if [ "$(readlink /proc/self/fd/0)" != /dev/null ]; then printf '71 stdin not null' >&$fd; exit 71; fi; \
            if [ "$(readlink /proc/$$/fd/2)" != /dev/null ]; then printf '71 stderr not null' >&$fd; exit 71; fi; \
            printf 0 >&$fd
            """
        #expect(try launch(script) == LaunchOutcome(exitCode: 0, message: nil))
    }

    @Test("A missing executable fails the spawn with a system error")
    func spawnMissing() {
        #expect(throws: SystemError.self) {
            _ = try Daemonizer.spawnAndWait(arguments: ["nope"], executable: "/nonexistent/xform")
        }
    }
}

extension DaemonStatus {
    var isReady: Bool { self == .ready }
}

@Suite("Exit statuses")
struct ExitStatusTests {
    @Test("Exit statuses carry the sysexits values")
    func values() {
        let expected: [(XformDaemon.ExitStatus, Int32)] = [
            (.success, 0), (.failure, 1), (.usage, EX_USAGE), (.dataError, EX_DATAERR), (.noInput, EX_NOINPUT),
            (.noUser, EX_NOUSER), (.unavailable, EX_UNAVAILABLE), (.software, EX_SOFTWARE), (.osError, EX_OSERR),
            (.cannotCreate, EX_CANTCREAT), (.ioError, EX_IOERR), (.temporaryFailure, EX_TEMPFAIL),
            (.protocolError, EX_PROTOCOL), (.noPermission, EX_NOPERM), (.configuration, EX_CONFIG),
        ]
        for (status, code) in expected { #expect(status.rawValue == code, "\(status)") }
        #expect(XformDaemon.ExitStatus.allCases.count == expected.count)
        #expect(XformDaemon.ExitStatus.usage.rawValue == 64 && ExitStatus.configuration.rawValue == 78)
        #expect(XformDaemon.ExitStatus.cannotCreate.description == "EX_CANTCREAT")
    }

    @Test("Daemon failures carry their status and message")
    func failure() {
        let f = DaemonFailure(.osError, "epoll_create1: Too many open files")
        #expect(f.exitStatus == .osError)
        #expect(f.description == "epoll_create1: Too many open files")
    }
}

@Suite("Exiting on command-line outcomes")
struct ParseOrExitTests {
    @Test("parseOrExit exits 64 on a usage error")
    func usageError() async {
        await #expect(processExitsWith: .exitCode(64), observing: [\.standardErrorContent]) {
            _ = serverSpec.parseOrExit(["--bogus"], environment: [:])
        }
    }

    @Test("parseOrExit exits 0 on --help, printing help to stdout")
    func help() async throws {
        let result = try await #require(processExitsWith: .exitCode(0), observing: [\.standardOutputContent]) {
            _ = serverSpec.parseOrExit(["--help"], environment: ["COLUMNS": "80"])
        }
        #expect(String(decoding: result.standardOutputContent, as: UTF8.self) == serverSpec.helpText(columns: 80) + "\n")
    }

    @Test("parseOrExit prints the usage error to stderr")
    func usageErrorText() async throws {
        let result = try await #require(processExitsWith: .exitCode(64), observing: [\.standardErrorContent]) {
            _ = serverSpec.parseOrExit(["--bogus"], environment: [:])
        }
        #expect(String(decoding: result.standardErrorContent, as: UTF8.self) == serverSpec.errorText(for: .unknownOption("--bogus")))
    }

    @Test("exitWithError prints '<program>: <error>' and exits with the error's status")
    func exitWithErrorStatus() async throws {
        let result = try await #require(processExitsWith: .exitCode(75), observing: [\.standardErrorContent]) {
            exitWithError(PIDFileError.alreadyRunning(pid: 12, path: "/run/x.pid"), program: "transform-server")
        }
        #expect(
            String(decoding: result.standardErrorContent, as: UTF8.self)
                == "transform-server: already running (pid 12, pidfile /run/x.pid)\n")
    }
}
