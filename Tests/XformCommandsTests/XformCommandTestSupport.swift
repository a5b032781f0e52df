import Dispatch
import Foundation
import XformCommands
import XformCore
import XformDaemon
import XformReactor
import XformServer
import XformTransforms

/// What one in-process run of `xform` printed and returned.
struct XformRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `xform` in-process with `stdin` and in-memory files; the network is real (127.0.0.1).
func runXform(_ arguments: [String], stdin: [UInt8] = [], files: [String: [UInt8]] = [:]) -> XformRun {
    var out: [UInt8] = []
    var err = ""
    let io = XformCommand.CommandIO(
        readStandardInput: { .success(stdin) },
        readFile: { path in
            if let bytes = files[path] { return .success(bytes) }
            return .failure(SystemError("open", errno: ENOENT))
        },
        writeOutput: { out += $0; return true },
        writeError: { err += $0 })
    let status = XformCommand.main(arguments: arguments, environment: [:], io: io)
    return XformRun(status: status, stdout: String(decoding: out, as: UTF8.self), stderr: err)
}

/// A real transform server on 127.0.0.1 (kernel-chosen ports) on its own EpollReactor thread.
///
/// `@unchecked Sendable`: the reactor and server are built on the creating thread and handed to
/// the reactor thread when it starts; afterwards only the thread-safe `threadingHandle` is used.
final class XformTestServer: @unchecked Sendable {
    let reactor: EpollReactor
    let server: TransformServer
    let netstringPort: Int
    let linePort: Int
    let done = DispatchSemaphore(value: 0)

    init() throws {
        reactor = try EpollReactor()
        let state = ServerState(backend: TransformService(), clock: reactor)
        server = TransformServer(
            state: state, reactor: reactor, interface: "127.0.0.1", netstringPort: 0, linePort: 0)
        try server.root.privilegedStartService()
        server.root.startService()
        netstringPort = server.netstringServer.port!.address.port
        linePort = server.lineServer.port!.address.port
        let thread = Thread { [self] in
            reactor.run()
            done.signal()
        }
        thread.start()
    }

    /// Stops the reactor and waits up to 10 s for its thread.
    func stop() {
        reactor.threadingHandle.requestStop()
        _ = done.wait(timeout: .now() + 10)
    }
}

/// A port nothing listens on: bound to 0, then closed.
func unusedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}
