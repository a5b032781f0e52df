/// Runs blocking or CPU-heavy work off the reactor thread (Twisted's `deferToThread`).
public protocol ThreadPoolRunner: AnyObject {
    /// Runs `work` on a pool thread.
    ///
    /// - Returns: a Deferred fired on the reactor thread with `work`'s value or thrown error.
    func deferToThread<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) -> Deferred<Value>
}
