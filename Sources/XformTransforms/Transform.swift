import XformCore

/// A same-length byte map for all-ASCII input: reads `input`, writes `input.count` bytes to
/// `output` (which must be at least as long). It must not allocate.
public typealias ASCIIFastPath = @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void

/// One named transform: what ``TransformService/register(_:)`` takes.
public struct Transform {
    /// How a transform computes its text.
    public enum Body {
        /// A pure function. It may run on a pool thread, so it must be `@Sendable` and touch no
        /// shared mutable state. A thrown ``TransformError`` is passed on as it is; any other
        /// error becomes ``TransformError/failed(_:)``.
        case synchronous(@Sendable (String) throws -> String)
        /// An asynchronous transform, run on the reactor thread: returns a Deferred that fires
        /// with the text. It is never offloaded to the thread pool.
        case asynchronous((String, TransformContext) -> Deferred<String>)
    }

    /// The name clients use; must match ``TransformName``'s grammar.
    public let name: String
    /// One line for people (`help`/`list`).
    public let summary: String
    /// The transform itself.
    public let body: Body
    /// The byte loop giving the same bytes as `body` on all-ASCII input, if the transform has one.
    public let asciiFastPath: ASCIIFastPath?

    /// Makes a transform description.
    public init(name: String, summary: String, body: Body, asciiFastPath: ASCIIFastPath? = nil) {
        self.name = name
        self.summary = summary
        self.body = body
        self.asciiFastPath = asciiFastPath
    }
}

/// What a transform call may use: the reactor's clock, a thread pool, and the size limits.
///
/// A server builds one and passes it to every call; nothing in it is per-request.
public struct TransformContext {
    /// The default ``offloadThreshold``: 64 KiB.
    public static let defaultOffloadThreshold = 64 * 1024
    /// The default ``maximumInputBytes``: 16 MiB.
    public static let defaultMaximumInputBytes = 16 * 1024 * 1024

    /// The clock for asynchronous transforms (`slowcummingsify`).
    public var clock: any ReactorTime
    /// Where synchronous transforms of inputs longer than ``offloadThreshold`` run; nil runs them
    /// inline on the calling thread.
    public var threadPool: (any ThreadPoolRunner)?
    /// Inputs longer than this many bytes go to ``threadPool``.
    public var offloadThreshold: Int
    /// Inputs longer than this many bytes fail with ``TransformError/tooLarge``.
    public var maximumInputBytes: Int

    /// Makes a context.
    public init(
        clock: any ReactorTime, threadPool: (any ThreadPoolRunner)? = nil,
        offloadThreshold: Int = TransformContext.defaultOffloadThreshold,
        maximumInputBytes: Int = TransformContext.defaultMaximumInputBytes
    ) {
        self.clock = clock
        self.threadPool = threadPool
        self.offloadThreshold = offloadThreshold
        self.maximumInputBytes = maximumInputBytes
    }
}

/// What ``TransformHandle/apply(_:context:)`` produced.
public enum TransformOutcome {
    /// The transformed text as UTF-8, computed inline.
    case done([UInt8])
    /// The request failed at once.
    case failed(TransformError)
    /// The text comes later (thread pool or an asynchronous transform). The Deferred fires on the
    /// reactor thread with UTF-8 bytes, or fails with a ``TransformError`` (or a
    /// `CancelledError` if cancelled). Cancelling it cancels timers; pool work already running
    /// finishes and its result is dropped.
    case pending(Deferred<[UInt8]>)
}

/// A registered transform, found by ``TransformService/lookup(name:)``.
///
/// Handles are made once, at registration; looking one up allocates nothing.
public final class TransformHandle {
    /// The transform's description.
    public let transform: Transform
    let nameBytes: [UInt8]
    /// False once the transform was unregistered: a handle a caller kept (to skip lookups)
    /// must then stop working, or the guarded dispatch would leak.
    public var isRegistered: Bool { registered }
    // Unchecked: read on every request by servers that keep the handle (a checked access costs
    // about 76 instructions, measured); a Bool, and no access spans a call.
    @exclusivity(unchecked) var registered = true

    init(_ transform: Transform) {
        self.transform = transform
        self.nameBytes = Array(transform.name.utf8)
    }

    /// True when `name` is this transform's name, byte for byte. With ``isRegistered``, lets a
    /// server that keeps the last handle it used skip the registry on repeated requests.
    @inline(__always)
    public func matches(_ name: UnsafeRawBufferPointer) -> Bool {
        guard name.count == nameBytes.count, let base = name.baseAddress else { return false }
        return nameBytes.withUnsafeBytes { bytesEqual($0.baseAddress!, base, name.count) }
    }

    /// The registered name.
    public var name: String { transform.name }
    /// The one-line description.
    public var summary: String { transform.summary }
    /// The same-length byte loop for all-ASCII input, if any. A server may call it straight into
    /// its write buffer when ``ASCIIBytes/isASCII(_:)`` holds and the input is not too large.
    public var asciiFastPath: ASCIIFastPath? { transform.asciiFastPath }
    /// True for transforms that always answer through a Deferred.
    public var isAsynchronous: Bool {
        if case .asynchronous = transform.body { return true }
        return false
    }

    /// Transforms UTF-8 bytes: the server's entry point.
    ///
    /// The input is read before this returns (copied if the work is deferred), so the caller may
    /// reuse its buffer at once. All-ASCII input to a transform with a fast path never becomes a
    /// `String`.
    ///
    /// - Returns: ``TransformOutcome/done(_:)`` when computed inline;
    ///   ``TransformOutcome/failed(_:)`` with ``TransformError/tooLarge`` beyond
    ///   ``TransformContext/maximumInputBytes``, ``TransformError/invalidUTF8`` for malformed
    ///   input (checked inline below the offload threshold, on the pool above it), or the
    ///   transform's own failure; ``TransformOutcome/pending(_:)`` for asynchronous transforms
    ///   and for inputs above ``TransformContext/offloadThreshold`` when a pool is given.
    public func apply(_ input: UnsafeRawBufferPointer, context: TransformContext) -> TransformOutcome {
        if input.count > context.maximumInputBytes { return .failed(.tooLarge) }
        switch transform.body {
        case .synchronous(let body):
            let fast = transform.asciiFastPath
            if input.count > context.offloadThreshold, let pool = context.threadPool {
                let copy = [UInt8](input)
                return .pending(pool.deferToThread { try Self.run(copy, body, fast).get() })
            }
            switch Self.run(input, body, fast) {
            case .success(let bytes): return .done(bytes)
            case .failure(let error): return .failed(error)
            }
        case .asynchronous(let body):
            guard let text = String(validating: input, as: UTF8.self) else { return .failed(.invalidUTF8) }
            return .pending(
                body(text, context).map { Array($0.utf8) }.mapFailures())
        }
    }

    static func run(
        _ input: [UInt8], _ body: @Sendable (String) throws -> String, _ fast: ASCIIFastPath?
    ) -> Result<[UInt8], TransformError> {
        input.withUnsafeBytes { run($0, body, fast) }
    }

    static func run(
        _ input: UnsafeRawBufferPointer, _ body: (String) throws -> String, _ fast: ASCIIFastPath?
    ) -> Result<[UInt8], TransformError> {
        if let fast, ASCIIBytes.isASCII(input) {
            return .success(
                [UInt8](unsafeUninitializedCapacity: input.count) { buffer, count in
                    fast(input, UnsafeMutableRawBufferPointer(buffer))
                    count = input.count
                })
        }
        guard let text = String(validating: input, as: UTF8.self) else { return .failure(.invalidUTF8) }
        return runText(text, body).map { Array($0.utf8) }
    }

    static func runText(_ text: String, _ body: (String) throws -> String) -> Result<String, TransformError> {
        do {
            return .success(try body(text))
        } catch let error as TransformError {
            return .failure(error)
        } catch {
            return .failure(.failed(String(describing: error)))
        }
    }
}

extension Deferred {
    /// Turns failures other than ``TransformError``, `CancelledError` and `TimeoutError` into
    /// ``TransformError/failed(_:)``.
    func mapFailures() -> Deferred<Value> {
        addErrback { (error: any Error) throws -> Value in
            if error is TransformError || error is CancelledError || error is TimeoutError { throw error }
            throw TransformError.failed(String(describing: error))
        }
    }
}
