import Foundation
import Glibc
import XformCore
import XformMetrics
import XformReactor
import XformServer

/// One extra event loop of `--reactors N` (issue 13, "All cores"): its own reactor, its own
/// ``ServerState`` (counters, sessions, limits) and its own ``TransformServer`` listening with
/// `SO_REUSEPORT` on the ports the first loop bound. Nothing on its request path is shared with
/// the other loops.
///
/// Built and bound on the main thread (before privileges are dropped and before its reactor
/// runs), then handed to its own thread, which runs the reactor. Afterwards the main thread
/// reaches it only through ``threading`` (thread-safe).
final class ServingLoop: @unchecked Sendable {
    // Unchecked: the reactor, state and server are touched by the main thread only before
    // ``run()`` starts the loop's thread, and afterwards only on that thread (via `threading`).
    let index: Int
    let reactor: EpollReactor
    let state: ServerState
    let server: TransformServer
    let threading: EpollThreading

    init(index: Int, reactor: EpollReactor, state: ServerState, server: TransformServer) {
        self.index = index
        self.reactor = reactor
        self.state = state
        self.server = server
        self.threading = reactor.threadingHandle
    }

    /// Starts the loop's thread; the reactor runs there until ``stop(then:)``.
    func run(board: LoopBoard) {
        let thread = Thread { [self] in
            board.publishEvery(LoopBoard.interval, loop: index, clock: reactor, state: state)
            withExtendedLifetime(server) { reactor.run() }
        }
        thread.name = "xform-loop-\(index)"
        thread.start()
    }

    /// On the loop's thread: stops its server (ports close, connections drain), publishes the
    /// final counters, stops its reactor, then calls `done` (from the loop's thread).
    func stop(board: LoopBoard, then done: @escaping @Sendable () -> Void) {
        threading.callFromThread { [self] in
            state.health.beginDrain()
            server.root.stopService().addBoth { [self] _ in
                board.publish(loop: index, state: state)
                threading.requestStop()
                done()
            }
        }
    }
}

/// The latest report of each loop, so a `stats` request (or SIGUSR2) on any loop can answer
/// for the whole process without blocking on the others: each loop publishes its own report
/// every ``interval`` (and once more when it stops); the loop answering adds its live figures.
/// So another loop's counters may be up to ``interval`` old; the request path never touches
/// this board.
final class LoopBoard: Sendable {
    /// How often each loop publishes its report.
    static let interval: Duration = .milliseconds(250)

    private let reports: PthreadMutex<[[String]]>
    private let families: PthreadMutex<[[MetricFamily]]>

    init(loops: Int) {
        reports = PthreadMutex(Array(repeating: [], count: loops))
        families = PthreadMutex(Array(repeating: [], count: loops))
    }

    /// Replaces loop `loop`'s published report.
    func publish(loop: Int, lines: [String]) {
        reports.withLock { $0[loop] = lines }
    }

    /// Replaces loop `loop`'s published report and metric families with `state`'s.
    func publish(loop: Int, state: ServerState) {
        publish(loop: loop, lines: state.loopReport())
        let own = state.loopMetricFamilies()
        families.withLock { $0[loop] = own }
    }

    /// Publishes loop `loop`'s figures now and then every `interval`, on that loop's thread.
    func publishEvery(_ interval: Duration, loop: Int, clock: any ReactorTime, state: ServerState) {
        publish(loop: loop, state: state)
        // `state` strongly: a weak reference would put the state's every retain on the slow path;
        // the reactor drops this timer when it stops.
        _ = clock.callLater(interval) { [weak self] in
            self?.publishEvery(interval, loop: loop, clock: clock, state: state)
        }
    }

    /// The process's metric families: `own` (loop `loop`'s live ones) with every other loop's
    /// latest samples added, sample by sample (same name and labels); `xform_ready` stays the
    /// answering loop's (every loop turns unready together).
    func combinedFamilies(own: [MetricFamily], loop: Int) -> [MetricFamily] {
        var all = families.withLock { $0 }
        all[loop] = own
        var order: [String] = []
        var merged: [String: MetricFamily] = [:]
        for loopFamilies in all {
            for family in loopFamilies {
                guard var sum = merged[family.name] else {
                    order.append(family.name)
                    merged[family.name] = family
                    continue
                }
                if family.name == "xform_ready" { continue }
                for sample in family.samples {
                    if let i = sum.samples.firstIndex(where: { $0.name == sample.name && $0.labels == sample.labels }) {
                        sum.samples[i].value += sample.value
                    } else {
                        sum.samples.append(sample)
                    }
                }
                merged[family.name] = sum
            }
        }
        if let ready = own.first(where: { $0.name == "xform_ready" }) { merged[ready.name] = ready }
        return order.map { merged[$0]! }
    }

    /// The process's report: `own` (loop `loop`'s live report) summed with every other loop's
    /// latest, followed by one `loop_connections_total LOOP N` line per loop.
    func combined(own: [String], loop: Int) -> [String] {
        var all = reports.withLock { $0 }
        all[loop] = own
        var lines = Self.sum(all)
        for (i, report) in all.enumerated() {
            let accepted = report.reduce(0) { total, line in
                let fields = line.split(separator: " ")
                guard fields.count == 3, fields[0] == "connections_total", let n = Int(fields[2]) else { return total }
                return total + n
            }
            lines.append("loop_connections_total \(i) \(accepted)")
        }
        return lines
    }

    /// Sums reports line by line: lines with the same words add their numbers (`key [label] N`),
    /// and their `name=N` outcomes by name (`requests upper ok=2 too_large=1`); `uptime_seconds`
    /// takes the largest; the latency percentiles (which do not add) and lines without numbers
    /// come from the first report that has them. Order: the first report's, then lines only
    /// later reports have.
    static func sum(_ reports: [[String]]) -> [String] {
        var order: [String] = []
        var merged: [String: Line] = [:]
        for report in reports {
            for text in report {
                let line = Line(text)
                guard let existing = merged[line.key] else {
                    order.append(line.key)
                    merged[line.key] = line
                    continue
                }
                if line.words.first == "async_latency_us" { continue }
                merged[line.key] = existing.adding(line, maximum: line.words.first == "uptime_seconds")
            }
        }
        return order.map { merged[$0]!.text }
    }

    /// A report line split into its words (numbers blanked to `#` in ``key``), its numbers, and
    /// its `name=N` outcomes.
    struct Line {
        var words: [String] = []
        var numbers: [Int] = []
        var outcomes: [(name: String, count: Int)] = []

        init(_ text: String) {
            for word in text.split(separator: " ").map(String.init) {
                if let n = Int(word) {
                    words.append("#")
                    numbers.append(n)
                } else if let eq = word.firstIndex(of: "="), let n = Int(word[word.index(after: eq)...]) {
                    outcomes.append((String(word[..<eq]), n))
                } else {
                    words.append(word)
                }
            }
        }

        /// What two lines must share to add up (the percentiles line is one line whatever its figures).
        var key: String {
            if words.first == "async_latency_us" { return "async_latency_us" }
            return words.joined(separator: " ") + (outcomes.isEmpty ? "" : " =")
        }

        var text: String {
            var next = numbers.makeIterator()
            let head = words.map { $0 == "#" ? String(next.next() ?? 0) : $0 }
            return (head + outcomes.map { "\($0.name)=\($0.count)" }).joined(separator: " ")
        }

        func adding(_ other: Line, maximum: Bool) -> Line {
            var sum = self
            sum.numbers = zip(numbers, other.numbers).map { maximum ? max($0, $1) : $0 + $1 }
            var counts = Dictionary(outcomes.map { ($0.name, $0.count) }, uniquingKeysWith: +)
            for o in other.outcomes { counts[o.name, default: 0] += o.count }
            sum.outcomes = counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            return sum
        }
    }
}

/// Stops the extra loops as part of the main loop's service tree: its stop fires once every
/// extra loop has drained and stopped its reactor (on the main loop's thread).
final class ExtraLoopsService: Service {
    /// The extra loops (set once they are bound, before the service starts).
    var loops: [ServingLoop]
    let board: LoopBoard
    let home: EpollThreading

    init(loops: [ServingLoop], board: LoopBoard, home: EpollThreading) {
        self.loops = loops
        self.board = board
        self.home = home
        super.init(name: "extra-loops")
    }

    override func stopService() -> Deferred<Void> {
        _ = super.stopService()
        let all = Deferred<Void>()
        let pending = PendingCount(loops.count, fire: { try? all.callback(()) })
        for loop in loops {
            loop.stop(board: board) { [home] in home.callFromThread { pending.done() } }
        }
        if loops.isEmpty { try? all.callback(()) }
        return all
    }

    /// Counts down on the main loop's thread.
    final class PendingCount: @unchecked Sendable {
        // Unchecked: created and counted down only on the main loop's thread (via callFromThread).
        var left: Int
        let fire: () -> Void
        init(_ left: Int, fire: @escaping () -> Void) {
            self.left = left
            self.fire = fire
        }
        func done() {
            left -= 1
            if left == 0 { fire() }
        }
    }
}
