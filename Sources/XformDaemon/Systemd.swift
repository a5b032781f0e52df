import Glibc
import XformReactor

/// Tells systemd about the service's state over `NOTIFY_SOCKET` (`sd_notify` without libsystemd).
///
/// Each message is one datagram on an `AF_UNIX`/`SOCK_DGRAM` socket. A leading `@` in the
/// address names the abstract namespace. When `NOTIFY_SOCKET` is unset every call does nothing,
/// so code can notify unconditionally. A `Type=notify` unit fails to start if `READY=1` never
/// arrives, so send ``ready(status:)`` only after listening and dropping privileges.
public struct SystemdNotify: Sendable {
    /// The socket address from `NOTIFY_SOCKET`, or `nil` when not running under `Type=notify`.
    public let socketPath: String?

    /// Reads `NOTIFY_SOCKET` from `environment` (an empty value counts as unset).
    public init(environment: [String: String] = ProcessEnvironment.current()) {
        let value = environment["NOTIFY_SOCKET"] ?? ""
        socketPath = value.isEmpty ? nil : value
    }

    /// Uses `socketPath` directly (tests; `nil` disables notification).
    public init(socketPath: String?) {
        self.socketPath = socketPath
    }

    /// True when notifications are sent.
    public var isEnabled: Bool { socketPath != nil }

    /// Sends `READY=1`, `MAINPID=<pid>` and, if given, `STATUS=<status>`.
    public func ready(status: String? = nil, pid: Int32 = getpid()) throws(SystemError) {
        var message = "READY=1\nMAINPID=\(pid)"
        if let status { message += "\nSTATUS=\(status)" }
        try send(message)
    }

    /// Sends `STOPPING=1` (graceful stop has begun).
    public func stopping() throws(SystemError) {
        try send("STOPPING=1")
    }

    /// Sends `STATUS=<text>` (shown by `systemctl status`).
    public func status(_ text: String) throws(SystemError) {
        try send("STATUS=\(text)")
    }

    /// Sends one raw notification datagram (newline-separated `KEY=value` assignments).
    ///
    /// - Throws: ``SystemError`` when the address is too long or the socket calls fail.
    public func send(_ message: String) throws(SystemError) {
        guard let socketPath else { return }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else {
            throw SystemError("NOTIFY_SOCKET \(socketPath)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        // Abstract names are exactly their bytes; filesystem paths include the terminating NUL.
        let length = socklen_t(pathOffset + pathBytes.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .current("socket AF_UNIX") }
        defer { Syscall.close(fd) }
        var bytes = Array(message.utf8)
        var sent: Int
        repeat {
            sent = withUnsafePointer(to: &address) { ap in
                ap.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    bytes.withUnsafeMutableBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
                }
            }
        } while sent < 0 && errno == EINTR
        if sent < 0 { throw .current("sendto \(socketPath)") }
    }
}

/// Sockets passed by systemd socket activation (`sd_listen_fds` without libsystemd).
///
/// The parsing is a pure function of the environment and the pid, following Twisted's
/// `ListenFDs`:
/// - `LISTEN_PID` must equal our pid, else nothing was passed to *us* (a parent's leftovers).
/// - `LISTEN_FDS` counts descriptors numbered from 3 (`SD_LISTEN_FDS_START`).
/// - `LISTEN_FDNAMES` is `:`-separated, one name per descriptor (`FileDescriptorName=`).
///   If it is absent, the descriptors are used unnamed (match them by position; this is what
///   systemd before 227 and `systemd-socket-activate` without `--fdname` give). If it is present
///   but the count disagrees with `LISTEN_FDS`, the environment is inconsistent and, as in
///   Twisted, *all* descriptors are ignored; ``problem`` says why, for the log.
public struct ListenFDs: Sendable, Equatable {
    /// The first passed descriptor (`SD_LISTEN_FDS_START`).
    public static let start: Int32 = 3

    /// The passed descriptors, in order.
    public let descriptors: [Int32]
    /// Their names, one per descriptor, or `nil` when none were given.
    public let names: [String]?
    /// Why the environment was ignored, if it was.
    public let problem: String?

    /// Parses the three variables from `environment` for a process with id `pid`.
    public init(environment: [String: String], pid: Int32) {
        guard let listenPID = environment["LISTEN_PID"], listenPID == String(pid),
            let countText = environment["LISTEN_FDS"]
        else {
            self.init(descriptors: [], names: nil, problem: nil)
            return
        }
        guard let count = Int32(countText), count >= 0, count <= 4096 else {
            self.init(descriptors: [], names: nil, problem: "LISTEN_FDS=\(countText) is not a count")
            return
        }
        let descriptors = (0..<count).map { ListenFDs.start + $0 }
        let namesText = environment["LISTEN_FDNAMES"] ?? ""
        if namesText.isEmpty {
            self.init(descriptors: descriptors, names: nil, problem: nil)
            return
        }
        let names = namesText.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if names.count != descriptors.count {
            self.init(
                descriptors: [], names: nil,
                problem: "LISTEN_FDNAMES has \(names.count) names for LISTEN_FDS=\(count); ignoring socket activation")
            return
        }
        self.init(descriptors: descriptors, names: names, problem: nil)
    }

    init(descriptors: [Int32], names: [String]?, problem: String?) {
        self.descriptors = descriptors
        self.names = names
        self.problem = problem
    }

    /// True when no descriptors were passed.
    public var isEmpty: Bool { descriptors.isEmpty }

    /// The descriptor with `name`, or `nil`.
    public func descriptor(named name: String) -> Int32? {
        guard let names, let i = names.firstIndex(of: name) else { return nil }
        return descriptors[i]
    }

    /// Reads the real environment, sets `FD_CLOEXEC` on every passed descriptor, and unsets
    /// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` so no child process sees them.
    ///
    /// Changes process-wide state: call it once, from `main`, early.
    ///
    /// - Throws: ``SystemError`` if a passed descriptor is not open.
    public static func adopt(
        environment: [String: String] = ProcessEnvironment.current(), pid: Int32 = getpid()
    ) throws(SystemError) -> ListenFDs {
        let fds = ListenFDs(environment: environment, pid: pid)
        ProcessEnvironment.unset(["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"])
        for fd in fds.descriptors {
            if let e = Syscall.setCloseOnExec(fd, true) { throw SystemError("fcntl fd \(fd)", errno: e) }
        }
        return fds
    }
}
