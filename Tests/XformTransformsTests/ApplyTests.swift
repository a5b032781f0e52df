import Testing
import XformCore
import XformTesting
@testable import XformTransforms

@Suite("apply() validates, limits, offloads and defers")
struct ApplyTests {
    static let invalidUTF8: [[UInt8]] = [
        [0xFF], [0x41, 0x80], [0xC0, 0x80], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
        [0xF8, 0x88, 0x80, 0x80, 0x80], Array("HERE IS MY POEM".utf8) + [0xC3],
    ]

    @Test("Malformed UTF-8 fails with invalidUTF8 for every built-in", arguments: invalidUTF8)
    func invalidUTF8Input(bytes: [UInt8]) {
        let service = TransformService()
        let context = TransformContext(clock: ManualClock())
        for name in service.names {
            #expect(failedError(apply(service.lookup(name)!, bytes, context)) == .invalidUTF8, "\(name)")
        }
    }

    @Test("Input longer than maximumInputBytes fails with tooLarge; exactly the maximum is accepted")
    func sizeLimit() {
        let service = TransformService()
        let context = TransformContext(clock: ManualClock(), maximumInputBytes: 10)
        let handle = service.lookup("cummingsify")!
        #expect(doneBytes(apply(handle, Array("ABCDEFGHIJ".utf8), context)) == Array("abcdefghij".utf8))
        #expect(failedError(apply(handle, Array("ABCDEFGHIJK".utf8), context)) == .tooLarge)
        #expect(failedError(apply(service.lookup("slowcummingsify")!, Array("ABCDEFGHIJK".utf8), context)) == .tooLarge)
        let d = service.transform("cummingsify", "ABCDEFGHIJK", context: context)
        #expect(failureResult(of: d, as: TransformError.self) == .tooLarge)
        #expect(successResult(of: service.transform("cummingsify", "ABCDEFGHIJ", context: context)) == "abcdefghij")
    }

    @Test("Input above the offload threshold runs on the thread pool; at the threshold it runs inline")
    func offload() throws {
        let pool = QueuedPool()
        let context = TransformContext(clock: ManualClock(), threadPool: pool, offloadThreshold: 16)
        let handle = TransformService().lookup("cummingsify")!
        #expect(doneBytes(apply(handle, Array("ABCDEFGHIJKLMNOP".utf8), context)) == Array("abcdefghijklmnop".utf8))
        #expect(pool.queued.isEmpty)

        var input = Array("ABCDEFGHIJKLMNOPΣ".utf8)
        let d = try #require(pendingDeferred(apply(handle, input, context)))
        #expect(pool.queued.count == 1)
        expectNoResult(d)
        input[0] = 0x5A  // the caller may reuse its buffer at once: the work has its own copy
        pool.runAll()
        #expect(successResult(of: d) == Array("abcdefghijklmnopς".utf8))
    }

    @Test("Offloaded input that is not UTF-8 fails with invalidUTF8 from the pool")
    func offloadInvalid() throws {
        let pool = QueuedPool()
        let context = TransformContext(clock: ManualClock(), threadPool: pool, offloadThreshold: 4)
        let d = try #require(pendingDeferred(apply(TransformService().lookup("upper")!, [0x61, 0x62, 0x63, 0x64, 0xFF], context)))
        pool.runAll()
        #expect(failureResult(of: d, as: TransformError.self) == .invalidUTF8)
    }

    @Test("Without a thread pool, large input runs inline")
    func noPoolRunsInline() {
        let context = TransformContext(clock: ManualClock(), threadPool: nil, offloadThreshold: 4)
        let outcome = apply(TransformService().lookup("reverse")!, Array("abcdefgh".utf8), context)
        #expect(doneBytes(outcome) == Array("hgfedcba".utf8))
    }

    @Test("The String API offloads large texts to the pool too")
    func stringAPIOffloads() {
        let pool = QueuedPool()
        let context = TransformContext(clock: ManualClock(), threadPool: pool, offloadThreshold: 4)
        let d = TransformService().transform("wordcount", "one two three", context: context)
        expectNoResult(d)
        #expect(pool.queued.count == 1)
        pool.runAll()
        #expect(successResult(of: d) == "3")
    }

    @Test("slowcummingsify answers 100 ms later by the context's clock")
    func slowcummingsify() throws {
        let clock = ManualClock()
        let context = TransformContext(clock: clock)
        let d = try #require(
            pendingDeferred(apply(TransformService().lookup("slowcummingsify")!, Array("HERE IS MY POEM".utf8), context)))
        #expect(clock.pendingCalls.count == 1)
        clock.advance(by: .milliseconds(99))
        expectNoResult(d)
        clock.advance(by: .milliseconds(1))
        #expect(successResult(of: d) == Array("here is my poem".utf8))
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("slowcummingsify through the String API keeps Python's Final_Sigma")
    func slowcummingsifyString() {
        let clock = ManualClock()
        let d = TransformService().transform("slowcummingsify", "ΟΔΟΣ", context: TransformContext(clock: clock))
        expectNoResult(d)
        clock.advance(by: BuiltinTransforms.slowDelay)
        #expect(successResult(of: d) == "οδος")
    }

    @Test("Cancelling slowcummingsify cancels its timer and fails with CancelledError")
    func cancelSlow() throws {
        let clock = ManualClock()
        let context = TransformContext(clock: clock)
        let d = try #require(
            pendingDeferred(apply(TransformService().lookup("slowcummingsify")!, Array("POEM".utf8), context)))
        let timer = try #require(clock.pendingCalls.first)
        d.cancel()
        #expect(!timer.isActive)
        #expect(clock.pendingCalls.isEmpty)
        #expect(failureResult(of: d, as: CancelledError.self) != nil)
        clock.advance(by: .seconds(1))  // nothing left to fire

        let s = TransformService().transform("slowcummingsify", "POEM", context: context)
        #expect(clock.pendingCalls.count == 1)
        s.cancel()
        #expect(clock.pendingCalls.isEmpty)
        #expect(failureResult(of: s, as: CancelledError.self) != nil)
    }

    @Test("An asynchronous transform's own failure becomes failed(reason)")
    func asyncFailure() throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "broken" } }
        let service = TransformService(builtins: false)
        try service.register(
            Transform(name: "flaky", summary: "fails later", body: .asynchronous { _, _ in fail(Broken()) }))
        let context = TransformContext(clock: ManualClock())
        let d = try #require(pendingDeferred(apply(service.lookup("flaky")!, Array("x".utf8), context)))
        #expect(failureResult(of: d, as: TransformError.self) == .failed("broken"))
        let s = service.transform("flaky", "x", context: context)
        #expect(failureResult(of: s, as: TransformError.self) == .failed("broken"))
    }
}
