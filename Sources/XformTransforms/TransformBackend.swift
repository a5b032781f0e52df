/// What the server's protocols call to run requests: the local ``TransformService`` is one
/// backend; the proxy (`--upstream`, module XformProxy) is another. Confined to the reactor thread.
public protocol TransformBackend: AnyObject {
    /// The transforms served now, sorted by name, with one-line summaries
    /// (line `help`/`list`, netstring `?list`, HTTP `GET /transforms`).
    var catalog: [(name: String, summary: String)] { get }

    /// False while ``catalog`` is not known yet (a proxy before its upstream's first list): a
    /// listing then fails with ``TransformError/upstreamUnavailable(_:)`` instead of answering
    /// an empty list. Default true.
    var catalogIsKnown: Bool { get }

    /// Runs one request: the transform named by `name`'s exact bytes on UTF-8 `text`.
    /// Both buffers are valid only during the call; copy what you keep.
    /// - Returns: `.done(bytes)` computed inline; `.failed(TransformError)` (invalidName,
    ///   unknownTransform, tooLarge, invalidUTF8, failed, upstreamUnavailable, ...);
    ///   `.pending(Deferred<[UInt8]>)` that fires on the reactor thread. The caller cancels the
    ///   pending Deferred when nobody waits for the reply any more (client gone, connection
    ///   closed): that is how work is withdrawn (Part 19).
    func start(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, context: TransformContext) -> TransformOutcome

    /// Extra figures for `stats`, SIGUSR2 and `/metrics` (the proxy's cache and upstream
    /// counters): snake_case name, value. Default: empty.
    var statistics: [(name: String, value: Double)] { get }
}

extension TransformBackend {
    /// No extra figures.
    public var statistics: [(name: String, value: Double)] { [] }

    /// Always known.
    public var catalogIsKnown: Bool { true }
}

extension TransformService: TransformBackend {
    /// Runs one request on a registered transform (see ``TransformHandle/apply(_:context:)``).
    ///
    /// - Returns: ``TransformOutcome/failed(_:)`` with ``TransformError/invalidName`` or
    ///   ``TransformError/unknownTransform(_:)`` when `name` reaches nothing; otherwise what the
    ///   transform produced.
    public func start(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, context: TransformContext)
        -> TransformOutcome
    {
        switch resolve(name: name) {
        case .success(let handle): return handle.apply(text, context: context)
        case .failure(let error): return .failed(error)
        }
    }
}
