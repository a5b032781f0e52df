import Glibc
import Testing

@testable import XformDaemon
import XformReactor

@Suite("Pidfile")
struct PIDFileTests {
    @Test("Taking a pidfile writes the pid and a newline")
    func writesPID() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let pidfile = try PIDFile(path: dir.file("x.pid"), pid: 4242)
        #expect(readFile(dir.file("x.pid")) == "4242\n")
        #expect(pidfile.pid == 4242)
        try pidfile.remove()
    }

    @Test("A second lock on a held pidfile fails with alreadyRunning and the holder's pid (exit 75)")
    func refusesSecondLock() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("x.pid")
        let first = try PIDFile(path: path, pid: 1234)
        // flock locks belong to the open file description, so a second open in this same process
        // contends with the first, exactly as another process would.
        #expect(throws: PIDFileError.alreadyRunning(pid: 1234, path: path)) { try PIDFile(path: path, pid: 99) }
        #expect(readFile(path) == "1234\n")
        do {
            _ = try PIDFile(path: path, pid: 99)
        } catch {
            #expect(error.exitStatus == .temporaryFailure)
            #expect(error.description == "already running (pid 1234, pidfile \(path))")
        }
        try first.remove()
    }

    @Test("remove() unlinks the file and releases the lock; removing twice does nothing")
    func removeReleases() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("x.pid")
        let first = try PIDFile(path: path, pid: 1)
        try first.remove()
        #expect(!fileExists(path))
        try first.remove()
        let second = try PIDFile(path: path, pid: 2)
        #expect(readFile(path) == "2\n")
        try second.remove()
    }

    @Test("A stale, unlocked pidfile with leftover content is taken over and truncated")
    func staleFile() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("x.pid")
        let fd = open(path, O_CREAT | O_WRONLY, 0o644)
        _ = Syscall.writeAll(fd, "123456789 garbage\n")
        close(fd)
        let pidfile = try PIDFile(path: path, pid: 7)
        #expect(readFile(path) == "7\n")
        try pidfile.remove()
    }

    @Test("A locked pidfile with unreadable content still refuses, without a pid")
    func lockedGarbage() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("x.pid")
        let fd = open(path, O_CREAT | O_RDWR, 0o644)
        defer { close(fd) }
        _ = Syscall.writeAll(fd, "not a pid")
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(throws: PIDFileError.alreadyRunning(pid: nil, path: path)) { try PIDFile(path: path) }
    }

    @Test("Relative paths are refused; absolutePath resolves them against a directory")
    func relative() {
        #expect(throws: PIDFileError.relativePath("x.pid")) { try PIDFile(path: "x.pid") }
        #expect(PIDFileError.relativePath("x.pid").exitStatus == .usage)
        #expect(PIDFile.absolutePath("x.pid", relativeTo: "/var/run") == "/var/run/x.pid")
        #expect(PIDFile.absolutePath("./run/x.pid", relativeTo: "/srv/") == "/srv/run/x.pid")
        #expect(PIDFile.absolutePath("/abs/x.pid", relativeTo: "/srv") == "/abs/x.pid")
        #expect(PIDFile.absolutePath("", relativeTo: "/srv") == "")
        #expect(PIDFile.absolutePath("x", relativeTo: "/") == "/x")
    }

    @Test("An uncreatable pidfile fails with EX_CANTCREAT")
    func cannotOpen() {
        #expect(throws: PIDFileError.cannotOpen(SystemError("open /nonexistent-dir/x.pid", errno: ENOENT))) {
            try PIDFile(path: "/nonexistent-dir/x.pid")
        }
        #expect(PIDFileError.cannotOpen(SystemError("open", errno: ENOENT)).exitStatus == .cannotCreate)
    }

    @Test("Pidfile contents parse only as one positive decimal number")
    func parse() {
        #expect(PIDFile.parsePID(Array("42\n".utf8)) == 42)
        #expect(PIDFile.parsePID(Array("  42 ".utf8)) == 42)
        for bad in ["", "\n", "0", "-5", "4 2", "abc", "99999999999"] {
            #expect(PIDFile.parsePID(Array(bad.utf8)) == nil, "\(bad)")
        }
    }
}
