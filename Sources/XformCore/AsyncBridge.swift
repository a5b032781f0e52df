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

/// The state of one async body started by ``deferredFromAsync(on:file:line:_:)``: the Deferred it
/// awaits now, so cancelling the body's Deferred can cancel it.
///
/// `@unchecked Sendable`: it is a task-local value (which must be Sendable), but it is read and
/// written only by the body and its Deferred's canceller, both on the reactor thread.
@usableFromInline
final class AsyncBody: @unchecked Sendable {
    /// The body whose task is running (a task-local: child tasks of the body inherit it).
    @usableFromInline static let current = TaskLocal<AsyncBody?>(wrappedValue: nil)
    @usableFromInline let executor: ReactorExecutor
    @usableFromInline var waitingOn: (any _Cancellable)?
    @usableFromInline init(executor: ReactorExecutor) { self.executor = executor }
}

/// Carries a value produced on the reactor thread to a continuation that resumes on the same
/// thread (the body's task runs on the reactor executor). `@unchecked Sendable` for that reason.
@usableFromInline
struct ReactorLocal<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(value: T) { self.value = value }
}

/// Runs an `async` body on the reactor thread and returns a Deferred of its result: Twisted's
/// `inlineCallbacks` (Introduction Part 17, seed 002).
///
/// Must be called on the reactor thread. The body runs at once, inside this call, up to its first
/// suspension, and resumes only on the reactor thread (its task prefers the reactor's
/// ``ReactorExecutor``): bodies started in the same reactor turn run in the order they were
/// started, and a body awaiting a Deferred (``Deferred/value``) adds callbacks to it directly and
/// resumes inside that Deferred's `callback`, with no thread hop. A body that throws before its
/// first suspension returns an already-failed Deferred.
///
/// Cancelling the returned Deferred cancels the Deferred the body is awaiting (Twisted >= 15), so
/// the body sees ``CancelledError`` at that `await`, and cancels the body's task (for `Task.sleep`
/// and other Swift cancellation points; a `CancellationError` the body throws becomes
/// ``CancelledError``). If the body then finishes at once (it resumes inside the
/// cancel when nothing else runs), the returned Deferred fires with the body's outcome, e.g. a
/// value if it caught the error; otherwise it fails with ``CancelledError`` and the body's later
/// result is dropped.
///
/// - Returns: a Deferred firing with the body's value or failing with what it threw.
@inlinable  // specialised in the caller: unspecialised, generic metadata lookups cost 40% of a body
public func deferredFromAsync<Value>(
    on loop: any ReactorThreading, file: StaticString = #fileID, line: UInt = #line,
    _ body: @escaping () async throws -> Value
) -> Deferred<Value> {
    precondition(loop.isReactorThread, "deferredFromAsync must be called on the reactor thread")
    let state = AsyncBody(executor: loop.executor)
    var task: Task<Void, Never>?
    let d = Deferred<Value>(
        canceller: { _ in
            task?.cancel()
            state.waitingOn?._cancel()
        }, file: file, line: line)
    // nonisolated(unsafe): the body, the Deferred and whatever the body captured stay on the
    // reactor thread: the task runs only on the reactor executor, entered from this thread.
    nonisolated(unsafe) let body = body
    nonisolated(unsafe) let result = d
    state.executor.startingTask = true
    defer { state.executor.startingTask = false }
    task = Task(executorPreference: state.executor) {
        let outcome: Result<Value, any Error>
        do {
            outcome = .success(try await AsyncBody.current.withValue(state) { try await body() })
        } catch is CancellationError {
            outcome = .failure(CancelledError())  // Swift's cancellation, in Twisted's terms
        } catch {
            outcome = .failure(error)
        }
        state.waitingOn = nil
        try? result.fire(outcome)
    }
    return d
}

extension Deferred {
    /// Waits for this Deferred from a body started by ``deferredFromAsync(on:file:line:_:)``:
    /// the `yield d` of `inlineCallbacks`. Adds a callback directly; the body resumes on the
    /// reactor thread inside the Deferred's `callback` (or after the reactor job running it).
    /// A failure is handed to the body (it no longer counts as unhandled here).
    ///
    /// Precondition: called inside such a body (elsewhere use
    /// ``ReactorThreading/deferredValue(_:)``).
    ///
    /// - Returns: the Deferred's value.
    /// - Throws: its failure (``CancelledError`` when the body's Deferred was cancelled meanwhile).
    @inlinable
    public var value: Value {
        get async throws {
            guard let state = AsyncBody.current.get(), state.executor.threading.isReactorThread else {
                preconditionFailure(
                    "Deferred.value awaited outside a deferredFromAsync body; use ReactorThreading.deferredValue")
            }
            let box = try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<ReactorLocal<Value>, any Error>) in
                state.waitingOn = self
                observe(consume: true) { outcome in
                    state.waitingOn = nil
                    switch outcome {
                    case .success(let v): continuation.resume(returning: ReactorLocal(value: v))
                    case .failure(let e): continuation.resume(throwing: e)
                    }
                }
            }
            return box.value
        }
    }
}
