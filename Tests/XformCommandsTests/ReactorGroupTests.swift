import Testing

@testable import XformCommands

@Suite("--reactors: options and the summed report")
struct ReactorGroupTests {
    private func options(_ arguments: [String]) -> TransformServerOptions? {
        if case .run(let o) = TransformServerCommand.evaluate(arguments, environment: [:], currentDirectory: "/srv") {
            return o
        }
        return nil
    }

    @Test("--reactors defaults to 1, takes a count, and auto means one per core (nil)")
    func parsesTheCount() {
        #expect(options([])?.reactors == 1)
        #expect(options(["--reactors", "4"])?.reactors == 4)
        #expect(options(["--reactors", "auto"])?.reactors == .some(nil))
        #expect(options(["--reactors", "0"]) == nil)
        #expect(options(["--reactors", "many"]) == nil)
    }

    @Test("Reports add up line by line: counts, outcomes and the largest uptime; text lines are kept once")
    func sumsReports() {
        let a = [
            "uptime_seconds 5", "connections_total line 3", "bytes_in 10", "requests upper ok=2 too_large=1",
            "async_latency_us p50<8 p99<64",
        ]
        let b = ["uptime_seconds 7", "connections_total line 4", "connections_total netstring 1", "bytes_in 5",
                 "requests upper ok=3", "requests_rejected unknown_transform=1", "async_latency_us p50<16 p99<128"]
        #expect(
            LoopBoard.sum([a, b]) == [
                "uptime_seconds 7", "connections_total line 7", "bytes_in 15", "requests upper ok=5 too_large=1",
                "async_latency_us p50<8 p99<64", "connections_total netstring 1", "requests_rejected unknown_transform=1",
            ])
    }

    @Test("The combined report uses the answering loop's live figures and names each loop's connections")
    func combinesWithLiveFigures() {
        let board = LoopBoard(loops: 2)
        board.publish(loop: 0, lines: ["connections_total line 1"])
        board.publish(loop: 1, lines: ["connections_total line 2", "connections_total http 1"])
        let lines = board.combined(own: ["connections_total line 5"], loop: 0)
        #expect(
            lines == [
                "connections_total line 7", "connections_total http 1", "loop_connections_total 0 5",
                "loop_connections_total 1 3",
            ])
    }
}
