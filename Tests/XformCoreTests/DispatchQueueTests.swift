// txrdq's ResizableDispatchQueue and DeferredPriorityQueue (Terry Jones, "A resizable dispatch
// queue for Twisted", seed 001), with the post's SMS example on the manual clock.
import Testing
import XformCore
import XformTesting

/// A queued object for the priority queue tests.
final class Item {
    let name: String
    init(_ name: String) { self.name = name }
}

@Suite("DeferredPriorityQueue")
struct DeferredPriorityQueueTests {
    @Test("Elements come out most important first, equal priorities in put order")
    func order() throws {
        let q = DeferredPriorityQueue<Item>()
        for (name, p) in [("a", 5), ("b", 1), ("c", 5), ("d", 0), ("e", 1)] { try q.put(Item(name), priority: p) }
        var out: [String] = []
        while q.count > 0 { out.append(successResult(of: try q.get())!.name) }
        #expect(out == ["d", "b", "e", "a", "c"])
    }

    @Test("A waiting get is given the next put at once; a cancelled get is withdrawn")
    func waiting() throws {
        let q = DeferredPriorityQueue<Item>()
        let g1 = try q.get()
        let g2 = try q.get()
        g1.cancel()
        _ = failureResult(of: g1, as: CancelledError.self)
        #expect(q.waitingCount == 1)
        try q.put(Item("x"), priority: 9)
        #expect(successResult(of: g2)?.name == "x")
        #expect(q.count == 0)
    }

    @Test("Delete, reprioritise, duplicates and limits")
    func editing() throws {
        let q = DeferredPriorityQueue<Item>(size: 3, backlog: 1)
        let a = Item("a"), b = Item("b"), c = Item("c")
        try q.put(a, priority: 1)
        try q.put(b, priority: 2)
        try q.put(c, priority: 3)
        #expect(throws: AlreadyQueuedError.self) { try q.put(a, priority: 0) }
        #expect(throws: QueueOverflowError.self) { try q.put(Item("d"), priority: 0) }
        #expect(q.reprioritize(c, priority: 0))
        #expect(q.delete(a))
        #expect(!q.delete(a))
        #expect(q.contents.map(\.name) == ["c", "b"])
        #expect(successResult(of: try q.get())?.name == "c")
        #expect(successResult(of: try q.get())?.name == "b")
        _ = try q.get()
        #expect(throws: QueueOverflowError.self) { _ = try q.get() }
    }
}

/// The post's SMS sender: each message takes one second of (manual) clock time.
final class SMSGateway {
    let clock: ManualClock
    var sent: [String] = []
    var cancelled: [String] = []
    init(clock: ManualClock) { self.clock = clock }

    func send(_ sms: (number: Int, message: String)) -> Deferred<String> {
        var call: (any DelayedCall)?
        let d = Deferred<String>(canceller: { [self] _ in
            call?.cancel()
            cancelled.append(sms.message)
        })
        call = clock.callLater(.seconds(1)) { [self] in
            sent.append(sms.message)
            try? d.callback("sent \(sms.message) to \(sms.number)")
        }
        return d
    }
}

@Suite("ResizableDispatchQueue")
struct ResizableDispatchQueueTests {
    typealias Job = DispatchJob<(number: Int, message: String), String>

    @Test("The post's SMS example: width, cancel, inspect, reprioritise, scheduled resize, pause, resume, stop")
    func smsExample() throws {
        let clock = ManualClock()
        let gateway = SMSGateway(clock: clock)
        // Create a queue that will allow 5 simultaneous underway jobs.
        let rdq = ResizableDispatchQueue(width: 5, clock: clock, work: gateway.send)
        var results: [String] = []
        var failures: [String] = []
        func put(_ n: Int, _ message: String, priority: Int = 5) throws -> Deferred<Job> {
            let d = try rdq.put((n, message), priority: priority)
            d.addCallbacks(
                { job in results.append(job.value!); return job },
                { error in
                    let f = error as! DispatchJobFailure<(number: Int, message: String), String>
                    failures.append("\(f.job.argument.message): \(f.job.state)")
                    return f.job  // handled: recorded above
                })
            return d
        }
        let d1 = try put(2_127_399_921, "Hello...")
        let d2 = try put(5_052_929_919, "Test...")
        var more: [Deferred<Job>] = []
        for i in 3...8 { more.append(try put(1000 + i, "m\(i)")) }
        #expect(rdq.underwayCount == 5 && rdq.pendingCount == 3)

        // Cancel the second job (underway): its Deferred fails with the job record.
        d2.cancel()
        #expect(gateway.cancelled == ["Test..."])
        #expect(failures == ["Test...: cancelled"])
        #expect(rdq.underwayCount == 5 && rdq.pendingCount == 2)  // m6 launched in its place

        // Widen the outgoing pipeline to 10 simultaneous jobs, then turn it down to 7.
        rdq.width = 10
        #expect(rdq.underwayCount == 7 && rdq.pendingCount == 0)
        rdq.width = 7
        for i in 9...13 { more.append(try put(1000 + i, "m\(i)")) }
        #expect(rdq.underwayCount == 7)

        // A copy of the pending jobs; cancel one, reprioritise another.
        let jobs = rdq.pending
        #expect(jobs.map(\.argument.message) == ["m9", "m10", "m11", "m12", "m13"])
        jobs[0].cancel()
        #expect(jobs[0].state == .cancelled && jobs[0].stoppedAt == .zero)
        #expect(rdq.reprioritize(jobs[3], priority: -1))
        #expect(rdq.pending.map(\.argument.message) == ["m12", "m10", "m11", "m13"])
        #expect(!rdq.reprioritize(rdq.underway[0], priority: 0))

        // Arrange to increase the number of jobs in one hour.
        clock.callLater(.seconds(3600)) { rdq.width = 20 }

        // One second on: the 7 underway jobs are sent, the 4 pending ones launch.
        clock.advance(by: .seconds(1))
        #expect(gateway.sent == ["Hello...", "m3", "m4", "m5", "m6", "m7", "m8"])
        #expect(rdq.underway.map(\.argument.message) == ["m12", "m10", "m11", "m13"])
        let job1 = successResult(of: d1)!
        #expect(job1.state == .succeeded && job1.queuedAt == .zero && job1.launchedAt == .zero)
        #expect(job1.stoppedAt == .seconds(1) && job1.value == "sent Hello... to 2127399921")

        // Pause processing: underway jobs finish, new ones wait.
        let paused = rdq.pause()
        #expect(!paused.called)
        for i in 14...16 { more.append(try put(1000 + i, "m\(i)", priority: i)) }
        clock.advance(by: .seconds(1))
        #expect(paused.called)
        #expect(rdq.underwayCount == 0 && rdq.pendingCount == 3)

        // Resume processing, with a new width of 8... then shut down cleanly, waiting for the
        // underway jobs and saving the ones not yet processed.
        try rdq.resume(width: 2)
        #expect(rdq.underway.map(\.argument.message) == ["m14", "m15"])
        rdq.width = 8  // paused is over: widening launches the last one
        #expect(rdq.underwayCount == 3)
        rdq.width = 1
        for i in 17...18 { more.append(try put(1000 + i, "m\(i)")) }
        var saved: [String] = []
        rdq.stop().addCallback { jobs in saved = jobs.map(\.argument.message); return jobs }
        #expect(throws: DispatchQueueStoppedError.self) { _ = try rdq.put((1, "late")) }
        #expect(throws: DispatchQueueStoppedError.self) { try rdq.resume() }
        #expect(saved.isEmpty)
        clock.advance(by: .seconds(1))
        #expect(saved == ["m17", "m18"])
        #expect(failures.suffix(2) == ["m17: stopped", "m18: stopped"])
        #expect(gateway.sent.suffix(3) == ["m14", "m15", "m16"])
        // The scheduled resize runs against a stopped queue harmlessly.
        clock.advance(by: .seconds(3600))
        #expect(rdq.underwayCount == 0)
        #expect(more.allSatisfy { $0.called })
    }

    @Test("A job function that fires at once, or fails, keeps the queue moving")
    func synchronousJobs() throws {
        let clock = ManualClock()
        let rdq = ResizableDispatchQueue<Int, Int>(width: 1, clock: clock) { n in
            n % 2 == 0 ? succeed(n * 10) : fail(PyException("odd \(n)"))
        }
        var out: [String] = []
        for n in 1...4 {
            try rdq.put(n).addCallbacks(
                { job in out.append("\(job.value!)"); return job },
                { e in out.append("\((e as! DispatchJobFailure<Int, Int>).underlying)"); throw e })
                .addErrback { e in (e as! DispatchJobFailure<Int, Int>).job }
        }
        #expect(out == ["odd 1", "20", "odd 3", "40"])
        #expect(rdq.underwayCount == 0 && rdq.pendingCount == 0)
    }

    @Test("stop(cancelUnderway:) cancels the underway jobs and returns them with the pending ones")
    func stopCancelling() throws {
        let clock = ManualClock()
        let gateway = SMSGateway(clock: clock)
        let rdq = ResizableDispatchQueue(width: 1, clock: clock, work: gateway.send)
        let a = try rdq.put((1, "a"))
        let b = try rdq.put((2, "b"))
        let stopped = rdq.stop(cancelUnderway: true)
        let jobs = successResult(of: stopped)!
        #expect(jobs.map(\.argument.message) == ["a", "b"])
        #expect(jobs.map(\.state) == [.cancelled, .stopped])
        #expect(failureResult(of: a, as: DispatchJobFailure<(number: Int, message: String), String>.self)?
            .underlying is CancelledError)
        #expect(failureResult(of: b, as: DispatchJobFailure<(number: Int, message: String), String>.self)?
            .underlying is DispatchQueueStoppedError)
    }
}

