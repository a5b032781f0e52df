import Testing
import XformClient
import XformCore
import XformTesting

@Suite("RetryingCall")
struct RetryingCallTests {
    @Test("An operation that fails three times succeeds on the fourth attempt, at the backoff's delays")
    func succeedsAfterFailures() {
        let clock = ManualClock()
        let flaky = Flaky(clock: clock, failures: 3)
        var retries: [(Int, AttemptError?, Duration)] = []
        let call = RetryingCall(
            clock: clock, onRetry: { attempt, error, delay in retries.append((attempt, error as? AttemptError, delay)) },
            operation: flaky.call)
        let outcome = FiredResult(call.start())

        // Even the immediate first attempt goes through the clock.
        #expect(flaky.callTimes.isEmpty)
        #expect(clock.pendingCalls.map(\.deadline) == [.zero])
        clock.advance(by: .zero)
        #expect(flaky.callTimes == [.zero])
        clock.advance(by: ms(9))
        #expect(flaky.callTimes.count == 1)
        clock.advance(by: ms(1))
        #expect(flaky.callTimes == [.zero, ms(10)])
        clock.advance(by: ms(20))
        #expect(flaky.callTimes == [.zero, ms(10), ms(30)])
        #expect(outcome.results.isEmpty)
        clock.advance(by: ms(40))
        #expect(flaky.callTimes == [.zero, ms(10), ms(30), ms(70)])
        #expect(outcome.value == "done")
        #expect(outcome.results.count == 1)
        #expect(call.attempts == 4)
        #expect(retries.map(\.0) == [1, 2, 3])
        #expect(retries.map(\.1) == [1, 2, 3].map { AttemptError(attempt: $0) })
        #expect(retries.map(\.2) == [ms(10), ms(20), ms(40)])
        #expect((call.firstFailure as? AttemptError)?.attempt == 1)
        #expect((call.lastFailure as? AttemptError)?.attempt == 3)
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("A failure shouldRetry rejects fails the call at once, after exactly one attempt, unwrapped")
    func nonRetryableFailsAtOnce() {
        let clock = ManualClock()
        var calls = 0
        var retried = false
        let call = RetryingCall<String>(
            clock: clock, shouldRetry: { ($0 as? AttemptError)?.transient ?? false },
            onRetry: { _, _, _ in retried = true },
            operation: {
                calls += 1
                return fail(AttemptError(attempt: calls, transient: false))
            })
        let outcome = FiredResult(call.start())
        clock.runUntilIdle()
        #expect(calls == 1)
        #expect(outcome.error as? AttemptError == AttemptError(attempt: 1, transient: false))
        #expect(!retried)
        #expect(clock.pendingCalls.isEmpty)
        clock.advance(by: .seconds(60))
        #expect(calls == 1)
    }

    @Test("A definitive failure after some transient ones ends the retries with that failure")
    func definitiveAfterTransient() {
        let clock = ManualClock()
        var calls = 0
        let call = RetryingCall<String>(
            clock: clock, shouldRetry: { ($0 as? AttemptError)?.transient ?? false },
            operation: {
                calls += 1
                return fail(AttemptError(attempt: calls, transient: calls < 3))
            })
        let outcome = FiredResult(call.start())
        clock.runUntilIdle()
        #expect(calls == 3)
        #expect(outcome.error as? AttemptError == AttemptError(attempt: 3, transient: false))
    }

    @Test("When the attempts run out the call fails with RetryExhaustedError carrying the first and last failures")
    func exhaustion() {
        let clock = ManualClock()
        let flaky = Flaky(clock: clock, failures: .max)
        let call = RetryingCall(clock: clock, operation: flaky.call)
        let outcome = FiredResult(call.start())
        clock.runUntilIdle()
        #expect(flaky.callTimes.count == 10)
        #expect(flaky.callTimes.last == ms(5110))
        let error = try? #require(outcome.error as? RetryExhaustedError)
        #expect(error?.attempts == 10)
        #expect(error?.reason == .attempts)
        #expect(error?.elapsed == ms(5110))
        #expect(error?.firstFailure as? AttemptError == AttemptError(attempt: 1))
        #expect(error?.lastFailure as? AttemptError == AttemptError(attempt: 10))
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("A backoff of one attempt makes one attempt and reports exhaustion")
    func onceExhausts() {
        let clock = ManualClock()
        let flaky = Flaky(clock: clock, failures: 1)
        let outcome = FiredResult(RetryingCall(clock: clock, backoff: .once, operation: flaky.call).start())
        clock.runUntilIdle()
        #expect(flaky.callTimes == [.zero])
        #expect((outcome.error as? RetryExhaustedError)?.attempts == 1)
    }

    @Test("The elapsed cap counts the time attempts take, and gives up before starting too late")
    func elapsedCapIncludesAttemptTime() {
        let clock = ManualClock()
        var starts: [Duration] = []
        let backoff = Backoff.sequence(Array(repeating: .zero, count: 100), maxElapsed: ms(2500))
        let call = RetryingCall<Int>(clock: clock, backoff: backoff) {
            starts.append(clock.now)
            // Each attempt takes a second to fail.
            return deferLater(clock, .seconds(1)) { throw AttemptError(attempt: starts.count) }
        }
        let outcome = FiredResult(call.start())
        clock.runUntilIdle()
        #expect(starts == [.zero, .seconds(1), .seconds(2)])
        let error = outcome.error as? RetryExhaustedError
        #expect(error?.reason == .elapsed)
        #expect(error?.attempts == 3)
        #expect(error?.elapsed == .seconds(3))
        #expect(error?.lastFailure as? AttemptError == AttemptError(attempt: 3))
    }

    @Test("Cancelling during a backoff wait cancels the timer, and no attempt follows")
    func cancelDuringWait() {
        let clock = ManualClock()
        let flaky = Flaky(clock: clock, failures: .max)
        let call = RetryingCall(clock: clock, operation: flaky.call)
        let d = call.start()
        let outcome = FiredResult(d)
        clock.advance(by: .zero)
        #expect(flaky.callTimes.count == 1)
        #expect(clock.pendingCalls.count == 1)
        d.cancel()
        #expect(clock.pendingCalls.isEmpty)
        #expect(outcome.error is CancelledError)
        clock.advance(by: .seconds(600))
        d.cancel()
        #expect(flaky.callTimes.count == 1)
        #expect(outcome.results.count == 1)
        #expect(call.attempts == 1)
    }

    @Test("Cancelling before the first attempt means the operation is never called")
    func cancelBeforeFirstAttempt() {
        let clock = ManualClock()
        let flaky = Flaky(clock: clock, failures: 0)
        let d = RetryingCall(clock: clock, operation: flaky.call).start()
        let outcome = FiredResult(d)
        d.cancel()
        clock.advance(by: .seconds(1))
        #expect(flaky.callTimes.isEmpty)
        #expect(clock.pendingCalls.isEmpty)
        #expect(outcome.error is CancelledError)
    }

    @Test("Cancelling during an attempt in flight cancels that attempt's Deferred")
    func cancelDuringAttempt() {
        let clock = ManualClock()
        var attempts: [Deferred<String>] = []
        var cancelledAttempts = 0
        let call = RetryingCall<String>(clock: clock) {
            let d = Deferred<String>(canceller: { _ in cancelledAttempts += 1 })
            attempts.append(d)
            return d
        }
        let d = call.start()
        let outcome = FiredResult(d)
        clock.advance(by: .zero)
        #expect(attempts.count == 1)
        let attemptOutcome = FiredResult(attempts[0])
        #expect(clock.pendingCalls.isEmpty)
        d.cancel()
        #expect(cancelledAttempts == 1)
        #expect(attemptOutcome.error is CancelledError)
        #expect(outcome.error is CancelledError)
        #expect(outcome.results.count == 1)
        clock.advance(by: .seconds(600))
        #expect(attempts.count == 1)
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("A result arriving after cancellation is ignored")
    func lateResultIgnored() {
        let clock = ManualClock()
        // A canceller that fires a success: the attempt then "succeeds" while being cancelled.
        let call = RetryingCall<String>(clock: clock) {
            Deferred<String>(canceller: { d in try? d.callback("too late") })
        }
        let d = call.start()
        let outcome = FiredResult(d)
        clock.advance(by: .zero)
        d.cancel()
        #expect(outcome.results.count == 1)
        #expect(outcome.error is CancelledError)
    }

    @Test("Cancelling from inside onRetry stops the retries")
    func cancelFromOnRetry() {
        let clock = ManualClock()
        let flaky = Flaky(clock: clock, failures: .max)
        var d: Deferred<String>?
        let call = RetryingCall(clock: clock, onRetry: { _, _, _ in d?.cancel() }, operation: flaky.call)
        d = call.start()
        let outcome = FiredResult(d!)
        clock.runUntilIdle()
        #expect(flaky.callTimes.count == 1)
        #expect(outcome.error is CancelledError)
        #expect(clock.pendingCalls.isEmpty)
    }

    @Test("An operation that throws synchronously counts as a failed attempt and is retried")
    func synchronousThrow() {
        let clock = ManualClock()
        var calls = 0
        let call = RetryingCall<Int>(clock: clock) {
            calls += 1
            if calls < 3 { throw AttemptError(attempt: calls) }
            return succeed(42)
        }
        let outcome = FiredResult(call.start())
        clock.runUntilIdle()
        #expect(calls == 3)
        #expect(outcome.value == 42)
        #expect((call.firstFailure as? AttemptError)?.attempt == 1)
        #expect((call.lastFailure as? AttemptError)?.attempt == 2)
    }

    @Test("Attempts that fail later, not synchronously, are retried the same way")
    func asynchronousFailures() {
        let clock = ManualClock()
        var starts: [Duration] = []
        let call = RetryingCall<Int>(clock: clock, backoff: Backoff(maxAttempts: 3)) {
            starts.append(clock.now)
            let n = starts.count
            return deferLater(clock, ms(5)) {
                if n < 3 { throw AttemptError(attempt: n) }
                return n
            }
        }
        let outcome = FiredResult(call.start())
        clock.runUntilIdle()
        // 0 (attempt), +5 ms failure, +10 ms wait, +5 ms failure, +20 ms wait.
        #expect(starts == [.zero, ms(15), ms(40)])
        #expect(outcome.value == 3)
        #expect(clock.now == ms(45))
    }

    @Test("A hundred thousand immediate synchronous failures with zero delays do not grow the stack")
    func zeroDelayStorm() {
        let clock = ManualClock()
        var calls = 0
        let n = 100_000
        let call = RetryingCall<Int>(clock: clock, backoff: Backoff(initialDelay: .zero, maxAttempts: n)) {
            calls += 1
            return fail(AttemptError(attempt: calls))
        }
        let outcome = FiredResult(call.start())
        clock.advance(by: .zero)
        #expect(calls == n)
        #expect(clock.now == .zero)
        let error = outcome.error as? RetryExhaustedError
        #expect(error?.attempts == n)
        #expect(error?.firstFailure as? AttemptError == AttemptError(attempt: 1))
        #expect(error?.lastFailure as? AttemptError == AttemptError(attempt: n))
    }

    @Test("A finished or cancelled call leaves nothing behind")
    func noLeaks() {
        let clock = ManualClock()
        weak var finished: RetryingCall<String>?
        weak var cancelled: RetryingCall<String>?
        var keep: [Deferred<String>] = []
        do {
            let flaky = Flaky(clock: clock, failures: 2)
            let a = RetryingCall(clock: clock, operation: flaky.call)
            finished = a
            keep.append(a.start())
            let b = RetryingCall<String>(clock: clock) { Deferred<String>() }
            cancelled = b
            keep.append(b.start())
        }
        clock.runUntilIdle()
        keep[1].cancel()
        let outcomes = keep.map(FiredResult.init)
        #expect(outcomes[0].value == "done")
        #expect(outcomes[1].error is CancelledError)
        #expect(finished == nil)
        #expect(cancelled == nil)
        #expect(clock.pendingCalls.isEmpty)
    }
}
