import Foundation
import Glibc
import Synchronization
import XformCore
import XformReactor

/// Reactor micro-benchmarks: delayed-call throughput (schedule and fire; schedule and cancel)
/// and callFromThread throughput. Run with `swift run -c release xform-bench timers`.
///
/// Each figure is the median of several repetitions, each on a fresh reactor. Wall time is
/// printed with the process CPU time per operation, which is steadier on a busy machine.
func runReactorBench(repetitions: Int = 5) {
    var load = [Double](repeating: 0, count: 3)
    _ = getloadavg(&load, 3)
    print(
        "reactor benchmarks: median of \(repetitions) runs, \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(String(format: "%.2f", load[0]))"
    )
    report("callLater x 1,000,000 (0..10 ms), schedule", unit: "ns/call", repetitions) { timersFire().schedule }
    report("callLater x 1,000,000 (0..10 ms), schedule + fire all", unit: "ns/call", repetitions) {
        timersFire().total
    }
    report("callLater + cancel x 1,000,000", unit: "ns/pair", repetitions) { timersCancel() }
    report("callFromThread, 1 thread x 1,000,000", unit: "ns/call", repetitions) { threadCalls(threads: 1) }
    report("callFromThread, 4 threads x 250,000", unit: "ns/call", repetitions) { threadCalls(threads: 4) }
}

private let callCount = 1_000_000

/// CPU time of the whole process, in nanoseconds.
private func processCPUNanos() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1e9 + Double(ts.tv_nsec)
}

private func report(_ name: String, unit: String, _ repetitions: Int, _ body: () -> Double) {
    var samples: [Double] = []
    var cpu: [Double] = []
    for _ in 0..<repetitions {
        let c0 = processCPUNanos()
        samples.append(body())
        cpu.append((processCPUNanos() - c0) / Double(callCount))
    }
    samples.sort()
    cpu.sort()
    let median = samples[samples.count / 2]
    let rate = median > 0 ? 1e9 / median : 0
    let padded = name.padding(toLength: 56, withPad: " ", startingAt: 0)
    print(
        "\(padded) \(String(format: "%8.1f", median)) \(unit)  (\(String(format: "%.2f", rate / 1e6)) M/s; min \(String(format: "%.1f", samples.first!)), max \(String(format: "%.1f", samples.last!)); CPU \(String(format: "%.1f", cpu[cpu.count / 2])) ns/op for the whole run)"
    )
}

private func nanos(_ d: Duration) -> Double { d.seconds * 1e9 }

/// Schedules `callCount` calls with pseudo-random delays in 0..10 ms and runs until all fired.
/// - Returns: nanoseconds per call for scheduling alone and for schedule plus firing.
private func timersFire() -> (schedule: Double, total: Double) {
    let reactor = try! EpollReactor()
    final class Counter { var fired = 0 }
    let counter = Counter()
    let clock = ContinuousClock()
    let start = clock.now
    var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    for _ in 0..<callCount {
        seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let delay = Duration.microseconds(Int64((seed >> 33) % 10_001))
        reactor.callLater(delay) {
            counter.fired += 1
            if counter.fired == callCount { reactor.stop() }
        }
    }
    let scheduled = clock.now
    reactor.run()
    let end = clock.now
    precondition(counter.fired == callCount, "not every call fired")
    return (nanos(scheduled - start) / Double(callCount), nanos(end - start) / Double(callCount))
}

/// Schedules and cancels `callCount` calls (one second out, so none fires).
/// - Returns: nanoseconds per schedule+cancel pair.
private func timersCancel() -> Double {
    let reactor = try! EpollReactor()
    final class Counter { var fired = 0 }
    let counter = Counter()
    let clock = ContinuousClock()
    let start = clock.now
    for i in 0..<callCount {
        let call = reactor.callLater(.milliseconds(1000 + Int64(i % 1000))) { counter.fired += 1 }
        call.cancel()
    }
    let end = clock.now
    precondition(counter.fired == 0)
    reactor.callLater(.zero) { reactor.stop() }
    reactor.run()
    return nanos(end - start) / Double(callCount)
}

/// `threads` producers queue `callCount` calls in total; timed until the last one ran.
/// - Returns: nanoseconds per call (wall time / calls).
private func threadCalls(threads: Int) -> Double {
    let reactor = try! EpollReactor()
    let door = reactor.threadingHandle
    let ran = Atomic<Int>(0)
    let perThread = callCount / threads
    let total = perThread * threads
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<threads {
        Thread {
            for _ in 0..<perThread {
                door.callFromThread {
                    if ran.add(1, ordering: .relaxed).newValue == total { door.requestStop() }
                }
            }
        }.start()
    }
    reactor.run()
    let end = clock.now
    precondition(ran.load(ordering: .relaxed) == total)
    return nanos(end - start) / Double(total)
}
