import Testing
import XformCore
import XformTesting

@Suite("EventSummarizer turns a flood of one event into a line per interval")
struct EventSummarizerTests {
    final class Lines {
        var lines: [String] = []
    }

    func make(_ clock: ManualClock, _ out: Lines) -> EventSummarizer {
        EventSummarizer(clock: clock, interval: .seconds(10), emit: { out.lines.append($0) }) { n, interval in
            "refused \(EventSummarizer.describe(n)) connections in the last \(EventSummarizer.describe(interval: interval))"
        }
    }

    @Test("The first event is logged in full and the rest of the flood as one summary per interval")
    func flood() {
        let clock = ManualClock()
        let out = Lines()
        let s = make(clock, out)
        for i in 0..<1235 { s.record("refused connection \(i)") }
        #expect(out.lines == ["refused connection 0"])
        clock.advance(by: .seconds(10))
        #expect(out.lines == ["refused connection 0", "refused 1,234 connections in the last 10 s"])
        for i in 0..<20 { s.record("refused connection \(i)") }
        clock.advance(by: .seconds(9))
        #expect(out.lines.count == 2)
        clock.advance(by: .seconds(1))
        #expect(out.lines.last == "refused 20 connections in the last 10 s")
        #expect(out.lines.count == 3)
    }

    @Test("After a quiet interval the next event is logged in full again")
    func quietResets() {
        let clock = ManualClock()
        let out = Lines()
        let s = make(clock, out)
        s.record("one")
        clock.advance(by: .seconds(10))
        #expect(out.lines == ["one"])  // nothing suppressed: no summary line
        #expect(clock.pendingCalls.isEmpty)
        s.record("two")
        #expect(out.lines == ["one", "two"])
    }

    @Test("A single event costs one line; the detail of a counted event is never built")
    func detailLazy() {
        let clock = ManualClock()
        let out = Lines()
        let s = make(clock, out)
        var built = 0
        func detail() -> String { built += 1; return "x" }
        for _ in 0..<100 { s.record(detail()) }
        #expect(built == 1)
        #expect(s.suppressed == 99)
        s.flush()
        #expect(out.lines == ["x", "refused 99 connections in the last 10 s"])
        #expect(s.suppressed == 0)
    }

    @Test("Counts and intervals are written for people")
    func formatting() {
        #expect(EventSummarizer.describe(0) == "0")
        #expect(EventSummarizer.describe(999) == "999")
        #expect(EventSummarizer.describe(1000) == "1,000")
        #expect(EventSummarizer.describe(1_234_567) == "1,234,567")
        #expect(EventSummarizer.describe(interval: .seconds(10)) == "10 s")
        #expect(EventSummarizer.describe(interval: .milliseconds(250)) == "250 ms")
    }
}
