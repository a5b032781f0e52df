import Synchronization
import XformCore

/// Captures unhandled Deferred failures reported while a body runs, per task.
///
/// ``DeferredDiagnostics`` has one process-wide handler, and Swift Testing runs tests in
/// parallel. `UnhandledErrors` installs (once) a handler that sends each report to the recorder
/// of the task that reports it, or to the previous handler when that task captures nothing. A
/// Deferred reports from its `deinit`, which runs synchronously in the code that drops the last
/// reference, so the report reaches the capture of the test that dropped it.
///
/// Code that calls ``DeferredDiagnostics/setHandler(_:)`` after the first capture replaces this
/// handler and ends capturing for everyone.
public enum UnhandledErrors {
    final class Recorder: Sendable {
        let errors = Mutex<[UnhandledError]>([])
    }

    @TaskLocal static var recorder: Recorder?

    static let previous = Mutex<DeferredDiagnostics.Handler?>(nil)

    static let installed: Bool = {
        let old = DeferredDiagnostics.setHandler { error in
            if let r = UnhandledErrors.recorder {
                r.errors.withLock { $0.append(error) }
            } else if let p = UnhandledErrors.previous.withLock({ $0 }) {
                p(error)
            }
        }
        previous.withLock { $0 = old }
        return true
    }()

    /// Installs the routing handler if it is not installed yet. Idempotent and thread-safe.
    public static func install() { _ = installed }

    /// Runs `body` and returns its result with the unhandled failures reported during it.
    public static func capture<R>(_ body: () throws -> R) rethrows -> (R, [UnhandledError]) {
        install()
        let r = Recorder()
        let value = try $recorder.withValue(r) { try body() }
        return (value, r.errors.withLock { $0 })
    }

    /// Runs `body` and returns the unhandled failures reported during it.
    public static func capture(_ body: () throws -> Void) rethrows -> [UnhandledError] {
        try capture(body).1
    }

    /// Runs an async `body` and returns its result with the unhandled failures reported during
    /// it (in this task and in child tasks it starts).
    public static func capture<R>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R
    ) async rethrows -> (R, [UnhandledError]) {
        install()
        let r = Recorder()
        let value = try await $recorder.withValue(r) { try await body() }
        return (value, r.errors.withLock { $0 })
    }
}
