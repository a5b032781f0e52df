import Glibc
import Synchronization
import Testing
import XformCore

@testable import XformDaemon

/// A log output that keeps lines in memory.
final class MemoryOutput: LogOutput {
    private let stored = Mutex<[String]>([])
    func write(_ line: String) { stored.withLock { $0.append(line) } }
    var lines: [String] { stored.withLock { $0 } }
}

/// 2026-11-21T23:17:00Z.
let fixedTime: Int64 = 1_795_303_020

@Suite("Log line formats")
struct LogFormatTests {
    @Test("Text lines are '<UTC timestamp> [system] level: message'")
    func textLine() {
        let out = MemoryOutput()
        let handler = DaemonLogHandler(format: .text, minimumLevel: .info, output: out, wallClock: { fixedTime })
        let log = Logger(system: "transform-server", handler: handler)
        log.info("listening netstring=127.0.0.1:10001")
        log.warning("slow client")
        #expect(
            out.lines == [
                "2026-11-21T23:17:00+0000 [transform-server] info: listening netstring=127.0.0.1:10001\n",
                "2026-11-21T23:17:00+0000 [transform-server] warning: slow client\n",
            ])
    }

    @Test("Events below the minimum level are not written")
    func minimumLevel() {
        let out = MemoryOutput()
        let log = Logger(system: "s", handler: DaemonLogHandler(format: .text, minimumLevel: .notice, output: out, wallClock: { 0 }))
        log.debug("no")
        log.info("no")
        log.notice("yes")
        log.critical("yes")
        #expect(out.lines.count == 2)
        #expect(out.lines[0] == "1970-01-01T00:00:00+0000 [s] notice: yes\n")
    }

    @Test("Continuation lines of a multi-line text message start with a tab")
    func multiLineText() {
        let handler = DaemonLogHandler(format: .text, output: MemoryOutput(), wallClock: { fixedTime })
        let line = handler.formatLine(LogRecord(level: .error, system: "x", message: "boom\nat a\nat b"))
        #expect(line == "2026-11-21T23:17:00+0000 [x] error: boom\n\tat a\n\tat b\n")
    }

    @Test("Journal lines carry the syslog priority and no timestamp, on every line")
    func journalLine() {
        let handler = DaemonLogHandler(format: .journal, minimumLevel: .trace, output: MemoryOutput(), wallClock: { fixedTime })
        #expect(handler.formatLine(LogRecord(level: .info, system: "srv", message: "hello")) == "<6>[srv] hello\n")
        #expect(handler.formatLine(LogRecord(level: .warning, system: "srv", message: "a\nb")) == "<4>[srv] a\n<4>\tb\n")
        let priorities = LogLevel.allCases.map(\.syslogPriority)
        #expect(priorities == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test("Timestamps are UTC with four-digit years")
    func timestamps() {
        #expect(DaemonLogHandler.timestamp(0) == "1970-01-01T00:00:00+0000")
        #expect(DaemonLogHandler.timestamp(951_782_400) == "2000-02-29T00:00:00+0000")
        #expect(DaemonLogHandler.timestamp(fixedTime) == "2026-11-21T23:17:00+0000")
    }

    @Test("Concurrent writers never interleave inside a line")
    func threadSafety() async {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let file = try! LogFile(path: dir.file("log"), rotateLength: 0)
        let handler = DaemonLogHandler(format: .text, output: file, wallClock: { fixedTime })
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    let log = Logger(system: "t\(t)", handler: handler)
                    for i in 0..<200 { log.info(String(repeating: "x", count: 100) + " \(i)") }
                }
            }
        }
        let lines = readFile(dir.file("log"))!.split(separator: "\n")
        #expect(lines.count == 800)
        #expect(lines.allSatisfy { $0.hasPrefix("2026-11-21T23:17:00+0000 [t") && $0.contains(" info: xxxx") })
    }
}

@Suite("Journal detection")
struct JournalDetectionTests {
    let stderrID = FileIdentity(device: 65024, inode: 16_220_957)

    @Test("JOURNAL_STREAM matching stderr's device and inode selects the journal format")
    func matching() {
        #expect(LogFormat.detect(environment: ["JOURNAL_STREAM": "65024:16220957"], standardError: stderrID) == .journal)
    }

    @Test(
        "A missing, malformed or different JOURNAL_STREAM keeps text",
        arguments: [[:], ["JOURNAL_STREAM": "65024:1"], ["JOURNAL_STREAM": "1:16220957"], ["JOURNAL_STREAM": "garbage"], ["JOURNAL_STREAM": "65024:16220957:1"]])
    func notMatching(environment: [String: String]) {
        #expect(LogFormat.detect(environment: environment, standardError: stderrID) == .text)
    }

    @Test("An unknown stderr identity keeps text")
    func unknownStderr() {
        #expect(LogFormat.detect(environment: ["JOURNAL_STREAM": "65024:16220957"], standardError: nil) == .text)
    }

    @Test("An explicit --log-format overrides detection; auto detects")
    func override() {
        let env = ["JOURNAL_STREAM": "65024:16220957"]
        #expect(LogFormat.resolve("text", environment: env, standardError: stderrID) == .text)
        #expect(LogFormat.resolve("journal", environment: [:], standardError: nil) == .journal)
        #expect(LogFormat.resolve("auto", environment: env, standardError: stderrID) == .journal)
        #expect(LogFormat.resolve(nil, environment: [:], standardError: stderrID) == .text)
        #expect(LogFormat.resolve("xml", environment: [:], standardError: nil) == nil)
    }

    @Test("FileIdentity(fd:) reads a real descriptor's device and inode")
    func fstatIdentity() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fd = open(dir.file("f"), O_CREAT | O_RDWR, 0o600)
        defer { close(fd) }
        var st = stat()
        stat(dir.file("f"), &st)
        let id = try #require(FileIdentity(fd: fd))
        #expect(id == FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)))
        #expect(FileIdentity(journalStream: "\(st.st_dev):\(st.st_ino)") == id)
        #expect(FileIdentity(fd: -1) == nil)
    }
}

@Suite("Rotating log file")
struct LogFileTests {
    @Test("A write that would pass the size limit rotates first: log -> log.1 -> log.2")
    func rotatesOnSize() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("server.log")
        let log = try LogFile(path: path, rotateLength: 20)
        log.write("aaaaaaaaa\n")  // 10
        log.write("bbbbbbbbb\n")  // 20: exactly the limit, no rotation
        #expect(log.rotatedFiles().isEmpty)
        log.write("ccccccccc\n")  // would be 30: rotate first
        #expect(readFile(path) == "ccccccccc\n")
        #expect(readFile(path + ".1") == "aaaaaaaaa\nbbbbbbbbb\n")
        #expect(log.size == 10)
        log.write("ddddddddd\n")
        log.write("eeeeeeeee\n")
        #expect(readFile(path + ".2") == "aaaaaaaaa\nbbbbbbbbb\n")
        #expect(readFile(path + ".1") == "ccccccccc\nddddddddd\n")
        #expect(readFile(path) == "eeeeeeeee\n")
    }

    @Test("At most maxRotatedFiles rotated files are kept")
    func maxFiles() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        let log = try LogFile(path: path, rotateLength: 0, maxRotatedFiles: 2)
        for i in 1...5 {
            log.write("line \(i)\n")
            log.rotate()
        }
        #expect(log.rotatedFiles() == [path + ".1", path + ".2"])
        #expect(!fileExists(path + ".3"))
        #expect(readFile(path + ".1") == "line 5\n")
        #expect(readFile(path + ".2") == "line 4\n")
        #expect(readFile(path) == "")
    }

    @Test("A line longer than the limit is written whole to its own file")
    func oversizedLine() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        let log = try LogFile(path: path, rotateLength: 5)
        log.write("0123456789\n")
        #expect(readFile(path) == "0123456789\n")
        #expect(log.rotatedFiles().isEmpty)
        log.write("x\n")
        #expect(readFile(path) == "x\n")
        #expect(readFile(path + ".1") == "0123456789\n")
    }

    @Test("Opening appends to an existing file and counts its size")
    func appends() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        do {
            let first = try LogFile(path: path)
            first.write("one\n")
        }
        let second = try LogFile(path: path)
        #expect(second.size == 4)
        second.write("two\n")
        #expect(readFile(path) == "one\ntwo\n")
    }

    @Test("reopen() starts a new file after an external rename (logrotate create mode)")
    func reopen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        let log = try LogFile(path: path)
        log.write("before\n")
        #expect(rename(path, path + ".old") == 0)
        log.write("still old\n")
        log.reopen()
        log.write("after\n")
        #expect(readFile(path + ".old") == "before\nstill old\n")
        #expect(readFile(path) == "after\n")
        #expect(log.size == 6)
    }

    @Test("A failed rotation is reported and writing continues to the open file")
    func rotationFailure() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        let reports = MessageRecorder()
        let log = try LogFile(path: path, rotateLength: 0, maxRotatedFiles: 1, reportError: { reports.record($0) })
        log.write("one\n")
        // log.1 is a directory: deleting it to make room fails with EISDIR, even for root.
        #expect(mkdir(path + ".1", 0o700) == 0)
        defer { rmdir(path + ".1") }
        #expect(log.rotate() == "cannot rotate log file: rename \(path): Is a directory")
        #expect(reports.all.isEmpty)  // rotate() returns the failure; the caller logs it
        log.write("two\n")
        #expect(readFile(path) == "one\ntwo\n")
        #expect(log.size == 8)
        #expect(reports.all.isEmpty)
    }

    @Test("A failed rotation on size is written into the log itself, and writing goes on")
    func sizeRotationFailureInLog() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        let reports = MessageRecorder()
        let log = try LogFile(path: path, rotateLength: 8, maxRotatedFiles: 1, reportError: { reports.record($0) })
        log.write("one\n")
        #expect(mkdir(path + ".1", 0o700) == 0)
        defer { rmdir(path + ".1") }
        log.write("two and more\n")
        let failure = "cannot rotate log file: rename \(path): Is a directory"
        #expect(readFile(path) == "one\nlog rotation failed: \(failure)\ntwo and more\n")
        #expect(reports.all == [failure])
    }

    @Test("Rotation renames only the kept files: files beyond the maximum are pruned once, at open")
    func rotationCostBounded() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        // 300 rotated files left by an earlier setting that kept everything.
        for n in 1...300 { #expect(writeFile(path + ".\(n)", "old \(n)\n")) }
        let log = try LogFile(path: path, rotateLength: 0, maxRotatedFiles: 3)
        #expect(log.rotatedFiles() == [path + ".1", path + ".2", path + ".3"])
        log.write("new\n")
        #expect(log.rotate() == nil)
        #expect(log.rotatedFiles() == [path + ".1", path + ".2", path + ".3"])
        #expect(readFile(path + ".1") == "new\n")
        #expect(readFile(path + ".2") == "old 1\n")
        #expect(readFile(path + ".3") == "old 2\n")
    }

    @Test("The default keeps five rotated files")
    func defaultMaxFiles() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        let log = try LogFile(path: path, rotateLength: 0)
        #expect(log.maxRotatedFiles == 5)
        for i in 1...8 {
            log.write("line \(i)\n")
            #expect(log.rotate() == nil)
        }
        #expect(log.rotatedFiles().count == 5)
        #expect(readFile(path + ".5") == "line 4\n")
    }

    @Test("Rotating after the live file was deleted starts a new file")
    func rotationAfterDelete() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("log")
        let reports = MessageRecorder()
        let log = try LogFile(path: path, rotateLength: 0, reportError: { reports.record($0) })
        log.write("one\n")
        #expect(unlink(path) == 0)
        log.rotate()
        log.write("two\n")
        #expect(readFile(path) == "two\n")
        #expect(!fileExists(path + ".1"))
        #expect(reports.all.isEmpty)
    }

    @Test("An unopenable path fails with EX_CANTCREAT")
    func cannotOpen() {
        #expect(throws: DaemonFailure.self) { try LogFile(path: "/nonexistent-dir/x.log") }
        do {
            _ = try LogFile(path: "/nonexistent-dir/x.log")
        } catch {
            #expect(error.exitStatus == .cannotCreate)
            #expect(error.message.contains("No such file or directory"))
        }
    }
}
