import Synchronization

/// A Deferred held by a Sendable box so that a `@Sendable` cancellation handler can reach it.
///
/// `@unchecked Sendable` because the Deferred inside is only ever touched on the reactor thread:
/// it is stored and read inside closures passed to ``ReactorThreading/callFromThread(_:)``.
final class ReactorConfined<Value>: @unchecked Sendable {
    var deferred: Deferred<Value>?
    var cancelRequested = false
}

extension ReactorThreading {
    /// Awaits a Deferred from async code: `make` runs on the reactor thread, and its Deferred's
    /// result is returned here. Cancelling the awaiting Task cancels the Deferred.
    ///
    /// This is how async code (CLI tools, tests, embedding apps) uses Deferred-based APIs while
    /// every Deferred stays on the reactor thread.
    ///
    /// - Returns: the Deferred's value.
    /// - Throws: the Deferred's failure (``CancelledError`` when the Task was cancelled).
    public func deferredValue<Value: Sendable>(
        _ make: @escaping @Sendable () -> Deferred<Value>
    ) async throws -> Value {
        let box = ReactorConfined<Value>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
                self.callFromThread {
                    let d = make()
                    box.deferred = d
                    d.addObserver { outcome in
                        box.deferred = nil
                        continuation.resume(with: outcome.mapError { $0 })
                    }
                    // The failure now belongs to the awaiting Task.
                    d.observe(consume: true) { _ in }
                    if box.cancelRequested { d.cancel() }
                }
            }
        } onCancel: {
            self.callFromThread {
                box.cancelRequested = true
                box.deferred?.cancel()
            }
        }
    }
}

/// Runs an `async` body and returns a Deferred of its result: the `inlineCallbacks` analog.
///
/// Must be called on the reactor thread. The body runs as a Task; its result is delivered back
/// on the reactor thread through `loop`. Cancelling the Deferred cancels the Task (the Deferred
/// fails with ``CancelledError`` at once; the Task's late result is swallowed).
public func deferredFromAsync<Value: Sendable>(
    on loop: any ReactorThreading, file: StaticString = #fileID, line: UInt = #line,
    _ body: @escaping @Sendable () async throws -> Value
) -> Deferred<Value> {
    let box = ReactorConfined<Value>()
    let task = Task {
        let outcome: Result<Value, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        loop.callFromThread {
            guard let d = box.deferred else { return }
            box.deferred = nil
            try? d.fire(outcome)
        }
    }
    let d = Deferred<Value>(canceller: { _ in task.cancel() }, file: file, line: line)
    box.deferred = d
    return d
}
