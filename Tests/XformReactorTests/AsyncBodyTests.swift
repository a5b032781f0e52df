// Async bodies on the epoll reactor (inlineCallbacks semantics, Introduction Part 17): they start
// inside the call, resume only on the reactor thread, whether the awaited Deferred fires from a
// reactor timer or the body awaited something off the reactor thread.
import Testing
import XformCore
import XformReactor

@Suite("Async bodies on the epoll reactor")
struct AsyncBodyTests {
    @Test("Bodies started in one turn run in order and resume on the reactor thread, 50 runs")
    func orderAndThread() async {
        let log = Locked<[String]>([])
        // Task.sleep resumes through the shared cooperative pool, which a loaded machine running the
        // whole suite in parallel can starve for seconds: 50 runs and a long limit keep this about
        // order and threads, not speed.
        let run = await withReactor(timeout: .seconds(120)) { reactor in
            let threading = reactor.threading
            var remaining = 50
            func one() {
                var lines: [String] = []
                let bodies = (0..<3).map { i in
                    deferredFromAsync(on: threading) { () async throws -> Void in
                        lines.append("start \(i) \(threading.isReactorThread)")
                        try await deferLater(reactor, .milliseconds(1)) { () }.value
                        lines.append("timer \(i) \(threading.isReactorThread)")
                        try await Task.sleep(for: .microseconds(50))  // resumes through callFromThread
                        lines.append("sleep \(i) \(threading.isReactorThread)")
                    }
                }
                lines.append("started")
                gatherResults(bodies).addCallback { _ in
                    log.update { $0.append(lines.joined(separator: ",")) }
                    remaining -= 1
                    if remaining == 0 { reactor.stop() } else { one() }
                    return []
                }
            }
            one()
        }
        #expect(!run.timedOut)
        let runs = log.value
        #expect(runs.count == 50)
        let starts = (0..<3).map { "start \($0) true" } + ["started"]
        let timers = (0..<3).map { "timer \($0) true" }
        for r in runs {
            let lines = r.split(separator: ",").map(String.init)
            #expect(Array(lines.prefix(4)) == starts)
            #expect(lines.filter { $0.hasPrefix("timer") } == timers)
            #expect(lines.count == 10 && lines.allSatisfy { $0.hasSuffix("true") || $0 == "started" })
        }
    }
}
