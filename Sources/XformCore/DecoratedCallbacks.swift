/// Lifts a plain function so it takes Deferreds as arguments and returns a Deferred: the
/// `@callback` decorator of Terry Jones's "Simpler Twisted deferred code via decorated callbacks"
/// (2012, seed 001), typed with parameter packs.
///
/// The lifted function waits for all its arguments, as a `DeferredList` would, then calls `f`
/// with their values; its Deferred fires with `f`'s result, or fails with what `f` threw. When an
/// argument fails, `f` is not called and the result fails with that argument's failure (the
/// first to fail; later failures of other arguments are consumed). Pass a plain value as
/// `succeed(value)`. So `reformat(cleanup(errcheck(getPage()), succeed(a)), succeed(b))` reads
/// as the synchronous code it stands for, with no callbacks written out.
///
/// Cancelling the returned Deferred cancels the arguments that have not fired.
///
/// - Returns: the lifted function.
public func liftCallback<each Argument, Result>(
    _ f: @escaping (repeat each Argument) throws -> Result
) -> (repeat Deferred<each Argument>) -> Deferred<Result> {
    { (arguments: repeat Deferred<each Argument>) -> Deferred<Result> in
        let gathered = GatheredArguments()
        var cancellers: [() -> Void] = []
        for argument in repeat each arguments {
            cancellers.append { [weak argument] in if let argument, !argument.called { argument.cancel() } }
        }
        let result = Deferred<Result>(canceller: { _ in for c in cancellers { c() } })
        var total = 0
        for _ in repeat each arguments { total += 1 }
        gathered.values = Array(repeating: nil, count: total)
        gathered.remaining = total
        let finish: () -> Void = {
            guard !result.called else { return }
            var index = 0
            func next<T>(_: T.Type) -> T {
                defer { index += 1 }
                return gathered.values[index] as! T
            }
            try? result.fire(Swift.Result { try f(repeat next((each Argument).self)) })
        }
        if total == 0 {
            finish()
            return result
        }
        var index = 0
        for argument in repeat each arguments {
            let slot = index
            index += 1
            argument.observe(consume: true) { outcome in
                switch outcome {
                case .success(let v):
                    gathered.values[slot] = v
                    gathered.remaining -= 1
                    if gathered.remaining == 0 { finish() }
                case .failure(let e):
                    if !result.called { try? result.errback(e) }
                }
            }
        }
        return result
    }
}

/// Lifts an errback so it takes a Deferred and returns a Deferred: the `@errback` decorator of
/// "Simpler Twisted deferred code via decorated callbacks" (seed 001). `f` is called only when
/// the argument fails; it recovers with a value or rethrows. A value passes by untouched.
///
/// - Returns: the lifted function (each call adds the errback to the Deferred it is given and
///   returns that Deferred).
public func liftErrback<Value>(
    _ f: @escaping (any Error) throws -> Value
) -> (Deferred<Value>) -> Deferred<Value> {
    { d in d.addErrback(f) }
}

/// The values gathered so far by a lifted function (its observers share it).
final class GatheredArguments {
    var values: [Any?] = []
    var remaining = 0
}
