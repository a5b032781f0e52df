import XformCore

/// A same-length byte map for all-ASCII input: reads `input`, writes `input.count` bytes to
/// `output` (which must be at least as long). It must not allocate.
public typealias ASCIIFastPath = @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void

/// An ``ASCIIFastPath`` that checks its input as it goes: writes the map of `input` to `output`
/// and returns true if every input byte was ASCII; returns false otherwise (the output is then
/// unspecified). One pass instead of a check and a map (callgrind: about 60 instructions per
/// 64-byte request, and a second read of every byte of a large one).
public typealias CheckedASCIIFastPath = @Sendable (UnsafeRawBufferPointer, UnsafeMutableRawBufferPointer) -> Bool

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
    /// The same byte loop checking for ASCII as it goes (built-ins), if it has one.
    let checkedFastPath: CheckedASCIIFastPath?
    /// What the transform costs per input byte: with ``TransformContext/inlineBudget``, decides
    /// which requests run inline and which go to the thread pool.
    public let cost: TransformCost

    /// Makes a transform description. `cost` defaults to ``TransformCost/unknown``.
    public init(
        name: String, summary: String, body: Body, asciiFastPath: ASCIIFastPath? = nil,
        cost: TransformCost = .unknown
    ) {
        self.name = name
        self.summary = summary
        self.body = body
        self.asciiFastPath = asciiFastPath
        self.checkedFastPath = nil
        self.cost = cost
    }

    /// A built-in with a fused check-and-map loop (`asciiFastPath` must be its unchecked form).
    init(
        name: String, summary: String, body: Body, asciiFastPath: @escaping ASCIIFastPath,
        checkedFastPath: @escaping CheckedASCIIFastPath, cost: TransformCost
    ) {
        self.name = name
        self.summary = summary
        self.body = body
        self.asciiFastPath = asciiFastPath
        self.checkedFastPath = checkedFastPath
        self.cost = cost
    }
}

/// A transform's cost class: its estimated CPU time per input byte, on the ASCII fast path and
/// on any other input. Estimates are the worst rates `xform-bench linear` measured over the
/// pathological inputs of ``PathologicalText`` (release build, on the project's shared 2-core
/// machine under load), rounded up; every built-in transform is linear in its input, so time
/// is bytes × rate.
public struct TransformCost: Sendable, Equatable {
    /// Nanoseconds per byte when the input is all ASCII and the transform has a fast path.
    public var asciiNanosecondsPerByte: Double
    /// Nanoseconds per byte for any other input (decoding, Unicode tables, segmentation).
    public var nanosecondsPerByte: Double

    /// Makes a cost class.
    public init(asciiNanosecondsPerByte: Double, nanosecondsPerByte: Double) {
        self.asciiNanosecondsPerByte = asciiNanosecondsPerByte
        self.nanosecondsPerByte = nanosecondsPerByte
    }

    /// A byte loop (rot13): cheap on any input.
    public static let bytewise = TransformCost(asciiNanosecondsPerByte: 0.5, nanosecondsPerByte: 4)
    /// Table-driven Unicode case mapping (`upper`, `cummingsify`, `title`); the worst input is
    /// outside the BMP (regional indicators: 52 ns/B), where the tables fall back to the runtime.
    public static let caseMapping = TransformCost(asciiNanosecondsPerByte: 0.5, nanosecondsPerByte: 55)
    /// Work over Unicode scalar properties (`wordcount`: 38 ns/B at worst).
    public static let scalarProperties = TransformCost(asciiNanosecondsPerByte: 40, nanosecondsPerByte: 40)
    /// Grapheme-cluster segmentation (`reverse`: 35 ns/B at worst, on a run of capital sigmas).
    public static let graphemes = TransformCost(asciiNanosecondsPerByte: 0.5, nanosecondsPerByte: 40)
    /// Transforms registered without an estimate: assumed costlier than any built-in, so a
    /// custom transform on a big input goes to the pool rather than stall the reactor.
    public static let unknown = TransformCost(asciiNanosecondsPerByte: 60, nanosecondsPerByte: 60)
}

/// What a transform call may use: the reactor's clock, a thread pool, and the size limits.
///
/// A server builds one and passes it to every call; nothing in it is per-request.
///
/// **Which work runs inline.** A synchronous transform runs on the calling (reactor) thread only
/// if its estimated time, input bytes × the transform's ``TransformCost`` rate (the ASCII rate
/// when the input is all ASCII and the transform has a fast path), fits in ``inlineBudget``,
/// and the input is at most ``offloadThreshold`` bytes. Anything else goes to ``threadPool``
/// (when there is one), so no single request can hold the reactor much longer than the budget
/// (issue 10 §3). With the defaults (1 ms), non-ASCII text is inline up to about 18 KB for the
/// case mappings, 25 KB for `reverse` and `wordcount`, 16 KB for custom transforms; ASCII fast
/// paths up to the 64 KiB threshold.
public struct TransformContext {
    /// The default ``offloadThreshold``: 64 KiB.
    public static let defaultOffloadThreshold = 64 * 1024
    /// The default ``maximumInputBytes``: 16 MiB.
    public static let defaultMaximumInputBytes = 16 * 1024 * 1024
    /// The default ``inlineBudget``: 1 ms of estimated CPU time per request.
    public static let defaultInlineBudget: Duration = .milliseconds(1)

    /// The clock for asynchronous transforms (`slowcummingsify`).
    public var clock: any ReactorTime
    /// Where synchronous transforms of inputs longer than ``offloadThreshold`` run; nil runs them
    /// inline on the calling thread.
    public var threadPool: (any ThreadPoolRunner)?
    /// Inputs longer than this many bytes go to ``threadPool``.
    public var offloadThreshold: Int
    /// Inputs longer than this many bytes fail with ``TransformError/tooLarge``.
    public var maximumInputBytes: Int
    /// The most estimated CPU time a synchronous request may take inline (see the type's
    /// documentation); costlier requests go to ``threadPool``.
    public var inlineBudget: Duration {
        didSet { inlineBudgetNanoseconds = Self.nanoseconds(inlineBudget) }
    }
    /// ``inlineBudget`` in nanoseconds, kept so the per-request check is one multiplication.
    private(set) var inlineBudgetNanoseconds: Double

    /// Makes a context.
    public init(
        clock: any ReactorTime, threadPool: (any ThreadPoolRunner)? = nil,
        offloadThreshold: Int = TransformContext.defaultOffloadThreshold,
        maximumInputBytes: Int = TransformContext.defaultMaximumInputBytes,
        inlineBudget: Duration = TransformContext.defaultInlineBudget
    ) {
        self.clock = clock
        self.threadPool = threadPool
        self.offloadThreshold = offloadThreshold
        self.maximumInputBytes = maximumInputBytes
        self.inlineBudget = inlineBudget
        self.inlineBudgetNanoseconds = Self.nanoseconds(inlineBudget)
    }

    static func nanoseconds(_ d: Duration) -> Double {
        let (seconds, attoseconds) = d.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }

    /// True when a synchronous transform of `byteCount` bytes must leave the calling thread:
    /// over ``offloadThreshold``, or estimated over ``inlineBudget``. `isASCII` is asked only
    /// when the answer depends on it (never for small inputs).
    @inline(__always)
    func exceedsInlineBudget(_ byteCount: Int, cost: TransformCost, hasFastPath: Bool, isASCII: () -> Bool) -> Bool {
        if byteCount > offloadThreshold { return true }
        let bytes = Double(byteCount)
        if bytes * cost.nanosecondsPerByte <= inlineBudgetNanoseconds { return false }
        if hasFastPath, bytes * cost.asciiNanosecondsPerByte <= inlineBudgetNanoseconds, isASCII() { return false }
        return true
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
        if let checked = transform.checkedFastPath {
            checkedASCIIFastPath = checked
        } else if let fast = transform.asciiFastPath {
            checkedASCIIFastPath = { input, output in
                guard ASCIIBytes.isASCII(input) else { return false }
                fast(input, output)
                return true
            }
        } else {
            checkedASCIIFastPath = nil
        }
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
    /// The fast path with its ASCII check built in (``CheckedASCIIFastPath``): what a server
    /// calls straight into its write buffer, falling back to ``apply(_:context:)`` when it
    /// returns false. Nil when the transform has no fast path.
    public let checkedASCIIFastPath: CheckedASCIIFastPath?
    /// True for transforms that always answer through a Deferred.
    public var isAsynchronous: Bool {
        if case .asynchronous = transform.body { return true }
        return false
    }

    /// True when ``apply(_:context:)`` would answer `input` with ``TransformOutcome/pending(_:)``
    /// of work started off the request's call: an asynchronous transform, or a synchronous one
    /// that goes to the context's thread pool. False for inline work and for inputs over
    /// ``TransformContext/maximumInputBytes`` (refused at once). A server uses it to queue such
    /// work before starting it (`--max-concurrent-async`).
    public func defersWork(_ input: UnsafeRawBufferPointer, context: TransformContext) -> Bool {
        if input.count > context.maximumInputBytes { return false }
        switch transform.body {
        case .asynchronous: return true
        case .synchronous:
            guard context.threadPool != nil else { return false }
            return context.exceedsInlineBudget(
                input.count, cost: transform.cost, hasFastPath: transform.asciiFastPath != nil,
                isASCII: { ASCIIBytes.isASCII(input) })
        }
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
    ///   input (checked inline when the work is inline, on the pool otherwise), or the
    ///   transform's own failure; ``TransformOutcome/pending(_:)`` for asynchronous transforms
    ///   and, when a pool is given, for inputs above ``TransformContext/offloadThreshold`` or
    ///   estimated above ``TransformContext/inlineBudget``.
    public func apply(_ input: UnsafeRawBufferPointer, context: TransformContext) -> TransformOutcome {
        if input.count > context.maximumInputBytes { return .failed(.tooLarge) }
        switch transform.body {
        case .synchronous(let body):
            let fast = transform.asciiFastPath
            if let pool = context.threadPool,
                context.exceedsInlineBudget(
                    input.count, cost: transform.cost, hasFastPath: fast != nil, isASCII: { ASCIIBytes.isASCII(input) })
            {
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
