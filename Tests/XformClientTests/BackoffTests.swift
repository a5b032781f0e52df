import Testing
import XformClient
import XformCore

@Suite("Backoff")
struct BackoffTests {
    @Test("The default backoff is txretry's simpleBackoffIterator: 0, then 0.01 s doubling, 10 values")
    func defaultSequence() {
        #expect(Array(Backoff()) == [0, 10, 20, 40, 80, 160, 320, 640, 1280, 2560].map(ms))
        #expect(Array(Backoff.default) == Array(Backoff()))
        #expect(Backoff().delay(forAttempt: 0) == .zero)
        #expect(Backoff().delay(forAttempt: 9) == ms(2560))
        #expect(Backoff().delay(forAttempt: 10) == nil)
        #expect(Backoff().decide(attempt: 10) == .stop(.attempts))
    }

    @Test("Every attempt counts, the first immediate one included: maxAttempts 3 gives 3 delays")
    func attemptsIncludeFirst() {
        #expect(Array(Backoff(maxAttempts: 3)) == [.zero, ms(10), ms(20)])
        #expect(Array(Backoff.once) == [.zero])
    }

    @Test("Without now, the first delay is initialDelay itself, not initialDelay times factor")
    func firstNonZeroDelayIsInitialDelay() {
        let b = Backoff(initialDelay: .seconds(7), factor: 3, maxAttempts: 3, now: false)
        #expect(Array(b) == [.seconds(7), .seconds(21), .seconds(63)])
        #expect(Array(Backoff(initialDelay: .seconds(1), factor: 1.5, maxAttempts: 3))
            == [.zero, .seconds(1), .milliseconds(1500)])
    }

    @Test("Delays are capped at maxDelay and stay there")
    func capAtMaxDelay() {
        let b = Backoff(initialDelay: .seconds(1), factor: 3, maxDelay: .seconds(10), maxAttempts: 6, now: false)
        #expect(Array(b) == [1, 3, 9, 10, 10, 10].map { Duration.seconds($0) })
        // An initial delay above the cap is capped too.
        #expect(Backoff(initialDelay: .seconds(200), now: false).delay(forAttempt: 0) == .seconds(120))
    }

    @Test("Huge attempt numbers saturate at maxDelay instead of overflowing")
    func hugeAttemptsSaturate() {
        let b = Backoff(maxAttempts: nil)
        #expect(b.delay(forAttempt: 1_000_000) == .seconds(120))
        #expect(b.delay(forAttempt: Int.max - 1) == .seconds(120))
        #expect(Array(b.prefix(25)).last == .seconds(120))
        #expect(Backoff(initialDelay: .zero, maxAttempts: nil).delay(forAttempt: 5000) == .zero)
    }

    @Test("Full jitter multiplies each non-zero delay by the injected random value")
    func fullJitter() {
        let random = ScriptedRandom([0.5, 0.25, 0.0])
        let b = Backoff(maxAttempts: 4, jitter: .full(random: random.source))
        #expect(Array(b) == [.zero, ms(5), ms(5), .zero])
        // The zero delay of the first attempt draws no random value.
        #expect(random.draws.load(ordering: .relaxed) == 3)
    }

    @Test("Proportional jitter keeps each delay within plus or minus the fraction")
    func proportionalJitter() {
        let random = ScriptedRandom([0.0, 0.75, 0.5])
        let b = Backoff(maxAttempts: 4, jitter: .proportional(0.5, random: random.source))
        // 10 ms * (1 - 0.5), 20 ms * (1 + 0.25), 40 ms * 1
        #expect(Array(b) == [.zero, ms(5), ms(25), ms(40)])
    }

    @Test("Additive jitter adds spread times the random value, and maxDelay stays a hard ceiling")
    func additiveJitterAndCeiling() {
        let b = Backoff(
            initialDelay: .seconds(100), maxDelay: .seconds(120), maxAttempts: 3, now: false,
            jitter: .additive(.seconds(16), random: { 0.5 }))
        #expect(Array(b) == [.seconds(108), .seconds(120), .seconds(120)])
        let up = Backoff(maxAttempts: 2, now: true, jitter: .proportional(1, random: { 0.75 }))
            .limited(toElapsed: .seconds(1))
        #expect(Array(up) == [.zero, ms(15)])
    }

    @Test("Random values outside [0, 1) are clamped")
    func randomClamped() {
        #expect(Backoff(maxAttempts: 2, jitter: .full(random: { 7 })).delay(forAttempt: 1) == ms(10))
        #expect(Backoff(maxAttempts: 2, jitter: .full(random: { -1 })).delay(forAttempt: 1) == .zero)
        #expect(Backoff(maxAttempts: 2, jitter: .full(random: { .nan })).delay(forAttempt: 1) == .zero)
    }

    @Test("The elapsed cap stops before an attempt that would begin after maxElapsed")
    func elapsedCap() {
        let b = Backoff(maxElapsed: ms(70))
        // Starts at 0, 10, 30, 70 ms; the next would start at 150 ms.
        #expect(Array(b) == [.zero, ms(10), ms(20), ms(40)])
        #expect(b.decide(attempt: 4, elapsed: ms(70)) == .stop(.elapsed))
        #expect(b.decide(attempt: 3, elapsed: ms(30)) == .wait(ms(40)))
        #expect(b.decide(attempt: 3, elapsed: ms(31)) == .stop(.elapsed))
        #expect(Array(Backoff(maxAttempts: nil).limited(toElapsed: .seconds(1))).count == 7)
    }

    @Test("The first attempt is always made, whatever the elapsed cap")
    func firstAttemptDespiteCap() {
        let b = Backoff(now: false, maxElapsed: .zero)
        #expect(Array(b) == [ms(10)])
        #expect(b.decide(attempt: 0, elapsed: .seconds(99)) == .wait(ms(10)))
    }

    @Test("A custom sequence gives exactly its delays, one per attempt")
    func customSequence() {
        let b = Backoff.sequence([.zero, .seconds(1), .seconds(5)])
        #expect(Array(b) == [.zero, .seconds(1), .seconds(5)])
        #expect(b.delay(forAttempt: 3) == nil)
        #expect(b.decide(attempt: 3) == .stop(.attempts))
        #expect(Array(Backoff.sequence([.seconds(1), .seconds(5)], maxDelay: .seconds(2))) == [.seconds(1), .seconds(2)])
        #expect(Array(Backoff.sequence([.seconds(4), .seconds(4)], jitter: .full(random: { 0.5 }))) == [.seconds(2), .seconds(2)])
        var limited = Backoff.sequence([.seconds(1), .seconds(1), .seconds(1)])
        limited.maxAttempts = 2
        #expect(Array(limited) == [.seconds(1), .seconds(1)])
    }

    @Test("A backoff can be iterated more than once with the same result")
    func reiterable() {
        let b = Backoff()
        #expect(Array(b) == Array(b))
        var it = b.makeIterator()
        for _ in 0..<10 { #expect(it.next() != nil) }
        #expect(it.next() == nil)
        #expect(it.next() == nil)
    }
}
