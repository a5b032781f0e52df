// txretry fidelity (seed 001, RetryingCall): what it logs, and exhaustion reported with the first
// failure itself.
import Testing
import XformClient
import XformCore
import XformTesting

@Suite("RetryingCall: txretry's logging and exhaustion")
struct RetryLoggingTests {
    @Test("Each ignored failure and running out of attempts are logged through the core logger")
    func logsLikeTxretry() {
        let clock = ManualClock()
        let log = InMemoryLogHandler()
        let flaky = Flaky(clock: clock, failures: 5)
        let outcome = FiredResult(
            RetryingCall(clock: clock, backoff: Backoff(maxAttempts: 3), logger: log.logger(system: "retry"), operation: flaky.call)
                .start())
        clock.runUntilIdle()
        #expect(log.messages == [
            "RetryingCall: ignoring AttemptError(attempt: 1, transient: true)",
            "RetryingCall: ignoring AttemptError(attempt: 2, transient: true)",
            "RetryingCall: ignoring AttemptError(attempt: 3, transient: true)",
            "RetryingCall: ran out of attempts after 3 attempt(s)",
        ])
        #expect(log.records.allSatisfy { $0.level == .info && $0.system == "retry" })
        #expect(outcome.error is RetryExhaustedError)
    }

    @Test("With exhaustion: .firstFailure the call fails with the first failure itself, as txretry does")
    func firstFailureItself() {
        let clock = ManualClock()
        let flaky = Flaky(clock: clock, failures: 5)
        let outcome = FiredResult(
            RetryingCall(clock: clock, backoff: Backoff(maxAttempts: 3), exhaustion: .firstFailure, operation: flaky.call).start())
        clock.runUntilIdle()
        #expect(outcome.error as? AttemptError == AttemptError(attempt: 1))
    }
}
