// The Deferred examples of Dave Peticolas's Twisted Introduction (github.com/jdavisp3/twisted-intro),
// replayed in Swift. Each test records what the Python script prints, in order, and compares it with
// the script's output (obtained by running the script under Twisted 26). A Twisted Failure's
// multi-line repr is abbreviated to the exception's class name (e.g. `CancelledError`) or message.
import Testing
import XformCore
import XformTesting

/// A Python-style `Exception(message)`.
struct PyException: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// The short form of a failure used in the expected outputs below.
func failureText(_ error: any Error) -> String {
    if error is CancelledError { return "CancelledError" }
    if let p = error as? PyException { return p.message }
    return String(describing: error)
}

/// Python's repr of a DeferredList result list.
func pyResults(_ results: [Result<String, any Error>]) -> String {
    let items = results.map { r -> String in
        switch r {
        case .success(let v): return "(True, '\(v)')"
        case .failure(let e): return "(False, <twisted.python.failure.Failure builtins.Exception: \(failureText(e))>)"
        }
    }
    return "[" + items.joined(separator: ", ") + "]"
}

@Suite("Twisted Introduction: twisted-deferred examples")
struct TwistedDeferredExamples {
    @Test("defer-1: a callback fires with a normal result")
    func defer_1() throws {
        var out: [String] = []
        let d = Deferred<String>()
        d.addCallbacks({ res in out += ["Your poem is served:", res]; return res }, { e in out.append("No poetry for you."); return "" })
        try d.callback("This poem is short.")
        out.append("Finished")
        #expect(out == ["Your poem is served:", "This poem is short.", "Finished"])
    }

    @Test("defer-2: an errback fires with a failure")
    func defer_2() throws {
        var out: [String] = []
        let d = Deferred<String>()
        d.addCallbacks({ res in out += ["Your poem is served:", res]; return res }, { _ in out.append("No poetry for you."); return "" })
        try d.errback(PyException("I have failed."))
        out.append("Finished")
        #expect(out == ["No poetry for you.", "Finished"])
    }

    @Test("defer-3: the errback receives the error it was fired with")
    func defer_3() throws {
        var out: [String] = []
        let d = Deferred<String>()
        d.addCallbacks({ res in out += ["Your poem is served:", res]; return res }, { e in
            out.append(failureText(e))
            out.append("No poetry for you.")
            return ""
        })
        try d.errback(PyException("I have failed."))
        #expect(out == ["I have failed.", "No poetry for you."])
    }

    /// defer-4..7: the first firing runs the chain; the second raises AlreadyCalledError, which
    /// ends the script before "Finished".
    func fireTwice(_ first: Result<String, any Error>, _ second: Result<String, any Error>) -> [String] {
        var out: [String] = []
        let d = Deferred<String>()
        d.addCallbacks({ s in out.append(s); return s }, { e in out.append(failureText(e)); return "" })
        do {
            try d.fire(first)
            try d.fire(second)
            out.append("Finished")
        } catch {
            out.append("AlreadyCalledError")
        }
        return out
    }

    @Test("defer-4: calling callback twice raises AlreadyCalledError")
    func defer_4() {
        #expect(fireTwice(.success("First result"), .success("Second result")) == ["First result", "AlreadyCalledError"])
    }

    @Test("defer-5: callback then errback raises AlreadyCalledError")
    func defer_5() {
        #expect(fireTwice(.success("First result"), .failure(PyException("First error"))) == ["First result", "AlreadyCalledError"])
    }

    @Test("defer-6: calling errback twice raises AlreadyCalledError")
    func defer_6() {
        #expect(fireTwice(.failure(PyException("First error")), .failure(PyException("Second error"))) == ["First error", "AlreadyCalledError"])
    }

    @Test("defer-7: errback then callback raises AlreadyCalledError")
    func defer_7() {
        #expect(fireTwice(.failure(PyException("First error")), .success("First result")) == ["First error", "AlreadyCalledError"])
    }

    @Test("defer-8: a Deferred fired by the reactor once it runs")
    func defer_8() {
        var out: [String] = []
        let clock = ManualClock()
        let d = Deferred<String>()
        d.addCallbacks({ p in out.append(p); out.append("reactor.stop()"); return p }, { _ in out.append("poem download failed"); return "" })
        clock.callLater(.zero) { try? d.callback("Another short poem.") }  // callWhenRunning
        #expect(out.isEmpty)
        clock.advance(by: .zero)
        #expect(out == ["Another short poem.", "reactor.stop()"])
    }

    @Test("defer-9: addBoth runs after the callback on either track")
    func defer_9() {
        var out: [String] = []
        let clock = ManualClock()
        let d = Deferred<String>()
        d.addCallbacks({ p in out.append(p); return p }, { _ in out.append("poem download failed"); return "" })
        d.addBoth { _ in out.append("reactor.stop()"); return "" }
        clock.callLater(.zero) { try? d.callback("Another short poem.") }
        clock.advance(by: .zero)
        #expect(out == ["Another short poem.", "reactor.stop()"])
    }

    @Test("defer-10: a callback returning a Deferred pauses the outer chain until the inner one fires")
    func defer_10() throws {
        var out: [String] = []
        func callback(_ n: Int) -> (Int) -> Int { { res in out.append("callback_\(n) got \(res)"); return n } }

        let d = Deferred<Int>()
        d.addCallback(callback(1))
        d.addCallback(callback(2))
        d.addCallback(callback(3))
        try d.callback(0)
        #expect(out == ["callback_1 got 0", "callback_2 got 1", "callback_3 got 2"])

        out.removeAll()
        var deferred2: Deferred<Int>?
        let d2 = Deferred<Int>()
        d2.addCallback(callback(1))
        d2.addCallback { (res: Int) -> Deferred<Int> in
            out.append("callback_2 got \(res)")
            let inner = Deferred<Int>()
            deferred2 = inner
            return inner
        }
        d2.addCallback(callback(3))
        try d2.callback(0)
        #expect(out == ["callback_1 got 0", "callback_2 got 1"])
        #expect(d2.paused)

        try #require(deferred2).callback(2)
        #expect(out == ["callback_1 got 0", "callback_2 got 1", "callback_3 got 2"])
        #expect(!d2.paused)
    }

    @Test("defer-11: callbacks added after firing run at once, unless the Deferred is paused")
    func defer_11() throws {
        var out: [String] = []
        func callback(_ n: Int) -> (Int) -> Int { { res in out.append("callback_\(n) got \(res)"); return n } }

        let d = Deferred<Int>()
        out.append("Firing empty deferred.")
        try d.callback(0)
        out.append("Adding first callback.")
        d.addCallback(callback(1))
        out.append("Adding second callback.")
        d.addCallback(callback(2))
        out.append("Adding third callback.")
        d.addCallback(callback(3))

        let p = Deferred<Int>()
        out.append("Pausing, then firing deferred.")
        p.pause()
        try p.callback(0)
        out.append("Adding callbacks.")
        p.addCallback(callback(1))
        p.addCallback(callback(2))
        p.addCallback(callback(3))
        out.append("Unpausing the deferred.")
        p.unpause()

        #expect(out == [
            "Firing empty deferred.",
            "Adding first callback.", "callback_1 got 0",
            "Adding second callback.", "callback_2 got 1",
            "Adding third callback.", "callback_3 got 2",
            "Pausing, then firing deferred.",
            "Adding callbacks.",
            "Unpausing the deferred.",
            "callback_1 got 0", "callback_2 got 1", "callback_3 got 2",
        ])
    }

    @Test("defer-unhandled: a failure left at the end of the chain is reported when the Deferred goes away")
    func defer_unhandled() throws {
        var out: [String] = []
        var creationLine: UInt = 0
        let errors = UnhandledErrors.capture {
            do {
                creationLine = #line + 1
                let d = Deferred<String>()
                d.addCallback { (_: String) throws -> String in throw PyException("oops") }
                try? d.callback("Here is your result.")
                out.append("Finished")
            }
        }
        for e in errors { out.append("Unhandled error in Deferred: \(e.message)") }
        #expect(out == ["Finished", "Unhandled error in Deferred: oops"])
        #expect(errors.first?.file.hasSuffix("TutorialExampleTests.swift") == true)
        #expect(errors.first?.line == creationLine)
        #expect(errors.first?.errorType.hasSuffix("PyException") == true)
    }

    @Test("Part 13: an inner Deferred's failure continues the outer chain on the errback track")
    func part13_innerFailure() throws {
        var out: [String] = []
        let inner = Deferred<String>()
        let outer = Deferred<String>()
        outer.addCallback { res -> Deferred<String> in out.append("outer callback 1 got \(res), returning inner"); return inner }
        outer.addCallbacks({ res in out.append("outer callback 2 got \(res)"); return res },
                           { e in out.append("outer errback got \(failureText(e))"); return "recovered" })
        outer.addCallback { res in out.append("outer callback 3 got \(res)"); return res }
        inner.addCallback { (res: String) throws -> String in out.append("inner callback got \(res)"); throw PyException("inner failed") }
        try outer.callback("o")
        out.append("firing inner")
        try inner.callback("i")
        #expect(out == [
            "outer callback 1 got o, returning inner", "firing inner", "inner callback got i",
            "outer errback got inner failed", "outer callback 3 got recovered",
        ])
    }

    @Test("Part 13: an errback returning a Deferred pauses the outer chain too")
    func part13_errbackReturnsDeferred() throws {
        var out: [String] = []
        let inner = Deferred<String>()
        let outer = Deferred<String>()
        outer.addErrback { e -> Deferred<String> in out.append("outer errback got \(failureText(e))"); return inner }
        outer.addCallback { res in out.append("outer callback got \(res)"); return res }
        try outer.errback(PyException("boom"))
        #expect(out == ["outer errback got boom"])
        #expect(outer.paused)
        try inner.callback("inner value")
        #expect(out == ["outer errback got boom", "outer callback got inner value"])
    }
}

@Suite("Twisted Introduction: deferred-cancel examples")
struct DeferredCancelExamples {
    func callbacks(_ d: Deferred<String>, _ out: Box<[String]>) {
        d.addCallbacks({ res in out.value.append("callback got: \(res)"); return res },
                       { err in out.value.append("errback got: \(failureText(err))"); return "" })
    }

    @Test("defer-cancel-1: cancelling with only a callback leaves an unhandled CancelledError")
    func defer_cancel_1() {
        let out = Box<[String]>([])
        let errors = UnhandledErrors.capture {
            do {
                let d = Deferred<String>()
                d.addCallback { res in out.value.append("callback got: \(res)"); return res }
                d.cancel()
                out.value.append("done")
            }
        }
        for e in errors { out.value.append("Unhandled error in Deferred: \(e.errorType.split(separator: ".").last ?? "")") }
        #expect(out.value == ["done", "Unhandled error in Deferred: CancelledError"])
    }

    @Test("defer-cancel-2: cancel before firing runs the errback with CancelledError")
    func defer_cancel_2() {
        let out = Box<[String]>([])
        let d = Deferred<String>()
        callbacks(d, out)
        d.cancel()
        out.value.append("done")
        #expect(out.value == ["errback got: CancelledError", "done"])
    }

    @Test("defer-cancel-3: cancel after firing does nothing")
    func defer_cancel_3() throws {
        let out = Box<[String]>([])
        let d = Deferred<String>()
        callbacks(d, out)
        try d.callback("result")
        d.cancel()
        out.value.append("done")
        #expect(out.value == ["callback got: result", "done"])
    }

    @Test("defer-cancel-4: a result arriving after cancel is swallowed")
    func defer_cancel_4() {
        let out = Box<[String]>([])
        let d = Deferred<String>()
        callbacks(d, out)
        d.cancel()
        #expect(throws: Never.self) { try d.callback("result") }
        out.value.append("done")
        #expect(out.value == ["errback got: CancelledError", "done"])
    }

    @Test("defer-cancel-5: a canceller that does not fire leaves CancelledError")
    func defer_cancel_5() {
        let out = Box<[String]>([])
        let d = Deferred<String>(canceller: { _ in out.value.append("I need to cancel this deferred") })
        callbacks(d, out)
        d.cancel()
        out.value.append("done")
        #expect(out.value == ["I need to cancel this deferred", "errback got: CancelledError", "done"])
    }

    @Test("defer-cancel-6: a canceller may fire the Deferred with a result")
    func defer_cancel_6() {
        let out = Box<[String]>([])
        let d = Deferred<String>(canceller: { d in
            out.value.append("I need to cancel this deferred")
            out.value.append("Firing the deferred with a result")
            try? d.callback("result")
        })
        callbacks(d, out)
        d.cancel()
        out.value.append("done")
        #expect(out.value == ["I need to cancel this deferred", "Firing the deferred with a result", "callback got: result", "done"])
    }

    @Test("defer-cancel-7: a canceller may fire the Deferred with a different error")
    func defer_cancel_7() {
        let out = Box<[String]>([])
        let d = Deferred<String>(canceller: { d in
            out.value.append("I need to cancel this deferred")
            out.value.append("Firing the deferred with an error")
            try? d.errback(PyException("error!"))
        })
        callbacks(d, out)
        d.cancel()
        out.value.append("done")
        #expect(out.value == ["I need to cancel this deferred", "Firing the deferred with an error", "errback got: error!", "done"])
    }

    @Test("defer-cancel-8: cancel after firing does not call the canceller")
    func defer_cancel_8() throws {
        let out = Box<[String]>([])
        let d = Deferred<String>(canceller: { _ in out.value.append("I need to cancel this deferred") })
        callbacks(d, out)
        try d.callback("result")
        d.cancel()
        out.value.append("done")
        #expect(out.value == ["callback got: result", "done"])
    }

    /// get_poem of defer-cancel-9..11: fires 5 seconds later.
    func getPoem(_ clock: ManualClock, _ out: Box<[String]>, withCanceller: Bool) -> Deferred<String> {
        var delayed: (any DelayedCall)?
        let d = Deferred<String>(canceller: withCanceller ? { _ in delayed?.cancel() } : nil)
        delayed = clock.callLater(.seconds(5)) {
            out.value.append("Sending poem")
            #expect(throws: Never.self) { try d.callback("Once upon a midnight dreary") }
        }
        return d
    }

    func runPoem(cancelAt: Duration?, withCanceller: Bool) -> [String] {
        let out = Box<[String]>([])
        let clock = ManualClock()
        let d = getPoem(clock, out, withCanceller: withCanceller)
        d.addCallbacks({ p in out.value.append("I got a poem: \(p)"); return p },
                       { e in out.value.append("get_poem failed: \(failureText(e))"); return "" })
        if let cancelAt { clock.callLater(cancelAt) { d.cancel() } }
        clock.advance(by: .seconds(10))
        return out.value
    }

    @Test("defer-cancel-9: the poem arrives after 5 seconds")
    func defer_cancel_9() {
        #expect(runPoem(cancelAt: nil, withCanceller: false) == ["Sending poem", "I got a poem: Once upon a midnight dreary"])
    }

    @Test("defer-cancel-10: cancelling without a canceller fails at once; the late poem is swallowed")
    func defer_cancel_10() {
        #expect(runPoem(cancelAt: .seconds(2), withCanceller: false) == ["get_poem failed: CancelledError", "Sending poem"])
    }

    @Test("defer-cancel-11: a canceller that cancels the delayed call stops the poem being sent")
    func defer_cancel_11() {
        #expect(runPoem(cancelAt: .seconds(2), withCanceller: true) == ["get_poem failed: CancelledError"])
    }

    @Test("defer-cancel-12: cancelling an outer Deferred paused on an inner one cancels the inner one")
    func defer_cancel_12() throws {
        let out = Box<[String]>([])
        let errors = try UnhandledErrors.capture {
            let outer = Deferred<String>(canceller: { _ in out.value.append("outer cancel callback.") })
            let inner = Deferred<String>(canceller: { _ in out.value.append("inner cancel callback.") })
            outer.addCallback { _ -> Deferred<String> in
                out.value.append("first outer callback, returning inner deferred")
                return inner
            }
            outer.addCallbacks({ res in out.value.append("second outer callback got: \(res)"); return res },
                               { err in out.value.append("outer errback got: \(failureText(err))"); return "" })
            try outer.callback("result")
            out.value.append("canceling outer deferred.")
            outer.cancel()
            out.value.append("done")
        }
        #expect(out.value == [
            "first outer callback, returning inner deferred", "canceling outer deferred.",
            "inner cancel callback.", "outer errback got: CancelledError", "done",
        ])
        #expect(errors.isEmpty)
    }
}

@Suite("Twisted Introduction: deferred-list examples")
struct DeferredListExamples {
    func gotResults(_ out: Box<[String]>) -> (DeferredListResult<String>) -> DeferredListResult<String> {
        { res in out.value.append("We got: \(pyResults(res.results ?? []))"); return res }
    }

    @Test("deferred-list-1: an empty list fires at once")
    func deferred_list_1() {
        let out = Box<[String]>([])
        out.value.append("Empty List.")
        let d = deferredList([Deferred<String>]())
        out.value.append("Adding Callback.")
        d.addCallback(gotResults(out))
        #expect(out.value == ["Empty List.", "Adding Callback.", "We got: []"])
    }

    @Test("deferred-list-2: a list of one fires when its member fires")
    func deferred_list_2() throws {
        let out = Box<[String]>([])
        out.value.append("One Deferred.")
        let d1 = Deferred<String>()
        let d = deferredList([d1])
        out.value.append("Adding Callback.")
        d.addCallback(gotResults(out))
        out.value.append("Firing d1.")
        try d1.callback("d1 result")
        #expect(out.value == ["One Deferred.", "Adding Callback.", "Firing d1.", "We got: [(True, 'd1 result')]"])
    }

    func twoDeferreds(firstFired: Int) throws -> [String] {
        let out = Box<[String]>([])
        out.value.append("Two Deferreds.")
        let d1 = Deferred<String>()
        let d2 = Deferred<String>()
        let d = deferredList([d1, d2])
        out.value.append("Adding Callback.")
        d.addCallback(gotResults(out))
        let order = firstFired == 1 ? [(1, d1), (2, d2)] : [(2, d2), (1, d1)]
        for (n, member) in order {
            out.value.append("Firing d\(n).")
            try member.callback("d\(n) result")
        }
        return out.value
    }

    @Test("deferred-list-3: two members fired in order give results in list order")
    func deferred_list_3() throws {
        #expect(try twoDeferreds(firstFired: 1) == [
            "Two Deferreds.", "Adding Callback.", "Firing d1.", "Firing d2.",
            "We got: [(True, 'd1 result'), (True, 'd2 result')]",
        ])
    }

    @Test("deferred-list-4: two members fired in reverse order still give results in list order")
    func deferred_list_4() throws {
        #expect(try twoDeferreds(firstFired: 2) == [
            "Two Deferreds.", "Adding Callback.", "Firing d2.", "Firing d1.",
            "We got: [(True, 'd1 result'), (True, 'd2 result')]",
        ])
    }

    /// deferred-list-5..7: d2 fails; what happens to its failure depends on consumeErrors and
    /// on an errback added to d2.
    func oneFailing(consumeErrors: Bool, handleD2: Bool) -> [String] {
        let out = Box<[String]>([])
        let errors = UnhandledErrors.capture {
            do {
                let d1 = Deferred<String>()
                let d2 = Deferred<String>()
                let d = deferredList([d1, d2], consumeErrors: consumeErrors)
                if handleD2 { d2.addErrback { _ in "" } }
                d.addCallback(gotResults(out))
                out.value.append("Firing d1.")
                try? d1.callback("d1 result")
                out.value.append("Firing d2 with errback.")
                try? d2.errback(PyException("d2 failure"))
            }
        }
        for e in errors { out.value.append("Unhandled error in Deferred: \(e.message)") }
        return out.value
    }

    static let failingOutput = [
        "Firing d1.", "Firing d2 with errback.",
        "We got: [(True, 'd1 result'), (False, <twisted.python.failure.Failure builtins.Exception: d2 failure>)]",
    ]

    @Test("deferred-list-5: with consumeErrors the member failure is handled")
    func deferred_list_5() {
        #expect(oneFailing(consumeErrors: true, handleD2: false) == Self.failingOutput)
    }

    @Test("deferred-list-6: without consumeErrors the member failure is also reported as unhandled")
    func deferred_list_6() {
        #expect(oneFailing(consumeErrors: false, handleD2: false)
            == Self.failingOutput + ["Unhandled error in Deferred: d2 failure"])
    }

    @Test("deferred-list-7: an errback added to the member after the list handles the failure")
    func deferred_list_7() {
        #expect(oneFailing(consumeErrors: false, handleD2: true) == Self.failingOutput)
    }
}

/// A reference box, so closures stored in Deferreds can append to a shared event list.
final class Box<T> {
    var value: T
    init(_ value: T) { self.value = value }
}
