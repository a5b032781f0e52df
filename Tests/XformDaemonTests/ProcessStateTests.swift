import Glibc
import Testing

@testable import XformDaemon
import XformReactor

/// Tests that change process-wide state (environment, umask, this thread's signal mask).
/// Serialized, and each restores what it changed.
@Suite("Process-wide state", .serialized)
struct ProcessStateTests {
    @Test("blockTerminationSignals blocks TERM, INT, HUP, USR1 and USR2 in the calling thread")
    func blocksSignals() {
        let old = SignalMask.blockTerminationSignals()
        defer { SignalMask.setMask(old) }
        for s in [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2] { #expect(SignalMask.isBlocked(s), "\(s)") }
        // Other signals keep whatever state this thread had.
        var previous = old
        #expect(SignalMask.isBlocked(SIGQUIT) == (sigismember(&previous, SIGQUIT) == 1))
    }

    @Test("isPending sees a blocked signal sent to this thread until it is taken")
    func pendingSignal() {
        let old = SignalMask.blockTerminationSignals()
        defer { SignalMask.setMask(old) }
        #expect(!SignalMask.isPending([SIGUSR2]))
        pthread_kill(pthread_self(), SIGUSR2)
        #expect(SignalMask.isPending([SIGUSR2]) && SignalMask.isPending([SIGTERM, SIGUSR2]))
        #expect(!SignalMask.isPending([SIGTERM]))
        var set = SignalMask.signalSet([SIGUSR2])
        var zero = timespec()
        #expect(sigtimedwait(&set, nil, &zero) == SIGUSR2)
        #expect(!SignalMask.isPending([SIGUSR2]))
    }

    @Test("Spawn attributes restore an empty mask and default dispositions, keeping other flags")
    func spawnAttributes() throws {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        try SignalMask.restoreDefaults(in: &attr)
        var flags: Int16 = 0
        posix_spawnattr_getflags(&attr, &flags)
        #expect(Int32(flags) == POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        var mask = sigset_t()
        posix_spawnattr_getsigmask(&attr, &mask)
        #expect(sigismember(&mask, SIGTERM) == 0)
        var defaults = sigset_t()
        posix_spawnattr_getsigdefault(&attr, &defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE] { #expect(sigismember(&defaults, s) == 1, "\(s)") }
    }

    @Test("setUmask sets the mask and returns the previous one")
    func umask() {
        let old = Daemonizer.setUmask(0o027)
        #expect(Daemonizer.setUmask(old) == 0o027)
    }

    @Test("changeDirectory fails with a system error for a missing directory")
    func chdirFailure() {
        #expect(throws: SystemError("chdir /nonexistent-dir", errno: ENOENT)) { try Daemonizer.changeDirectory("/nonexistent-dir") }
    }

    @Test("adopt() unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, and ignores another pid's sockets")
    func adoptUnsets() throws {
        setenv("LISTEN_PID", "\(getpid() + 1)", 1)
        setenv("LISTEN_FDS", "1", 1)
        setenv("LISTEN_FDNAMES", "netstring", 1)
        let fds = try ListenFDs.adopt()
        #expect(fds.isEmpty)
        #expect(getenv("LISTEN_PID") == nil)
        #expect(getenv("LISTEN_FDS") == nil)
        #expect(getenv("LISTEN_FDNAMES") == nil)
    }

    @Test("ProcessEnvironment.current reflects the real environment")
    func environment() {
        setenv("XFORM_DAEMON_TEST", "a=b", 1)
        defer { unsetenv("XFORM_DAEMON_TEST") }
        #expect(ProcessEnvironment.current()["XFORM_DAEMON_TEST"] == "a=b")
        ProcessEnvironment.unset(["XFORM_DAEMON_TEST"])
        #expect(ProcessEnvironment.current()["XFORM_DAEMON_TEST"] == nil)
    }
}
