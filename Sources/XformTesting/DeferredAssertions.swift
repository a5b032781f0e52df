import Testing
import XformCore

/// Box for reading a result out of a callback while an assertion runs.
final class Capture<Value> {
    var outcome: Result<Value, any Error>?
    var listening = true
}

/// Returns the value `d` has fired with, or records an issue (at the caller) and returns nil if
/// it has no result yet, is paused, or failed: trial's `successResultOf`.
///
/// A failure found here is marked handled, so it is not reported again as unhandled.
public func successResult<Value>(
    of d: Deferred<Value>, sourceLocation: SourceLocation = #_sourceLocation
) -> Value? {
    switch peek(d) {
    case nil:
        Issue.record("Deferred has no result yet (expected a success)", sourceLocation: sourceLocation)
        return nil
    case .failure(let e)?:
        consume(d)
        Issue.record("Deferred failed with \(type(of: e)): \(e) (expected a success)", sourceLocation: sourceLocation)
        return nil
    case .success(let v)?:
        return v
    }
}

/// Returns the failure `d` has fired with if it is an `E`, or records an issue (at the caller)
/// and returns nil: trial's `failureResultOf`. The failure is marked handled either way.
public func failureResult<Value, E: Error>(
    of d: Deferred<Value>, as type: E.Type, sourceLocation: SourceLocation = #_sourceLocation
) -> E? {
    switch peek(d) {
    case nil:
        Issue.record("Deferred has no result yet (expected a \(E.self) failure)", sourceLocation: sourceLocation)
        return nil
    case .success(let v)?:
        Issue.record("Deferred succeeded with \(v) (expected a \(E.self) failure)", sourceLocation: sourceLocation)
        return nil
    case .failure(let e)?:
        consume(d)
        guard let typed = e as? E else {
            Issue.record(
                "Deferred failed with \(Swift.type(of: e)): \(e) (expected a \(E.self) failure)",
                sourceLocation: sourceLocation)
            return nil
        }
        return typed
    }
}

/// Returns the failure `d` has fired with, of any type, or records an issue and returns nil.
/// The failure is marked handled.
public func failureResult<Value>(
    of d: Deferred<Value>, sourceLocation: SourceLocation = #_sourceLocation
) -> (any Error)? {
    failureResult(of: d, as: (any Error).self, sourceLocation: sourceLocation)
}

/// Records an issue (at the caller) if `d` has a result available now: trial's `assertNoResult`.
/// A Deferred that has fired but is paused counts as having no result. A failure found here is
/// marked handled.
public func expectNoResult<Value>(
    _ d: Deferred<Value>, sourceLocation: SourceLocation = #_sourceLocation
) {
    switch peek(d) {
    case nil:
        return
    case .success(let v)?:
        Issue.record("Deferred has a result: \(v) (expected none)", sourceLocation: sourceLocation)
    case .failure(let e)?:
        consume(d)
        Issue.record("Deferred has a failure: \(type(of: e)): \(e) (expected no result)", sourceLocation: sourceLocation)
    }
}

/// Reads the current result, if the chain would deliver one now, without changing it.
func peek<Value>(_ d: Deferred<Value>) -> Result<Value, any Error>? {
    guard d.called, !d.paused else { return nil }
    let box = Capture<Value>()
    d.addObserver { [box] outcome in
        if box.listening { box.outcome = outcome }
    }
    box.listening = false
    return box.outcome
}

/// Marks a failure result as handled (the chain goes on with it, but it is no longer reported).
func consume<Value>(_ d: Deferred<Value>) {
    _ = d.mapResult { _ in () }
}
