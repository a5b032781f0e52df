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
    // Unchecked: searched by each connection's first request (a checked access costs about 97
    // instructions, callgrind); no access spans a call.
    @exclusivity(unchecked) var handles: [TransformHandle] = []

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
        for h in handles where h.name == name { h.registered = false }
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
                bytesEqual(stored.baseAddress!, base, count)
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
    /// Runs exactly as a server request does (``TransformHandle/apply(_:context:)``): inline, or
    /// on the context's pool for texts longer than its offload threshold or estimated over its
    /// inline budget (see ``TransformContext``).
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
        var text = text
        let outcome = text.withUTF8 { handle.apply(UnsafeRawBufferPointer($0), context: context) }
        switch outcome {
        case .done(let bytes): return succeed(String(decoding: bytes, as: UTF8.self))
        case .failed(let error): return fail(error)
        case .pending(let deferred): return deferred.map { String(decoding: $0, as: UTF8.self) }
        }
    }
}

/// True when the `count` bytes at `a` and `b` are equal: eight bytes at a time, then the rest
/// (names are short: one or two words).
@inline(__always)
func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var i = 0
    while i + 8 <= count {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < count {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
