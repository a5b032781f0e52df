// Small fidelity points from the seeds: DeferredPool.notifyWhenEmpty(testImmediately:) ("Graceful
// shutdown of a Twisted service with outstanding deferreds") and firstSuccess cancelling the
// losers before the winner fires (Twisted's race(), txdpce).
import Testing
import XformCore
import XformTesting

@Suite("Seed fidelity: DeferredPool and firstSuccess")
struct FidelityTests {
    @Test("notifyWhenEmpty(testImmediately: false) waits for the next time the pool empties")
    func notifyNextEmpty() throws {
        let pool = DeferredPool()
        let now = pool.notifyWhenEmpty()
        let next = pool.notifyWhenEmpty(testImmediately: false)
        #expect(now.called)
        expectNoResult(next)
        let a = Deferred<Int>()
        pool.add(a)
        expectNoResult(next)
        try a.callback(1)
        #expect(successResult(of: next) != nil)
    }

    @Test("firstSuccess cancels the losers before its callbacks see the winner")
    func losersCancelledFirst() throws {
        var events: [String] = []
        let ds = (0..<3).map { i in Deferred<Int>(canceller: { _ in events.append("cancel \(i)") }) }
        let w = firstSuccess(ds)
        w.addCallback { r in events.append("winner \(r.index)"); return r }
        try ds[1].callback(11)
        #expect(events == ["cancel 0", "cancel 2", "winner 1"])
    }
}
