import Synchronization
import XformCore
import XformReactor

/// Compares the two ways to run an async body from the epoll reactor and await Deferreds in it:
/// `deferredFromAsync` on the reactor's task executor (inlineCallbacks semantics) against the
/// former bridge, a `Task` on the global executor that awaits through `callFromThread` and
/// delivers its result with another `callFromThread`.
///
/// Prints, for each: the cost per body (start, await one Deferred, resume, fire the body's
/// Deferred), the median of several repetitions; and how often two bodies started in the same
/// reactor turn ran their first lines in reverse order, over 1,000 runs.
///
/// Optional arguments after `async`: bodies per repetition, repetitions, and a style filter
/// (`reactor` or `global`), e.g. `xform-bench async 2000 1 reactor` under callgrind.
func runAsyncBodyBench() {
    let extra = Array(CommandLine.arguments.dropFirst(2))
    let bodies = extra.count > 0 ? Int(extra[0]) ?? 20_000 : 20_000
    let repetitions = extra.count > 1 ? Int(extra[1]) ?? 5 : 5
    let filter = extra.count > 2 ? extra[2] : nil
    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    for style in ["reactor executor", "global Task + callFromThread"] where filter.map({ style.hasPrefix($0) }) ?? true {
        let onReactor = style == "reactor executor"
        var costs: [Double] = []
        for _ in 0..<repetitions {
            costs.append(measureBodies(bodies, onReactor: onReactor))
        }
        let reversed = countReversals(runs: 1000, onReactor: onReactor)
        print(
            "\(style): \(String(format: "%.2f", median(costs))) µs per body (median of \(repetitions) x \(bodies)); "
                + "first lines reversed in \(reversed)/1000 runs")
    }
}

/// Starts `n` bodies, each awaiting its own Deferred, then fires them all; returns µs per body.
func measureBodies(_ n: Int, onReactor: Bool) -> Double {
    let reactor = try! EpollReactor()
    let threading = reactor.threading
    let clock = ContinuousClock()
    var elapsed = Duration.zero
    reactor.callLater(.zero) {
        let start = clock.now
        var gates: [Deferred<Int>] = []
        gates.reserveCapacity(n)
        var finished = 0
        for _ in 0..<n { gates.append(Deferred<Int>()) }
        let done = {
            finished += 1
            if finished == n {
                elapsed = clock.now - start
                reactor.threadingHandle.requestStop()
            }
        }
        for i in 0..<n {
            let gate = gates[i]
            let d: Deferred<Int>
            if onReactor {
                d = deferredFromAsync(on: threading) { try await gate.value + 1 }
            } else {
                // nonisolated(unsafe): `deferredValue` reads it only on the reactor thread.
                nonisolated(unsafe) let gate = gate
                d = legacyDeferredFromAsync(on: threading) { try await threading.deferredValue { gate } + 1 }
            }
            d.addCallback { v in done(); return v }
        }
        // Fired on the next turn: the reactor-executor bodies are all suspended on their gates by
        // then; legacy bodies that have not asked yet find their gate already fired.
        reactor.callLater(.zero) { for g in gates { try? g.callback(1) } }
    }
    reactor.run()
    let c = elapsed.components
    return (Double(c.seconds) * 1e6 + Double(c.attoseconds) / 1e12) / Double(n)
}

/// Starts two bodies in one reactor turn, `runs` times; counts runs where the second one's first
/// line came first.
func countReversals(runs: Int, onReactor: Bool) -> Int {
    let reactor = try! EpollReactor()
    let threading = reactor.threading
    let reversedRuns = Counter()
    reactor.callLater(.zero) {
        var run = 0
        func next() {
            guard run < runs else {
                reactor.threadingHandle.requestStop()
                return
            }
            run += 1
            let order = Order()
            let both = [0, 1].map { id -> Deferred<Void> in
                onReactor
                    ? deferredFromAsync(on: threading) { order.ids.withLock { $0.append(id) } }
                    : legacyDeferredFromAsync(on: threading) { order.ids.withLock { $0.append(id) } }
            }
            _ = gatherResults(both).addCallback { _ in
                if order.ids.withLock({ $0 }) == [1, 0] { reversedRuns.value.add(1, ordering: .relaxed) }
                next()
                return []
            }
        }
        next()
    }
    reactor.run()
    return reversedRuns.value.load(ordering: .relaxed)
}

/// The order in which bodies ran their first line.
final class Order: Sendable {
    let ids = Mutex<[Int]>([])
}

/// The former `deferredFromAsync`: the body runs as a plain Task on the global executor and its
/// result comes back through `callFromThread`. Kept here only as the baseline.
func legacyDeferredFromAsync<Value: Sendable>(
    on loop: any ReactorThreading, _ body: @escaping @Sendable () async throws -> Value
) -> Deferred<Value> {
    let slot = LegacySlot<Value>()
    let task = Task {
        let outcome: Result<Value, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        loop.callFromThread {
            guard let d = slot.deferred else { return }
            slot.deferred = nil
            try? d.fire(outcome)
        }
    }
    let d = Deferred<Value>(canceller: { _ in task.cancel() })
    slot.deferred = d
    return d
}

/// A counter shared with callbacks.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

/// The legacy bridge's Deferred slot. `@unchecked Sendable`: touched only on the reactor thread.
final class LegacySlot<Value>: @unchecked Sendable {
    var deferred: Deferred<Value>?
}
