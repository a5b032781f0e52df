import Testing
import Glibc
@testable import XformDaemon

@Suite("ProcessInspector")
struct ProcessInspectorTests {
    @Test("The process figures read from /proc are present and plausible")
    func plausibleFigures() throws {
        let f = ProcessInspector.figures()
        let rss = try #require(f.residentMemoryBytes)
        #expect(rss > 1_000_000 && rss < 100_000_000_000)
        #expect(try #require(f.virtualMemoryBytes) >= rss)
        #expect(try #require(f.cpuSecondsTotal) > 0)
        let open = try #require(f.openFDs)
        #expect(open >= 3)
        #expect(try #require(f.maxFDs) >= open)
        let start = try #require(f.startTimeSeconds)
        #expect(start > 1_600_000_000)
        #expect(start <= Double(time(nil)) + 1)
    }

    @Test("The command name in /proc/self/stat may hold spaces and parentheses")
    func statWithOddName() throws {
        let fields = try #require(ProcessInspector.statFields("42 (a) b (c)) S 1 2 3"))
        #expect(fields == ["S", "1", "2", "3"])
    }
}
