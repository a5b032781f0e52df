import XformCore
import XformTesting
@testable import XformTransforms

/// A thread pool double: queues work and runs it, on the test's thread, only when told.
final class QueuedPool: ThreadPoolRunner {
    var queued: [() -> Void] = []

    func deferToThread<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) -> Deferred<Value> {
        let d = Deferred<Value>()
        queued.append { try? d.fire(Result { try work() }) }
        return d
    }

    /// Runs every queued job in order.
    func runAll() {
        let jobs = queued
        queued.removeAll()
        for job in jobs { job() }
    }
}

/// Calls `apply` on `bytes` through a raw buffer.
func apply(_ handle: TransformHandle, _ bytes: [UInt8], _ context: TransformContext) -> TransformOutcome {
    bytes.withUnsafeBytes { handle.apply($0, context: context) }
}

/// The bytes of a `.done` outcome, or nil.
func doneBytes(_ outcome: TransformOutcome) -> [UInt8]? {
    if case .done(let bytes) = outcome { return bytes }
    return nil
}

/// The error of a `.failed` outcome, or nil.
func failedError(_ outcome: TransformOutcome) -> TransformError? {
    if case .failed(let error) = outcome { return error }
    return nil
}

/// The Deferred of a `.pending` outcome, or nil.
func pendingDeferred(_ outcome: TransformOutcome) -> Deferred<[UInt8]>? {
    if case .pending(let d) = outcome { return d }
    return nil
}

/// Runs a transform through the String API and returns its immediate result.
func transformNow(_ service: TransformService, _ name: String, _ text: String) -> Result<String, any Error>? {
    let d = service.transform(name, text, context: TransformContext(clock: ManualClock()))
    var result: Result<String, any Error>?
    d.mapResult { result = $0 }.addObserver { _ in }
    return result
}
