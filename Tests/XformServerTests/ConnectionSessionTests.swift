import Testing

@testable import XformServer

/// The connection lifecycle as a table of events and expected actions: the session machine
/// alone, no transport, no protocol, no clock.
@Suite("ConnectionSession")
struct ConnectionSessionTests {
    typealias Session = ConnectionSession<String>
    typealias Actions = SessionActions<String>

    /// One event of the table.
    enum Event {
        case originalRequest
        case reply(String)
        case await(String)
        case complete(String, with: String)
        case completeByClosing(String)
        case closeAfterOwed
        case readEnded
        case inputEnded
        case shutdown
        case idleTimedOut
        case lost
    }

    /// Runs events; waiters are named, tickets are remembered by name.
    struct Runner {
        var session: Session
        var tickets: [String: Int] = [:]

        init(maxPending: Int = 64) {
            session = Session(configuration: .init(maxPendingRequests: maxPending))
        }

        mutating func run(_ event: Event) -> Actions {
            switch event {
            case .originalRequest:
                session.originalFormRequest()
                return Actions()
            case .reply(let s): return session.reply(Array(s.utf8))
            case .await(let w):
                let (ticket, actions) = session.await(w)
                tickets[w] = ticket
                return actions
            case .complete(let w, let s): return session.complete(tickets[w]!, with: Array(s.utf8))
            case .completeByClosing(let w): return session.completeByClosing(tickets[w]!)
            case .closeAfterOwed: return session.closeAfterOwed()
            case .readEnded: return session.readEnded()
            case .inputEnded: return session.inputEnded()
            case .shutdown: return session.shutdown()
            case .idleTimedOut: return session.idleTimedOut()
            case .lost: return session.connectionLost()
            }
        }
    }

    static func writes(_ s: String...) -> [[UInt8]] { s.map { Array($0.utf8) } }

    @Test("A reply with nothing owed is written at once; the connection stays open")
    func immediateReply() {
        var r = Runner()
        #expect(r.session.mayWriteNow)
        #expect(r.run(.reply("a")) == Actions(writes: Self.writes("a")))
        #expect(r.run(.readEnded).isEmpty)
        #expect(r.session.acceptsRequests)
    }

    @Test("Replies computed later keep request order: later ready replies wait behind them")
    func pipelinedOrder() {
        var r = Runner()
        #expect(r.run(.await("slow")).isEmpty)
        #expect(!r.session.mayWriteNow)
        #expect(r.run(.reply("b")).isEmpty)
        #expect(r.run(.await("slow2")).isEmpty)
        #expect(r.run(.reply("d")).isEmpty)
        #expect(r.session.queuedBytes == 2)
        #expect(r.run(.complete("slow2", with: "c")).isEmpty, "its place is not at the head yet")
        #expect(r.run(.complete("slow", with: "a")) == Actions(writes: Self.writes("a", "b", "c", "d")))
        #expect(r.session.mayWriteNow)
        #expect(r.session.queuedBytes == 0)
    }

    @Test("Delivery pauses at the pending limit and resumes when a reply completes")
    func pendingLimit() {
        var r = Runner(maxPending: 2)
        #expect(r.run(.await("a")).isEmpty)
        #expect(r.run(.await("b")) == Actions(delivery: .pause))
        #expect(r.run(.complete("a", with: "A")) == Actions(writes: Self.writes("A"), delivery: .resume))
        #expect(r.run(.complete("b", with: "B")) == Actions(writes: Self.writes("B")))
    }

    @Test("The original form: the read's requests are answered, then reading stops and the connection closes")
    func originalFormBatch() {
        var r = Runner()
        r.session.originalFormRequest()
        #expect(r.run(.reply("a")) == Actions(writes: Self.writes("a")))
        r.session.originalFormRequest()
        #expect(r.run(.await("w")).isEmpty)
        #expect(r.run(.readEnded) == Actions(stopReading: true))
        #expect(!r.session.acceptsRequests)
        #expect(r.run(.complete("w", with: "b")) == Actions(writes: Self.writes("b"), close: true))
    }

    @Test("An original-form request with nothing owed closes right after its read")
    func originalFormImmediateClose() {
        var r = Runner()
        r.session.originalFormRequest()
        _ = r.run(.reply("a"))
        #expect(r.run(.readEnded) == Actions(stopReading: true, close: true))
        #expect(r.run(.reply("late")).isEmpty, "nothing happens once closed")
    }

    @Test("An original-form error on a pending request closes after the replies before it and withdraws later work")
    func originalFormPendingError() {
        var r = Runner()
        #expect(r.run(.await("first")).isEmpty)
        #expect(r.run(.await("failing")).isEmpty)
        #expect(r.run(.await("after")).isEmpty)
        #expect(r.run(.completeByClosing("failing")) == Actions(cancel: ["after"]))
        #expect(!r.session.acceptsRequests)
        #expect(r.run(.complete("first", with: "1")) == Actions(writes: Self.writes("1"), close: true))
    }

    @Test("An error that closes waits for the replies owed before it")
    func closeAfterOwed() {
        var r = Runner()
        _ = r.run(.await("w"))
        #expect(r.run(.closeAfterOwed).isEmpty)
        #expect(!r.session.acceptsRequests)
        #expect(r.run(.complete("w", with: "x")) == Actions(writes: Self.writes("x"), close: true))
    }

    @Test("An error that closes with nothing owed closes at once")
    func closeAfterOwedIdle() {
        var r = Runner()
        #expect(r.run(.closeAfterOwed) == Actions(close: true))
        #expect(r.run(.closeAfterOwed).isEmpty, "the close is asked once")
    }

    @Test("Half-close: EOF finishes the replies owed, then closes")
    func halfClose() {
        var r = Runner()
        _ = r.run(.await("w"))
        #expect(r.run(.inputEnded).isEmpty)
        #expect(r.run(.complete("w", with: "x")) == Actions(writes: Self.writes("x"), close: true))
    }

    @Test("EOF with nothing owed closes at once")
    func halfCloseIdle() {
        var r = Runner()
        #expect(r.run(.inputEnded) == Actions(close: true))
    }

    @Test("Shutdown drains: the replies owed go out, then the connection closes")
    func shutdownDrain() {
        var r = Runner()
        _ = r.run(.await("w"))
        _ = r.run(.reply("after"))
        #expect(r.run(.shutdown).isEmpty)
        #expect(r.run(.complete("w", with: "x")) == Actions(writes: Self.writes("x", "after"), close: true))
    }

    @Test("The idle timeout closes at once")
    func idle() {
        var r = Runner()
        #expect(r.run(.idleTimedOut) == Actions(close: true))
        #expect(!r.session.acceptsRequests)
    }

    @Test("A lost connection cancels every reply still being computed; late results are ignored")
    func lostCancelsPending() {
        var r = Runner()
        _ = r.run(.await("a"))
        _ = r.run(.reply("b"))
        _ = r.run(.await("c"))
        #expect(r.run(.lost) == Actions(cancel: ["a", "c"]))
        #expect(r.run(.complete("a", with: "A")).isEmpty)
        #expect(!r.session.isWaiting(r.tickets["c"]!))
    }

    @Test("A reply waits for the one being computed even when it is an error reply")
    func errorReplyKeepsOrder() {
        var r = Runner()
        _ = r.run(.await("a"))
        #expect(r.run(.reply("-err")).isEmpty)
        #expect(r.run(.complete("a", with: "+ok")) == Actions(writes: Self.writes("+ok", "-err")))
    }
}

extension ConnectionSessionTests {
    @Test("Delivery pauses at the pending-bytes bound (inputs being computed and queued replies) and resumes below it")
    func pendingBytesBound() {
        var s = ConnectionSession<String>(configuration: .init(maxPendingRequests: 64, maxPendingBytes: 100))
        let (a, first) = s.await("a", cost: 60)
        #expect(first.isEmpty)
        let (_, second) = s.await("b", cost: 50)
        #expect(second == SessionActions(delivery: .pause))
        #expect(s.pendingBytes == 110)
        let done = s.complete(a, with: Array("x".utf8))
        #expect(done == SessionActions(writes: [Array("x".utf8)], delivery: .resume))
        #expect(s.pendingBytes == 50)
    }

    @Test("The server's budget throttles a connection until released, whatever its own bounds")
    func throttled() {
        var s = ConnectionSession<String>(configuration: .init(maxPendingRequests: 64))
        #expect(s.setThrottled(true) == SessionActions(delivery: .pause))
        #expect(s.setThrottled(false) == SessionActions(delivery: .resume))
    }
}
