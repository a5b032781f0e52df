import CXformShims
import Glibc
import XformReactor

/// The process signal mask, set up the way the reactor's signalfd needs it.
///
/// Signals must be blocked in every thread before any thread exists, or the kernel may deliver
/// one to a thread that cannot handle it (the reference notes measured Dispatch sources losing
/// or dying on early signals; blocking first and reading a signalfd delivered every time).
/// Children inherit the mask, so spawned processes get it restored with
/// ``restoreDefaults(in:)``.
public enum SignalMask {
    /// The signals the daemon handles itself: TERM and INT (graceful stop), HUP (reopen logs),
    /// USR1 (rotate logs), USR2 (reserved).
    public static let handledSignals: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2]

    /// A `sigset_t` holding `signals`.
    public static func signalSet(_ signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        return set
    }

    /// Blocks ``handledSignals`` in the calling thread (`pthread_sigmask`). Call it first thing in
    /// `main`, before Dispatch, Foundation, a Task or any thread exists; threads created later
    /// inherit the mask.
    ///
    /// - Returns: the previous mask, for tests that must restore it.
    @discardableResult
    public static func blockTerminationSignals() -> sigset_t {
        var set = signalSet(handledSignals)
        var old = sigset_t()
        pthread_sigmask(SIG_BLOCK, &set, &old)
        return old
    }

    /// True when one of `signals` is pending (blocked and not read yet) for the process or the
    /// calling thread (`sigpending`).
    public static func isPending(_ signals: [Int32]) -> Bool {
        var set = sigset_t()
        guard sigpending(&set) == 0 else { return false }
        return signals.contains { sigismember(&set, $0) == 1 }
    }

    /// Sets the calling thread's mask to `mask` (undoes ``blockTerminationSignals()`` in tests).
    public static func setMask(_ mask: sigset_t) {
        var mask = mask
        pthread_sigmask(SIG_SETMASK, &mask, nil)
    }

    /// True when `signal` is blocked in the calling thread.
    public static func isBlocked(_ signal: Int32) -> Bool {
        var current = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &current)
        return sigismember(&current, signal) == 1
    }

    /// Ignores SIGPIPE process-wide, so a write to a closed socket fails with EPIPE instead of
    /// killing the process.
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// Makes a spawned child start with an empty signal mask and default dispositions for
    /// ``handledSignals`` and SIGPIPE (`posix_spawnattr_setsigmask`/`setsigdefault`), keeping any
    /// spawn flags already set on `attributes`.
    ///
    /// - Throws: ``SystemError`` if the attribute calls fail.
    public static func restoreDefaults(in attributes: inout posix_spawnattr_t) throws(SystemError) {
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = signalSet(handledSignals + [SIGPIPE])
        var flags: Int16 = 0
        var rc = posix_spawnattr_getflags(&attributes, &flags)
        if rc == 0 { rc = posix_spawnattr_setsigmask(&attributes, &empty) }
        if rc == 0 { rc = posix_spawnattr_setsigdefault(&attributes, &defaults) }
        if rc == 0 {
            rc = posix_spawnattr_setflags(&attributes, flags | Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        }
        if rc != 0 { throw SystemError("posix_spawnattr", errno: rc) }
    }
}
