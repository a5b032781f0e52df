import Glibc
import XformCore
import XformReactor
import XformServer
import XformTransforms

/// `xform-bench serve PORT [LINEPORT]`: the transform server on the epoll reactor with nothing
/// else (no daemon layers, no idle timeout), for load generators and profilers. Runs until
/// SIGINT/SIGTERM.
func runServe(_ args: [String]) {
    let port = args.first.flatMap { Int($0) } ?? 17002
    let linePort = args.dropFirst().first.flatMap { Int($0) } ?? 0
    do {
        try EpollReactor.blockSignals([SIGINT, SIGTERM])
        let reactor = try EpollReactor()
        var limits = ServerLimits()
        limits.idleTimeout = nil
        limits.maxRequestBytes = 16 * 1024 * 1024
        limits.maxConnections = 20_000
        let state = ServerState(
            backend: TransformService(), clock: reactor, threadPool: reactor, limits: limits)
        let server = TransformServer(
            state: state, reactor: reactor, interface: "127.0.0.1", netstringPort: port, linePort: linePort)
        try server.root.privilegedStartService()
        server.root.startService()
        try reactor.handleSignals([SIGINT, SIGTERM]) { _ in reactor.stop() }
        print("serving netstring on 127.0.0.1:\(server.netstringServer.port!.address.port)")
        fflush(nil)  // flushes every stream; `stdout` itself is a mutable global Swift 6 rejects
        reactor.run()
        let served = state.stats.requests.values.reduce(0) { $0 + $1.values.reduce(0, +) }
        print("served \(served) requests")
        fflush(nil)
    } catch {
        print("xform-bench serve: \(error)")
        exit(1)
    }
}
