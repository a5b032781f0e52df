import Glibc
import Testing

@testable import XformDaemon
import XformReactor

@Suite("Socket activation parsing")
struct ListenFDsTests {
    @Test("Descriptors from 3 and their names are used when LISTEN_PID is ours")
    func matching() {
        let fds = ListenFDs(
            environment: ["LISTEN_PID": "100", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "netstring:line"], pid: 100)
        #expect(fds.descriptors == [3, 4])
        #expect(fds.names == ["netstring", "line"])
        #expect(fds.descriptor(named: "line") == 4)
        #expect(fds.descriptor(named: "http") == nil)
        #expect(fds.problem == nil)
    }

    @Test("Another process's LISTEN_PID means nothing was passed to us")
    func wrongPID() {
        let fds = ListenFDs(environment: ["LISTEN_PID": "101", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"], pid: 100)
        #expect(fds.isEmpty)
        #expect(fds.names == nil)
        #expect(fds.problem == nil)
        #expect(ListenFDs(environment: ["LISTEN_FDS": "2"], pid: 100).isEmpty)
        #expect(ListenFDs(environment: [:], pid: 100).isEmpty)
    }

    @Test("Without LISTEN_FDNAMES the descriptors are used unnamed")
    func unnamed() {
        let fds = ListenFDs(environment: ["LISTEN_PID": "7", "LISTEN_FDS": "3"], pid: 7)
        #expect(fds.descriptors == [3, 4, 5])
        #expect(fds.names == nil)
        #expect(fds.descriptor(named: "netstring") == nil)
    }

    @Test("A name count that disagrees with LISTEN_FDS ignores all descriptors, as Twisted does")
    func namesMismatch() {
        let fds = ListenFDs(environment: ["LISTEN_PID": "7", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "netstring"], pid: 7)
        #expect(fds.isEmpty)
        #expect(fds.problem == "LISTEN_FDNAMES has 1 names for LISTEN_FDS=2; ignoring socket activation")
    }

    @Test("A malformed LISTEN_FDS is reported and ignored")
    func badCount() {
        for bad in ["x", "-1", "", "99999"] {
            let fds = ListenFDs(environment: ["LISTEN_PID": "7", "LISTEN_FDS": bad], pid: 7)
            #expect(fds.isEmpty)
            #expect(fds.problem != nil)
        }
        #expect(ListenFDs(environment: ["LISTEN_PID": "7", "LISTEN_FDS": "0"], pid: 7).isEmpty)
    }
}

@Suite("systemd notification")
struct SystemdNotifyTests {
    /// Binds a datagram socket at `address` (a path, or `@name` for the abstract namespace).
    func bindDatagramSocket(_ address: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let length = socklen_t(2 + bytes.count + (abstract ? 0 : 1))
        let rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        precondition(rc == 0, "bind failed: \(errno)")
        return fd
    }

    func receive(_ fd: Int32) -> String? {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return n < 0 ? nil : String(decoding: buf[0..<n], as: UTF8.self)
    }

    @Test("ready, status and stopping each send one datagram to a socket path")
    func sendsToPath() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("notify")
        let fd = bindDatagramSocket(path)
        defer { close(fd) }
        let notify = SystemdNotify(environment: ["NOTIFY_SOCKET": path])
        #expect(notify.isEnabled)
        try notify.ready(status: "serving netstring=127.0.0.1:10001", pid: 321)
        try notify.status("draining")
        try notify.stopping()
        #expect(receive(fd) == "READY=1\nMAINPID=321\nSTATUS=serving netstring=127.0.0.1:10001")
        #expect(receive(fd) == "STATUS=draining")
        #expect(receive(fd) == "STOPPING=1")
        #expect(receive(fd) == nil)
    }

    @Test("An address starting with @ is sent to the abstract namespace")
    func abstractNamespace() throws {
        let name = "@xform-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = bindDatagramSocket(name)
        defer { close(fd) }
        try SystemdNotify(socketPath: name).ready(pid: 5)
        #expect(receive(fd) == "READY=1\nMAINPID=5")
    }

    @Test("Without NOTIFY_SOCKET every call does nothing")
    func disabled() throws {
        let notify = SystemdNotify(environment: [:])
        #expect(!notify.isEnabled)
        try notify.ready()
        try notify.stopping()
        #expect(!SystemdNotify(environment: ["NOTIFY_SOCKET": ""]).isEnabled)
    }

    @Test("Sending to a missing socket or an over-long path throws")
    func failures() {
        #expect(throws: SystemError.self) { try SystemdNotify(socketPath: "/nonexistent-dir/notify").stopping() }
        let long = "/" + String(repeating: "x", count: 200)
        #expect(throws: SystemError(("NOTIFY_SOCKET " + long), errno: ENAMETOOLONG)) { try SystemdNotify(socketPath: long).stopping() }
    }
}
