// Async bodies with inlineCallbacks semantics: the Introduction's Part 17 examples
// (inline-callbacks/inline-callbacks-1.py and -2.py, seed 002) with their printed order, on the
// test kit's MemoryReactor, and on a real thread through DispatchReactorThread.
import Testing
import XformCore
import XformTesting

/// inline-callbacks-1.py: yields a plain value, a Deferred fired later, one failed later.
func inlineCallbacks1(_ reactor: MemoryReactor, _ out: Printout) -> Deferred<Void> {
    deferredFromAsync(on: reactor.threading) {
        out.print("first callback")
        var result = try await succeed(1).value  // yielded values that aren't deferred come right back
        out.print("second callback got \(result)")
        var d = Deferred<Int>()
        reactor.callLater(.seconds(5)) { try? d.callback(2) }
        result = try await d.value  // yielded deferreds will pause the generator
        out.print("third callback got \(result)")  // the result of the deferred
        d = Deferred<Int>()
        reactor.callLater(.seconds(5)) { try? d.errback(PyException("3")) }
        var caught: any Error = PyException("none")
        do { _ = try await d.value } catch { caught = error }
        out.print("fourth callback got Exception('\(caught)')")  // the exception from the deferred
    }
}

/// inline-callbacks-2.py: two bodies in one turn, one returning a value, one raising.
func inlineCallbacks2(_ reactor: MemoryReactor, _ out: Printout) {
    func pause(_ seconds: Int) -> Deferred<Void> {
        let d = Deferred<Void>()
        reactor.callLater(.seconds(seconds)) { try? d.callback(()) }
        return d
    }
    let d1 = deferredFromAsync(on: reactor.threading) { () async throws -> Int in
        out.print("my_callbacks_1 first callback")
        try await pause(2).value
        out.print("my_callbacks_1 second callback")
        try await pause(2).value
        out.print("my_callbacks_1 third callback")
        return 1
    }
    let d2 = deferredFromAsync(on: reactor.threading) { () async throws -> Int in
        out.print("my_callbacks_err first callback")
        try await pause(3).value
        out.print("my_callbacks_err second callback")
        try await pause(3).value
        out.print("my_callbacks_err third callback")
        throw PyException("uh oh")
    }
    var finished = 0
    for d in [d1, d2] {
        d.addCallbacks(
            { res in out.print("got result: \(res)"); return res },
            { err in out.print("got error: \(err)"); return 0 })
        d.addBoth { _ in
            finished += 1
            if finished == 2 { out.print("all done") }
            return 0
        }
    }
}

/// Collects printed lines.
final class Printout {
    var lines: [String] = []
    func print(_ s: String) { lines.append(s) }
}

@Suite("inlineCallbacks: async bodies on the reactor")
struct InlineCallbacksTests {
    @Test("inline-callbacks-1 prints the tutorial's order, 1,000 runs without variation")
    func example1() {
        for _ in 0..<1000 {
            let reactor = MemoryReactor()
            let out = Printout()
            let d = inlineCallbacks1(reactor, out)
            #expect(out.lines == ["first callback", "second callback got 1"])
            reactor.advance(by: .seconds(5))
            reactor.advance(by: .seconds(5))
            #expect(
                out.lines == [
                    "first callback", "second callback got 1", "third callback got 2",
                    "fourth callback got Exception('3')",
                ])
            #expect(successResult(of: d) != nil)
        }
    }

    @Test("inline-callbacks-2 prints the tutorial's order, 1,000 runs without variation")
    func example2() {
        let expected = [
            "my_callbacks_1 first callback", "my_callbacks_err first callback",
            "my_callbacks_1 second callback", "my_callbacks_err second callback",
            "my_callbacks_1 third callback", "got result: 1", "my_callbacks_err third callback",
            "got error: uh oh", "all done",
        ]
        for _ in 0..<1000 {
            let reactor = MemoryReactor()
            let out = Printout()
            inlineCallbacks2(reactor, out)
            for _ in 0..<6 { reactor.advance(by: .seconds(1)) }
            #expect(out.lines == expected)
        }
    }

    @Test("Part 17's poetry client 7.0: try/catch around awaits, a failed download, a failed transform")
    func client7() {
        let reactor = MemoryReactor()
        let out = Printout()
        // Fakes of get_poetry and proxy.xform on the reactor's clock.
        func getPoetry(_ port: Int) -> Deferred<String> {
            let d = Deferred<String>()
            reactor.callLater(.seconds(port - 10001)) {
                if port == 10003 { try? d.errback(PyException("connection refused")) } else {
                    try? d.callback(port == 10002 ? "POEM A" : "POEM C")
                }
            }
            return d
        }
        func xform(_ name: String, _ poem: String) -> Deferred<String> {
            deferLater(reactor, .seconds(1)) {
                if poem.hasSuffix("C") { throw PyException("no") }
                return poem.lowercased()
            }
        }
        func getTransformedPoem(_ port: Int) -> Deferred<String> {
            deferredFromAsync(on: reactor.threading) {
                var poem: String
                do {
                    poem = try await getPoetry(port).value
                } catch {
                    out.print("The poem download failed: \(error)")
                    throw error
                }
                do {
                    poem = try await xform("cummingsify", poem).value
                } catch {
                    out.print("Cummingsify failed!")
                }
                return poem
            }
        }
        let addresses = [10002, 10003, 10004]
        var results = 0
        for port in addresses {
            let d = getTransformedPoem(port)
            d.addCallback { poem in out.print(poem); return poem }
            d.addBoth { _ in
                results += 1
                if results == addresses.count { out.print("reactor.stop()") }
                return ""
            }
        }
        for _ in 0..<4 { reactor.advance(by: .seconds(1)) }
        #expect(out.lines == [
            "The poem download failed: connection refused", "poem a", "Cummingsify failed!", "POEM C", "reactor.stop()",
        ])
    }

    @Test("A body throwing before its first suspension returns an already-failed Deferred")
    func throwsAtOnce() {
        let reactor = MemoryReactor()
        let d = deferredFromAsync(on: reactor.threading) { () async throws -> Int in throw PyException("early") }
        #expect((failureResult(of: d, as: PyException.self))?.message == "early")
        let v = deferredFromAsync(on: reactor.threading) { 7 }
        #expect(successResult(of: v) == 7)
    }

    @Test("A body started while another is suspended runs at once; each resumes when its Deferred fires")
    func interleaved() throws {
        let reactor = MemoryReactor()
        let out = Printout()
        let gate1 = Deferred<String>(), gate2 = Deferred<String>()
        let a = deferredFromAsync(on: reactor.threading) { () async throws -> String in
            out.print("a starts")
            let v = try await gate1.value
            out.print("a got \(v)")
            return v
        }
        out.print("between")
        let b = deferredFromAsync(on: reactor.threading) { () async throws -> String in
            out.print("b starts")
            let v = try await gate2.value
            out.print("b got \(v)")
            // Fires the Deferred a waits on: a runs after b's job, in this same call.
            try gate1.callback("from b")
            out.print("b fired gate1")
            return v
        }
        #expect(out.lines == ["a starts", "between", "b starts"])
        try gate2.callback("x")
        out.print("after gate2")
        #expect(out.lines == ["a starts", "between", "b starts", "b got x", "b fired gate1", "a got from b", "after gate2"])
        #expect(successResult(of: a) == "from b")
        #expect(successResult(of: b) == "x")
    }

    @Test("A body started from inside another body, or from its callbacks, runs at once to its first await")
    func startedInsideBody() throws {
        let reactor = MemoryReactor()
        let out = Printout()
        let gate = Deferred<Int>()
        let outer = deferredFromAsync(on: reactor.threading) { () async throws -> Int in
            out.print("outer starts")
            let inner = deferredFromAsync(on: reactor.threading) { () async throws -> Int in
                out.print("inner starts")
                return try await gate.value * 2
            }
            out.print("outer has inner")
            return try await inner.value + 1
        }
        outer.addCallback { v in
            out.print("outer done \(v)")
            _ = deferredFromAsync(on: reactor.threading) { out.print("started from a callback") }
            return v
        }
        #expect(out.lines == ["outer starts", "inner starts", "outer has inner"])
        try gate.callback(20)
        #expect(out.lines.suffix(2) == ["outer done 41", "started from a callback"])
        #expect(successResult(of: outer) == 41)
    }

    @Test("Cancelling a suspended body cancels the Deferred it awaits; the body sees CancelledError there")
    func cancelWhileSuspended() {
        let reactor = MemoryReactor()
        let out = Printout()
        var innerCancelled = false
        let inner = Deferred<Int>(canceller: { _ in innerCancelled = true })
        let d = deferredFromAsync(on: reactor.threading) { () async throws -> Int in
            do {
                return try await inner.value
            } catch is CancelledError {
                out.print("body saw CancelledError")
                throw CancelledError()
            }
        }
        #expect(!d.called)
        d.cancel()
        #expect(innerCancelled)
        #expect(out.lines == ["body saw CancelledError"])
        #expect(failureResult(of: d, as: CancelledError.self) != nil)
    }

    @Test("A body that catches the cancellation may finish with a value (Twisted >= 15)")
    func cancelRecovered() {
        let reactor = MemoryReactor()
        let inner = Deferred<Int>()
        let d = deferredFromAsync(on: reactor.threading) { () async throws -> Int in
            do { return try await inner.value } catch is CancelledError { return -1 }
        }
        d.cancel()
        #expect(successResult(of: d) == -1)
    }

    @Test("Bodies resume on the reactor thread after awaiting off-thread work")
    func realThread() async throws {
        let rt = DispatchReactorThread()
        let (results, sink) = AsyncStream<String>.makeStream()
        rt.run {
            let order = Printout()
            for i in 0..<3 {
                deferredFromAsync(on: rt) { () async throws -> Void in
                    order.print("start \(i) on reactor: \(rt.isReactorThread)")
                    try await Task.sleep(for: .milliseconds(1))  // resumes through callFromThread
                    order.print("resume \(i) on reactor: \(rt.isReactorThread)")
                    if order.lines.count == 6 { sink.yield(order.lines.sorted().joined(separator: ",")) }
                }.addErrback { _ in () }
            }
            #expect(order.lines == (0..<3).map { "start \($0) on reactor: true" })
        }
        var got = ""
        for await r in results { got = r; break }
        #expect(got == (0..<3).map { "resume \($0) on reactor: true" }.joined(separator: ",") + "," + (0..<3).map { "start \($0) on reactor: true" }.joined(separator: ","))
        rt.drain()
    }
}
