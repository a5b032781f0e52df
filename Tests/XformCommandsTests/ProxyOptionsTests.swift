import Testing
import XformClient
import XformDaemon

@testable import XformCommands

/// The options of a command line (with an in-memory config file), or nil when it does not run.
private func proxyOptions(_ arguments: [String], files: [String: String] = [:]) -> TransformServerOptions? {
    let invocation = TransformServerCommand.evaluate(
        arguments, environment: [:], currentDirectory: "/srv",
        configFileReader: { (path) throws(CommandLineError) -> String in
            guard let text = files[path] else { throw .configFileUnreadable(path: path, reason: "missing") }
            return text
        })
    if case .run(let o) = invocation { return o }
    return nil
}

/// The error text and status of a command line that does not run.
private func proxyError(_ arguments: [String]) -> (Int32, String)? {
    if case .exit(let status, _, let err) = TransformServerCommand.evaluate(
        arguments, environment: [:], currentDirectory: "/srv")
    {
        return (status, err)
    }
    return nil
}

@Suite("transform-server proxy options")
struct ProxyOptionsTests {
    @Test("Without --upstream the server is no proxy; the cache defaults to 64 MiB, no TTL")
    func defaults() {
        let o = proxyOptions([])
        #expect(o?.upstreams == [])
        #expect(o?.upstreamTransforms == nil)
        #expect(o?.cacheBytes == 64 * 1024 * 1024)
        #expect(o?.cacheTTL == nil)
    }

    @Test("--upstream is repeatable, in order; IPv6 literals go in brackets")
    func upstreams() {
        let o = proxyOptions(["--upstream", "127.0.0.1:10001", "--upstream", "[::1]:10003", "--upstream", "fleet:7"])
        #expect(
            o?.upstreams == [
                Endpoint(host: "127.0.0.1", port: 10001), Endpoint(host: "::1", port: 10003),
                Endpoint(host: "fleet", port: 7),
            ])
    }

    @Test("Cache size, TTL and upstream transforms are parsed; 0 TTL means none")
    func cacheAndNames() {
        let o = proxyOptions([
            "--upstream", "h:1", "--upstream-transforms", "cummingsify, upper", "--cache-bytes", "0", "--cache-ttl",
            "2h",
        ])
        #expect(o?.upstreamTransforms == ["cummingsify", "upper"])
        #expect(o?.cacheBytes == 0)
        #expect(o?.cacheTTL == .seconds(7200))
        #expect(proxyOptions(["--upstream", "h:1", "--cache-ttl", "0"])?.cacheTTL == nil)
    }

    @Test("Upstreams and cache settings come from the config file too")
    func configFile() {
        let files = ["/etc/p.conf": "upstream = 127.0.0.1:10001\nupstream = 127.0.0.1:10003\ncache-bytes = 1000\n"]
        let o = proxyOptions(["--config", "/etc/p.conf"], files: files)
        #expect(o?.upstreams.map(\.port) == [10001, 10003])
        #expect(o?.cacheBytes == 1000)
    }

    @Test("A bad upstream address, a bad name, or names without --upstream are refused (64)")
    func refused() {
        for bad in ["localhost", "h:0", "h:70000", ":10001", "h:x"] {
            let e = proxyError(["--upstream", bad])
            #expect(e?.0 == 64, "accepted \(bad)")
            #expect(e?.1.contains("expected host:port") == true)
        }
        #expect(proxyError(["--upstream", "h:1", "--upstream-transforms", "Upper"])?.1.contains("not a valid transform name") == true)
        #expect(proxyError(["--upstream-transforms", "upper"])?.1.contains("it needs --upstream") == true)
        #expect(proxyError(["--cache-bytes", "-1"])?.0 == 64)
    }
}
