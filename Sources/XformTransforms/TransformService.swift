import XformCore

/// The registry of named transforms that every protocol front-end shares.
///
/// This is the Swift form of the original server's `xform_` prefix guard: only transforms
/// registered here by name can be reached. There is no reflection and no name rewriting; a
/// request names a transform by its exact bytes, and any name that is not registered (or breaks
/// the grammar of ``TransformName``) reaches nothing.
///
/// It knows nothing of sockets or framing. It is confined to the reactor thread; only the pure
/// transform functions it hands to the thread pool leave that thread.
public final class TransformService: Service {
    var handles: [TransformHandle] = []

    /// Makes a registry, with the built-in transforms unless `builtins` is false.
    public init(builtins: Bool = true, name: String? = "transforms") {
        super.init(name: name)
        if builtins {
            for t in BuiltinTransforms.all {
                try! register(t)  // the built-in names are valid and distinct
            }
        }
    }

    /// Makes `transform` reachable under its name.
    ///
    /// - Throws: ``TransformRegistrationError/invalidName(_:)`` for a name outside the grammar,
    ///   ``TransformRegistrationError/duplicateName(_:)`` for a name already registered.
    public func register(_ transform: Transform) throws(TransformRegistrationError) {
        guard TransformName.isValid(transform.name) else { throw .invalidName(transform.name) }
        guard lookup(transform.name) == nil else { throw .duplicateName(transform.name) }
        handles.append(TransformHandle(transform))
        handles.sort { $0.name < $1.name }
    }

    /// Removes the transform called `name`.
    ///
    /// - Returns: true if one was registered.
    @discardableResult
    public func unregister(_ name: String) -> Bool {
        let before = handles.count
        for h in handles where h.name == name { h.isRegistered = false }
        handles.removeAll { $0.name == name }
        return handles.count != before
    }

    /// The registered names, sorted.
    public var names: [String] { handles.map(\.name) }

    /// The registered names with their one-line descriptions, sorted by name.
    public var catalog: [(name: String, summary: String)] { handles.map { ($0.name, $0.summary) } }

    /// Finds the transform whose name is exactly `name`'s bytes. Allocates nothing.
    ///
    /// - Returns: the handle, or nil when no transform has that exact name.
    public func lookup(name: UnsafeRawBufferPointer) -> TransformHandle? {
        let count = name.count
        guard count >= 1, count <= TransformName.maximumLength, let base = name.baseAddress else { return nil }
        for handle in handles where handle.nameBytes.count == count {
            let equal = handle.nameBytes.withUnsafeBytes { stored in
                memcmpEqual(stored.baseAddress!, base, count)
            }
            if equal { return handle }
        }
        return nil
    }

    /// Finds the transform whose name is exactly `name`.
    ///
    /// - Returns: the handle, or nil when no transform has that exact name.
    public func lookup(_ name: String) -> TransformHandle? {
        var name = name
        return name.withUTF8 { lookup(name: UnsafeRawBufferPointer($0)) }
    }

    /// Finds a transform, saying why not when there is none.
    ///
    /// - Returns: the handle; or ``TransformError/invalidName`` when `name` breaks the grammar,
    ///   ``TransformError/unknownTransform(_:)`` when it is well formed but not registered.
    public func resolve(name: UnsafeRawBufferPointer) -> Result<TransformHandle, TransformError> {
        if let handle = lookup(name: name) { return .success(handle) }
        guard TransformName.isValid(name) else { return .failure(.invalidName) }
        return .failure(.unknownTransform(String(decoding: name, as: UTF8.self)))
    }

    /// Finds a transform, saying why not when there is none (see ``resolve(name:)``).
    public func resolve(_ name: String) -> Result<TransformHandle, TransformError> {
        var name = name
        return name.withUTF8 { resolve(name: UnsafeRawBufferPointer($0)) }
    }

    /// Transforms `text` with the transform called `name`: the API for callers with Strings.
    ///
    /// Synchronous transforms run inline, or on the context's pool for texts longer than its
    /// offload threshold or estimated over its inline budget (see ``TransformContext``).
    ///
    /// - Returns: a Deferred of the text. It fails with ``TransformError/invalidName``,
    ///   ``TransformError/unknownTransform(_:)``, ``TransformError/tooLarge`` or the
    ///   transform's own failure.
    public func transform(_ name: String, _ text: String, context: TransformContext) -> Deferred<String> {
        let handle: TransformHandle
        switch resolve(name) {
        case .success(let h): handle = h
        case .failure(let error): return fail(error)
        }
        let size = text.utf8.count
        if size > context.maximumInputBytes { return fail(TransformError.tooLarge) }
        switch handle.transform.body {
        case .synchronous(let body):
            if let pool = context.threadPool,
                context.exceedsInlineBudget(
                    size, cost: handle.transform.cost, hasFastPath: handle.asciiFastPath != nil,
                    isASCII: { ASCIIBytes.isASCII(text) })
            {
                return pool.deferToThread { try TransformHandle.runText(text, body).get() }
            }
            switch TransformHandle.runText(text, body) {
            case .success(let out): return succeed(out)
            case .failure(let error): return fail(error)
            }
        case .asynchronous(let body):
            return body(text, context).mapFailures()
        }
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    for i in 0..<count where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
        return false
    }
    return true
}
