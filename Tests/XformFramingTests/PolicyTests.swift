import Testing
import XformCore
import XformFraming
import XformTesting

@Suite("IdleTimeout")
struct IdleTimeoutTests {
    @Test("An idle connection times out exactly after the timeout")
    func firesWhenIdle() {
        let clock = ManualClock()
        var fired = 0
        let idle = IdleTimeout(clock: clock, timeout: .seconds(10)) { fired += 1 }
        clock.advance(by: .seconds(9))
        #expect(fired == 0)
        clock.advance(by: .seconds(1))
        #expect(fired == 1)
        #expect(!idle.isActive)
        clock.advance(by: .seconds(100))
        #expect(fired == 1)
    }

    @Test("Activity pushes the timeout back to a full period after the last touch")
    func touchResets() {
        let clock = ManualClock()
        var firedAt: Duration?
        let idle = IdleTimeout(clock: clock, timeout: .seconds(10)) { firedAt = clock.now }
        clock.advance(by: .seconds(9))
        idle.touch()
        clock.advance(by: .seconds(6))  // t = 15: the first timer fired and re-armed
        #expect(firedAt == nil)
        clock.advance(by: .seconds(3))  // t = 18
        #expect(firedAt == nil)
        clock.advance(by: .seconds(1))  // t = 19: 10 s after the touch
        #expect(firedAt == .seconds(19))
    }

    @Test("touch() never schedules: many touches leave a single pending call")
    func touchIsCheap() {
        let clock = ManualClock()
        let idle = IdleTimeout(clock: clock, timeout: .seconds(5)) {}
        for i in 0..<1000 {
            if i % 100 == 0 { clock.advance(by: .milliseconds(10)) }
            idle.touch()
        }
        #expect(clock.pendingCalls.count == 1)
    }

    @Test("A cancelled timeout never fires and releases its callback")
    func cancelReleases() {
        final class Owner {}
        let clock = ManualClock()
        var owner: Owner? = Owner()
        weak let weakOwner = owner
        var fired = false
        let idle = IdleTimeout(clock: clock, timeout: .seconds(1)) { [owner] in
            _ = owner
            fired = true
        }
        owner = nil
        #expect(weakOwner != nil)
        idle.cancel()
        #expect(weakOwner == nil)
        clock.advance(by: .seconds(5))
        #expect(!fired)
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("Changing the timeout measures the current idle period against the new value")
    func setTimeout() {
        let clock = ManualClock()
        var fired = 0
        let idle = IdleTimeout(clock: clock, timeout: .seconds(10)) { fired += 1 }
        clock.advance(by: .seconds(3))
        idle.setTimeout(.seconds(4))
        clock.advance(by: .milliseconds(999))
        #expect(fired == 0)
        clock.advance(by: .milliseconds(1))
        #expect(fired == 1)
    }
}

/// A factory that builds plain protocols and counts start/stop.
final class PlainFactory: ServerFactory {
    var built = 0
    var refuse = false
    var started = 0
    func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? {
        if refuse { return nil }
        built += 1
        return BaseProtocol()
    }
    func startFactory() { started += 1 }
}

@Suite("ConnectionLimit")
struct ConnectionLimitTests {
    let peer = SocketAddress(host: "127.0.0.1", port: 1)

    @Test("Connections beyond the maximum are refused until one closes")
    func limits() throws {
        let inner = PlainFactory()
        let limit = ConnectionLimit(wrapping: inner, maxConnections: 2)
        let t1 = StringTransport(deliversConnectionLost: true)
        let t2 = StringTransport(deliversConnectionLost: true)
        t1.connect(try #require(limit.buildProtocol(peer: peer)))
        t2.connect(try #require(limit.buildProtocol(peer: peer)))
        #expect(limit.openConnections == 2)
        #expect(limit.buildProtocol(peer: peer) == nil)
        #expect(limit.refusedConnections == 1)
        #expect(inner.built == 2)
        t1.loseConnection()
        #expect(limit.openConnections == 1)
        let p3 = limit.buildProtocol(peer: peer)
        #expect(p3 != nil)
        #expect(limit.openConnections == 2)
    }

    @Test("Limits sharing a budget (one per event loop) hold the limit together; a close frees room for any")
    func sharedBudget() throws {
        let budget = ConnectionBudget(limit: 2)
        let a = ConnectionLimit(wrapping: PlainFactory(), maxConnections: 2)
        let b = ConnectionLimit(wrapping: PlainFactory(), maxConnections: 2)
        a.budget = budget
        b.budget = budget
        let t1 = StringTransport(deliversConnectionLost: true)
        t1.connect(try #require(a.buildProtocol(peer: peer)))
        let t2 = StringTransport(deliversConnectionLost: true)
        t2.connect(try #require(b.buildProtocol(peer: peer)))
        #expect(budget.openConnections == 2)
        #expect(b.buildProtocol(peer: peer) == nil && a.buildProtocol(peer: peer) == nil)
        #expect(a.refusedConnections == 1 && b.refusedConnections == 1 && budget.openConnections == 2)
        t1.loseConnection()
        #expect(budget.openConnections == 1 && a.openConnections == 0)
        let p3 = b.buildProtocol(peer: peer)
        #expect(p3 != nil && b.openConnections == 2 && budget.openConnections == 2)
    }

    @Test("The wrapped protocol sees every event and the real transport")
    func forwards() throws {
        final class Echo: BaseProtocol {
            var got: [UInt8] = []
            var lost: ConnectionEnd?
            override func dataReceived(_ data: UnsafeRawBufferPointer) { got += data }
            override func connectionLost(reason: ConnectionEnd) {
                lost = reason
                super.connectionLost(reason: reason)
            }
        }
        final class EchoFactory: ServerFactory {
            let echo = Echo()
            func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? { echo }
        }
        let f = EchoFactory()
        let limit = ConnectionLimit(wrapping: f, maxConnections: 1)
        let t = StringTransport(deliversConnectionLost: true)
        t.connect(try #require(limit.buildProtocol(peer: peer)))
        #expect(f.echo.transport === t)
        t.receive("abc")
        #expect(f.echo.got == bytes("abc"))
        t.abortConnection()
        #expect(f.echo.lost == .lost(errno: 0))
        #expect(limit.openConnections == 0)
    }

    @Test("A protocol that is built but never connected is uncounted when released")
    func releasedUnconnected() {
        let limit = ConnectionLimit(wrapping: PlainFactory(), maxConnections: 1)
        var p = limit.buildProtocol(peer: peer)
        #expect(limit.openConnections == 1)
        #expect(p != nil)
        p = nil
        #expect(limit.openConnections == 0)
    }

    @Test("A LimitCountedConnection comes back unwrapped and is counted out once, on connectionLost or when released")
    func selfCounted() throws {
        final class Counted: BaseProtocol, LimitCountedConnection {
            var limitMembership = ConnectionLimit.Membership()
            override func connectionLost(reason: ConnectionEnd) {
                limitMembership.end()
                limitMembership.end()  // a second end counts nothing
                super.connectionLost(reason: reason)
            }
            deinit { limitMembership.end() }
        }
        final class CountedFactory: ServerFactory {
            func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? { Counted() }
        }
        let limit = ConnectionLimit(wrapping: CountedFactory(), maxConnections: 2)
        let built = try #require(limit.buildProtocol(peer: peer))
        #expect(built is Counted)
        let t = StringTransport(deliversConnectionLost: true)
        t.connect(built)
        var unconnected = limit.buildProtocol(peer: peer)
        #expect(limit.openConnections == 2 && unconnected != nil)
        t.loseConnection()
        #expect(limit.openConnections == 1)
        unconnected = nil
        #expect(limit.openConnections == 0)
    }

    @Test("A refusal by the wrapped factory is not counted, and start/stop are forwarded")
    func innerRefusal() {
        let inner = PlainFactory()
        inner.refuse = true
        let limit = ConnectionLimit(wrapping: inner, maxConnections: 1)
        #expect(limit.buildProtocol(peer: peer) == nil)
        #expect(limit.openConnections == 0)
        #expect(limit.refusedConnections == 0)
        limit.startFactory()
        #expect(inner.started == 1)
    }
}
