/// Turns a flood of one repeated event into a few log lines: the first event of a quiet period
/// is logged in full, the ones after it are only counted, and every `interval` the count is
/// logged as one summary (`refused 1,234 connections in the last 10 s`). Issue 10 §4: 20,000
/// refused connections used to write 2.5 MB of log in 1.5 s.
///
/// It does no I/O: it hands lines to `emit` and keeps time with the injected reactor clock
/// (a `ManualClock` in tests). Confined to the reactor thread, like the clock.
///
/// A flood therefore costs at most one line per `interval`, plus the first; after
/// the flood stops, one last summary comes at most `interval` later, and the next event after a
/// whole quiet interval is logged in full again.
public final class EventSummarizer {
    /// How often a summary is written while events keep coming.
    public let interval: Duration
    let clock: any ReactorTime
    let emit: (String) -> Void
    let summary: (_ count: Int, _ interval: Duration) -> String
    /// Events counted but not yet reported.
    public private(set) var suppressed = 0
    var timer: (any DelayedCall)?

    /// Makes a summariser.
    ///
    /// - Parameters:
    ///   - clock: the reactor's clock.
    ///   - interval: the summary period (10 s by default).
    ///   - emit: writes one log line (the full first event, or a summary).
    ///   - summary: the summary line for `count` events in the last `interval`;
    ///     ``describe(_:)`` and ``describe(interval:)`` format the figures.
    public init(
        clock: any ReactorTime, interval: Duration = .seconds(10), emit: @escaping (String) -> Void,
        summary: @escaping (_ count: Int, _ interval: Duration) -> String
    ) {
        precondition(interval > .zero, "the summary interval must be positive")
        self.clock = clock
        self.interval = interval
        self.emit = emit
        self.summary = summary
    }

    deinit { timer?.cancel() }

    /// Records one event. `detail` (evaluated only when used) is logged if this is the first
    /// event since a quiet interval; otherwise the event is counted for the next summary.
    public func record(_ detail: @autoclosure () -> String) {
        if timer == nil {
            emit(detail())
            arm()
        } else {
            suppressed += 1
        }
    }

    /// Writes the pending summary now, if any (before shutdown, so no count is lost).
    public func flush() {
        guard suppressed > 0 else { return }
        emit(summary(suppressed, interval))
        suppressed = 0
    }

    func arm() {
        timer = clock.callLater(interval) { [weak self] in self?.tick() }
    }

    func tick() {
        if suppressed > 0 {
            flush()
            arm()  // still flooding, perhaps: keep counting for one more interval
        } else {
            timer = nil  // a quiet interval: the next event is logged in full
        }
    }

    /// `1,234`: a count with thousands separators.
    public static func describe(_ count: Int) -> String {
        let digits = String(count.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return count < 0 ? "-" + out : out
    }

    /// `10 s`, `500 ms`: an interval in whole seconds when it is one, else in milliseconds.
    public static func describe(interval: Duration) -> String {
        let (seconds, attoseconds) = interval.components
        if attoseconds == 0 { return "\(seconds) s" }
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000) ms"
    }
}
