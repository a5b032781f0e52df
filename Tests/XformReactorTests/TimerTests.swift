import Foundation
import Glibc
import Testing
import XformCore
import XformReactor

@Suite("EpollReactor time and thread calls")
struct TimerTests {
    @Test("Delayed calls fire in deadline order, cancelled ones never fire, and reset reschedules")
    func deadlineOrder() async {
        let log = Locked<[String]>([])
        let flags = Locked<[String: Bool]>([:])
        let run = await withReactor { reactor in
            let record = { (s: String) in log.update { $0.append(s) } }
            reactor.callLater(.milliseconds(30)) { record("c") }
            reactor.callLater(.milliseconds(10)) { record("a") }
            reactor.callLater(.milliseconds(20)) { record("b") }
            reactor.callLater(.zero) { record("z1") }
            reactor.callLater(.zero) { record("z2") }
            let cancelled = reactor.callLater(.milliseconds(15)) { record("cancelled") }
            cancelled.cancel()
            let moved = reactor.callLater(.milliseconds(5)) { record("reset") }
            moved.reset(.milliseconds(25))
            let ranCall = reactor.callLater(.milliseconds(1)) {}
            reactor.callLater(.milliseconds(40)) {
                flags.update {
                    $0["cancelledActive"] = cancelled.isActive
                    $0["movedActive"] = moved.isActive
                    $0["ranActive"] = ranCall.isActive
                }
                reactor.stop()
            }
        }
        #expect(!run.timedOut)
        #expect(log.value == ["z1", "z2", "a", "b", "reset", "c"])
        #expect(flags.value == ["cancelledActive": false, "movedActive": false, "ranActive": false])
    }

    @Test("A delayed call releases its closure once it has run or was cancelled")
    func closureReleased() async {
        final class Token {}
        let released = Locked<[Bool]>([])
        let run = await withReactor { reactor in
            weak var ranToken: Token?
            weak var cancelledToken: Token?
            do {
                let t1 = Token()
                let t2 = Token()
                ranToken = t1
                cancelledToken = t2
                reactor.callLater(.zero) { _ = t1 }
                let c = reactor.callLater(.seconds(60)) { _ = t2 }
                c.cancel()
            }
            reactor.callLater(.milliseconds(2)) {
                released.update { $0 = [ranToken == nil, cancelledToken == nil] }
                reactor.stop()
            }
        }
        #expect(!run.timedOut)
        #expect(released.value == [true, true])
    }

    @Test("Scheduled targets fire in deadline order with the delayed calls, cancelled ones never, and are released")
    func targets() async {
        final class Target: TimerTarget {
            let name: String
            let record: (String) -> Void
            init(_ name: String, _ record: @escaping (String) -> Void) {
                self.name = name
                self.record = record
            }
            func timerFired() { record(name) }
        }
        let log = Locked<[String]>([])
        let released = Locked<[Bool]>([])
        let run = await withReactor { reactor in
            let record = { (s: String) in log.update { $0.append(s) } }
            weak var firedTarget: Target?
            weak var cancelledTarget: Target?
            do {
                let late = Target("late", record)
                let cancelled = Target("cancelled", record)
                firedTarget = late
                cancelledTarget = cancelled
                _ = reactor.schedule(late, atNanoseconds: reactor.nowNanoseconds + 20_000_000)
                _ = reactor.schedule(Target("early", record), atNanoseconds: reactor.nowNanoseconds + 5_000_000)
                let token = reactor.schedule(cancelled, atNanoseconds: reactor.nowNanoseconds + 10_000_000)
                reactor.cancelTimer(token)
                reactor.cancelTimer(token)  // a second cancel does nothing
            }
            reactor.callLater(.milliseconds(12)) { record("call") }
            reactor.callLater(.milliseconds(40)) {
                released.update { $0 = [firedTarget == nil, cancelledTarget == nil] }
                reactor.stop()
            }
        }
        #expect(!run.timedOut)
        #expect(log.value == ["early", "call", "late"])
        #expect(released.value == [true, true])
    }

    @Test("A thousand delayed calls with scattered delays run in non-decreasing deadline order")
    func manyTimersOrdered() async {
        let result = Locked<(count: Int, ordered: Bool)>((0, true))
        let run = await withReactor { reactor in
            var last: Duration = .zero
            var count = 0
            var ordered = true
            var calls: [any DelayedCall] = []
            for i in 0..<1000 {
                let delay = Duration.microseconds((i * 7919) % 5000)
                calls.append(
                    reactor.callLater(delay) {
                        count += 1
                        if calls[i].deadline < last { ordered = false }
                        last = calls[i].deadline
                        if count == 900 {
                            result.update { $0 = (count, ordered) }
                            reactor.stop()
                        }
                    })
            }
            // Cancel every tenth: exactly 900 must run.
            for i in stride(from: 0, to: 1000, by: 10) { calls[i].cancel() }
        }
        #expect(!run.timedOut)
        #expect(result.value.count == 900)
        #expect(result.value.ordered)
    }

    @Test("Cancelling most pending calls and resetting others loses and reorders none of the rest")
    func compactionKeepsOrder() async {
        struct Seen: Sendable {
            var fired: [Int] = []
            var ordered = true
        }
        let seen = Locked(Seen())
        let run = await withReactor { reactor in
            var calls: [any DelayedCall] = []
            var last: Duration = .zero
            var expected = Set<Int>()
            for i in 0..<1000 {
                calls.append(
                    reactor.callLater(.microseconds((i * 7919) % 3000)) {
                        let d = calls[i].deadline
                        seen.update {
                            $0.fired.append(i)
                            if d < last { $0.ordered = false }
                        }
                        last = d
                    })
            }
            for i in 0..<1000 {
                if i % 10 < 7 {
                    calls[i].cancel()  // 700 stale entries: the heap compacts
                } else {
                    expected.insert(i)
                    if i % 10 == 9 { calls[i].reset(.microseconds(3000 + i)) }
                }
            }
            reactor.callLater(.milliseconds(10)) {
                #expect(Set(seen.value.fired) == expected)
                reactor.stop()
            }
        }
        #expect(!run.timedOut)
        #expect(seen.value.fired.count == 300)
        #expect(seen.value.ordered)
    }

    @Test("callFromThread from 8 threads x 10,000 calls runs every call on the reactor thread, in order per thread")
    func callFromThreadStress() async {
        struct Tally: Sendable {
            var count = 0
            var offThread = 0
            var outOfOrder = 0
            var lastSeen = [Int](repeating: -1, count: 8)
        }
        let tally = Locked(Tally())
        let run = await withReactor { reactor in
            let door = reactor.threadingHandle
            for t in 0..<8 {
                let thread = Thread {
                    for i in 0..<10_000 {
                        door.callFromThread {
                            let done = tally.update { s -> Bool in
                                s.count += 1
                                if !door.isReactorThread { s.offThread += 1 }
                                if s.lastSeen[t] != i - 1 { s.outOfOrder += 1 }
                                s.lastSeen[t] = i
                                return s.count == 80_000
                            }
                            if done { door.requestStop() }
                        }
                    }
                }
                thread.start()
            }
        }
        #expect(!run.timedOut)
        #expect(tally.value.count == 80_000)
        #expect(tally.value.offThread == 0)
        #expect(tally.value.outOfOrder == 0)
    }

    @Test("callFromThread on the reactor thread queues the call instead of running it at once")
    func callFromThreadNeverSynchronous() async {
        let seen = Locked<[String]>([])
        let run = await withReactor { reactor in
            reactor.threading.callFromThread {
                seen.update { $0.append("queued call ran") }
            }
            seen.update { $0.append("after callFromThread") }
            reactor.callLater(.milliseconds(1)) { reactor.stop() }
        }
        #expect(!run.timedOut)
        #expect(seen.value == ["after callFromThread", "queued call ran"])
    }

    @Test("deferToThread runs the work off the reactor thread and fires its Deferred on the reactor thread")
    func deferToThread() async {
        struct Seen: Sendable {
            var workOnReactor: Bool?
            var callbackOnReactor: Bool?
            var value: Int?
            var error: String?
        }
        struct Boom: Error {}
        let seen = Locked(Seen())
        let run = await withReactor { reactor in
            let door = reactor.threadingHandle
            let ok = reactor.deferToThread { () -> Int in
                seen.update { $0.workOnReactor = door.isReactorThread }
                return 42
            }
            let bad = reactor.deferToThread { () -> Int in throw Boom() }
            var results = 0
            let arrived = {
                results += 1
                if results == 2 { reactor.stop() }
            }
            ok.addCallback { v in
                seen.update {
                    $0.value = v
                    $0.callbackOnReactor = door.isReactorThread
                }
                arrived()
                return v
            }
            bad.addErrback { (error: any Error) -> Int in
                seen.update { $0.error = "\(error)" }
                arrived()
                return 0
            }
        }
        #expect(!run.timedOut)
        #expect(seen.value.workOnReactor == false)
        #expect(seen.value.callbackOnReactor == true)
        #expect(seen.value.value == 42)
        #expect(seen.value.error?.contains("Boom") == true)
    }

    @Test("stop() runs the shutdown triggers and run() returns only after their Deferreds fire")
    func shutdownTriggers() async {
        let log = Locked<[String]>([])
        let run = await withReactor { reactor in
            reactor.addShutdownTrigger {
                log.update { $0.append("trigger started") }
                return deferLater(reactor, .milliseconds(20)) { log.update { $0.append("trigger done") } }
            }
            reactor.addShutdownTrigger {
                log.update { $0.append("failing trigger") }
                struct Nope: Error {}
                return fail(Nope())
            }
            reactor.callLater(.zero) {
                log.update { $0.append("stop") }
                reactor.stop()
                reactor.stop()
            }
        }
        log.update { $0.append("run returned") }
        #expect(!run.timedOut)
        #expect(log.value == ["stop", "trigger started", "failing trigger", "trigger done", "run returned"])
    }

    @Test("A signal blocked on the reactor thread is delivered to handleSignals on that thread")
    func signalDelivery() async {
        // Only the reactor thread blocks SIGUSR2, and the signal is sent to that thread alone
        // (pthread_kill), so no other thread of the test process is affected.
        let seen = Locked<[Int32]>([])
        let run = await withReactor { reactor in
            try EpollReactor.blockSignals([SIGUSR2])
            let door = reactor.threadingHandle
            try reactor.handleSignals([SIGUSR2]) { signo in
                seen.update { $0.append(door.isReactorThread ? signo : -signo) }
                reactor.stop()
            }
            reactor.callLater(.zero) {
                _ = pthread_kill(pthread_self(), SIGUSR2)
            }
        }
        #expect(!run.timedOut)
        #expect(run.setupError == nil)
        #expect(seen.value == [SIGUSR2])
    }
}
