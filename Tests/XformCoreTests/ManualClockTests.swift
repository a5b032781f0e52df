import Testing
import XformCore
import XformTesting

@Suite("ManualClock")
struct ManualClockTests {
    @Test("Calls run in deadline order, ties in scheduling order")
    func deadlineOrder() {
        let clock = ManualClock()
        var events: [String] = []
        clock.callLater(.seconds(2)) { events.append("b") }
        clock.callLater(.seconds(1)) { events.append("a1") }
        clock.callLater(.seconds(1)) { events.append("a2") }
        clock.callLater(.seconds(3)) { events.append("c") }
        clock.advance(by: .seconds(2))
        #expect(events == ["a1", "a2", "b"])
        #expect(clock.now == .seconds(2))
        #expect(clock.pendingCalls.count == 1)
        clock.advance(by: .seconds(1))
        #expect(events == ["a1", "a2", "b", "c"])
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("A call scheduled during advance for a time within the advance also runs")
    func scheduledDuringAdvance() {
        let clock = ManualClock()
        var events: [String] = []
        clock.callLater(.seconds(1)) {
            events.append("first at \(clock.now)")
            clock.callLater(.seconds(1)) { events.append("second at \(clock.now)") }
            clock.callLater(.seconds(5)) { events.append("late") }
        }
        clock.advance(by: .seconds(3))
        #expect(events == ["first at 1.0 seconds", "second at 2.0 seconds"])
        #expect(clock.now == .seconds(3))
        #expect(clock.pendingCalls.map(\.deadline) == [.seconds(6)])
    }

    @Test("A zero-delay call runs on an advance by zero")
    func zeroDelay() {
        let clock = ManualClock()
        var ran = false
        clock.callLater(.zero) { ran = true }
        #expect(!ran)
        clock.advance(by: .zero)
        #expect(ran)
    }

    @Test("Cancelling a call stops it and releases its closure; reset moves it")
    func cancelAndReset() {
        final class Token {}
        let clock = ManualClock()
        weak var weakToken: Token?
        var ran = 0
        let call: any DelayedCall
        do {
            let token = Token()
            weakToken = token
            call = clock.callLater(.seconds(1)) { _ = token; ran += 1 }
        }
        #expect(weakToken != nil)
        #expect(call.isActive)
        call.cancel()
        #expect(!call.isActive)
        #expect(weakToken == nil)
        call.cancel()
        clock.advance(by: .seconds(2))
        #expect(ran == 0)

        let moved = clock.callLater(.seconds(1)) { ran += 1 }
        moved.reset(.seconds(5))
        #expect(moved.deadline == .seconds(7))
        clock.advance(by: .seconds(4))
        #expect(ran == 0)
        clock.advance(by: .seconds(1))
        #expect(ran == 1)
        #expect(!moved.isActive)
    }

    @Test("A call that has run releases its closure")
    func releasesAfterRun() {
        final class Token {}
        let clock = ManualClock()
        weak var weakToken: Token?
        do {
            let token = Token()
            weakToken = token
            clock.callLater(.seconds(1)) { _ = token }
        }
        clock.advance(by: .seconds(1))
        #expect(weakToken == nil)
    }
}

@Suite("StringTransport")
struct StringTransportTests {
    final class Echo: BaseProtocol {
        var lost: ConnectionEnd?
        var made = false
        override func connectionMade() { made = true }
        override func dataReceived(_ data: UnsafeRawBufferPointer) { transport?.write(Array(data)) }
        override func connectionLost(reason: ConnectionEnd) {
            super.connectionLost(reason: reason)
            lost = reason
        }
    }

    @Test("Bytes written by a protocol are recorded and can be cleared")
    func recordsWrites() {
        let t = StringTransport()
        let p = Echo()
        t.connect(p)
        #expect(p.made)
        t.receive("hello")
        t.receive([0x20, 0x21])
        #expect(t.string() == "hello !")
        #expect(t.value() == Array("hello !".utf8))
        #expect(t.writeCount == 2)
        t.clear()
        #expect(t.value().isEmpty)
    }

    @Test("Closing calls set flags, and deliver connectionLost only when asked to")
    func closingFlags() {
        let t = StringTransport()
        let p = Echo()
        t.connect(p)
        t.loseWriteConnection()
        #expect(t.writeClosed && !t.disconnecting)
        t.loseConnection()
        #expect(t.disconnecting && !t.aborted)
        #expect(p.lost == nil)
        t.abortConnection()
        #expect(t.aborted)
        t.deliverConnectionLost(.lost(errno: 104))
        t.deliverConnectionLost(.done)
        #expect(p.lost == .lost(errno: 104))

        let t2 = StringTransport(deliversConnectionLost: true)
        let p2 = Echo()
        t2.connect(p2)
        t2.loseConnection()
        #expect(p2.lost == .done)
        #expect(!p2.connected)
    }

    @Test("pauseReading and resumeReading are recorded")
    func pausing() {
        let t = StringTransport()
        t.pauseReading()
        #expect(t.readingPaused)
        t.resumeReading()
        #expect(!t.readingPaused)
        #expect(t.pauseCount == 1)
    }
}
