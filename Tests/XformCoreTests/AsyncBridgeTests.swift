import Testing
import XformCore
import XformTesting

@Suite("Async bridges")
struct AsyncBridgeTests {
    @Test("deferredValue runs the maker on the reactor thread and returns the Deferred's value")
    func deferredValueReturns() async throws {
        let rt = DispatchReactorThread()
        #expect(try await rt.deferredValue { succeed(7) } == 7)
        await #expect(throws: Boom.self) { try await rt.deferredValue { fail(Boom(), as: Int.self) } }

        let (made, signal) = AsyncStream<Bool>.makeStream()
        let task = Task {
            try await rt.deferredValue { () -> Deferred<Int> in
                signal.yield(rt.isReactorThread)
                return deferLater(rt.clock, .seconds(1)) { 42 }
            }
        }
        var onReactor = false
        for await r in made { onReactor = r; break }
        #expect(onReactor)
        rt.advance(by: .seconds(1))
        #expect(try await task.value == 42)
    }

    @Test("Cancelling the awaiting Task cancels the Deferred, which fails with CancelledError")
    func taskCancellation() async throws {
        let rt = DispatchReactorThread()
        let slot = rt.confined(Deferred<Int>?.none)
        let (made, signal) = AsyncStream<Void>.makeStream()
        let task = Task {
            try await rt.deferredValue { () -> Deferred<Int> in
                let d = Deferred<Int>()
                slot.value = d
                signal.yield()
                return d
            }
        }
        for await _ in made { break }
        task.cancel()
        await #expect(throws: CancelledError.self) { try await task.value }
        let state = rt.run { (slot.value?.called ?? false) }
        #expect(state)
    }

    @Test("deferredFromAsync fires on the reactor thread with the body's value")
    func fromAsync() async throws {
        let rt = DispatchReactorThread()
        let (results, sink) = AsyncStream<String>.makeStream()
        rt.run {
            let d = deferredFromAsync(on: rt) { 5 }
            d.addCallback { v in
                sink.yield("\(v) on reactor thread: \(rt.isReactorThread)")
                return v
            }
        }
        var got: String?
        for await r in results { got = r; break }
        #expect(got == "5 on reactor thread: true")
    }

    @Test("Cancelling a deferredFromAsync Deferred cancels the Task and fails at once")
    func fromAsyncCancel() async throws {
        let rt = DispatchReactorThread()
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        let (observed, observedSignal) = AsyncStream<Bool>.makeStream()
        let (never, _) = AsyncStream<Void>.makeStream()
        let slot = rt.confined(Deferred<Int>?.none)
        rt.run {
            slot.value = deferredFromAsync(on: rt) {
                startedSignal.yield()
                for await _ in never {}  // ends when the Task is cancelled
                observedSignal.yield(Task.isCancelled)
                try Task.checkCancellation()
                return 1
            }
        }
        for await _ in started { break }
        let failedAtOnce = rt.run { () -> Bool in
            let d = slot.value!
            d.cancel()
            return failureResult(of: d, as: CancelledError.self) != nil
        }
        #expect(failedAtOnce)
        var sawCancel = false
        for await c in observed { sawCancel = c; break }
        #expect(sawCancel)
        rt.drain()
    }
}
