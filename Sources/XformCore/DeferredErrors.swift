
/// The failure of a Deferred that was cancelled (Twisted's `CancelledError`).
public struct CancelledError: Error, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "the operation was cancelled" }
}

/// The failure of a Deferred whose ``Deferred/addTimeout(_:clock:)`` ran out.
public struct TimeoutError: Error, Equatable, CustomStringConvertible {
    /// The timeout that elapsed.
    public let timeout: Duration
    public init(timeout: Duration) { self.timeout = timeout }
    public var description: String { "timed out after \(timeout)" }
}

/// Thrown when a Deferred is fired a second time.
public struct AlreadyCalledError: Error, CustomStringConvertible {
    /// Where the Deferred was created.
    public let file: String
    public let line: UInt
    public var description: String { "Deferred created at \(file):\(line) was already called" }
}

/// The failure of a ``DeferredList`` with `fireOnOneErrback`, or of ``gatherResults(_:consumeErrors:)``:
/// the first member failure and the member's index.
public struct FirstError: Error, CustomStringConvertible {
    /// The failure of the member Deferred.
    public let underlying: any Error
    /// The position of the failing member in the input list.
    public let index: Int
    public init(underlying: any Error, index: Int) {
        self.underlying = underlying
        self.index = index
    }
    public var description: String { "FirstError[#\(index), \(underlying)]" }
}

/// An unhandled failure: a Deferred was deinitialised while its result was a failure.
public struct UnhandledError: Sendable, CustomStringConvertible {
    /// A description of the failure (the error itself need not be Sendable).
    public let message: String
    /// The failure's type name.
    public let errorType: String
    /// Where the Deferred was created.
    public let file: String
    public let line: UInt

    init(error: any Error, file: String, line: UInt) {
        self.message = String(describing: error)
        self.errorType = String(reflecting: type(of: error))
        self.file = file
        self.line = line
    }

    public var description: String {
        "Unhandled error in Deferred created at \(file):\(line): \(errorType): \(message)"
    }
}

/// Where unhandled Deferred failures go.
///
/// ARC deinitialises a Deferred at a predictable moment, so unhandled failures are reported
/// right when the last reference goes, not whenever a garbage collector runs.
///
/// Core makes no syscalls, so it holds only the handler, not an output: until someone installs
/// one, reports are dropped. The reactor installs a handler that writes each report as a line to
/// standard error when the first `EpollReactor` is made (unless one is installed already); tests
/// install a recording handler (`UnhandledErrors` in XformTesting).
public enum DeferredDiagnostics {
    /// Receives unhandled failures.
    public typealias Handler = @Sendable (UnhandledError) -> Void

    static let handler = PthreadMutex<Handler?>(nil)

    /// Replaces the process-wide handler and returns the previous one, `nil` if none was
    /// installed (tests install a recording handler; the daemon may route reports to its log).
    @discardableResult
    public static func setHandler(_ new: @escaping Handler) -> Handler? {
        handler.withLock { current in
            let old = current
            current = new
            return old
        }
    }

    /// Installs `fallback` only if no handler is installed yet; returns whether it did.
    ///
    /// For the layer that owns an output (the reactor's standard error), so it never replaces a
    /// handler a program or a test installed on purpose.
    @discardableResult
    public static func installIfNone(_ fallback: @escaping Handler) -> Bool {
        handler.withLock { current in
            if current != nil { return false }
            current = fallback
            return true
        }
    }

    static func report(_ error: UnhandledError) {
        let h = handler.withLock { $0 }
        h?(error)
    }
}
