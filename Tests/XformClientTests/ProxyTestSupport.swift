// Helpers for the TransformProxy tests: a memory reactor, a real server state on its clock,
// and small misbehaving servers.
import XformClient
import XformCore
import XformFraming
import XformServer
import XformTesting
import XformTransforms

/// A proxy on a MemoryReactor, with a real transform server's state on the same clock.
final class ProxyHarness {
    let reactor = MemoryReactor()
    let state: ServerState
    let proxy: TransformProxy
    var retries: [TransformProxyError] = []

    init(
        endpoints: [Endpoint] = [Endpoint(host: "127.0.0.1", port: 10001)],
        configure: (inout TransformProxy.Configuration) -> Void = { _ in }
    ) {
        state = ServerState(backend: TransformService(), clock: reactor.clock)
        var config = TransformProxy.Configuration()
        configure(&config)
        proxy = TransformProxy(endpoints: endpoints, reactor: reactor, configuration: config)
        proxy.onRetry = { [unowned self] _, error, _ in retries.append(error) }
    }

    /// The connect attempts still pending, after running what is due now (a RetryingCall makes
    /// even its first attempt from a zero-delay call on the clock).
    var pending: [ConnectionAttempt] {
        reactor.advance(by: .zero)
        return reactor.pendingConnectAttempts
    }

    /// A fresh netstring transform protocol of the real server.
    func netstringServer() -> any ConnectionProtocol {
        NetstringTransformFactory(state: state).buildProtocol(peer: SocketAddress(host: "127.0.0.1", port: 1))!
    }

    /// A fresh line transform protocol of the real server.
    func lineServer() -> any ConnectionProtocol {
        LineTransformFactory(state: state).buildProtocol(peer: SocketAddress(host: "127.0.0.1", port: 1))!
    }

    /// Completes the oldest pending connect attempt with the real netstring server.
    @discardableResult
    func serveNext() -> IOPump {
        pending[0].succeed(with: netstringServer())
    }

    /// Advances the clock by `amount` (zero runs what is due now).
    func advance(_ amount: Duration = .zero) { reactor.advance(by: amount) }
}

/// A server protocol driven by a closure: it sees each chunk of bytes and may answer or close.
final class FakeServer: BaseProtocol {
    var received: [UInt8] = []
    let onData: (FakeServer, [UInt8]) -> Void

    init(_ onData: @escaping (FakeServer, [UInt8]) -> Void = { _, _ in }) {
        self.onData = onData
    }

    override func dataReceived(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        received += bytes
        onData(self, bytes)
    }

    /// Never answers.
    static func silent() -> FakeServer { FakeServer() }

    /// Answers the first chunk with `reply`, then closes (or not).
    static func replying(_ reply: String, close: Bool = false) -> FakeServer {
        FakeServer { server, _ in
            server.transport?.write(reply)
            if close { server.transport?.loseConnection() }
        }
    }

    /// Closes on the first chunk, without a reply.
    static func closing() -> FakeServer {
        FakeServer { server, _ in server.transport?.loseConnection() }
    }
}

/// The book's original server: `name.text` gets the upper-cased text and a close; anything else
/// (the extended `!`/`?` forms, an unknown name) is closed without a reply.
final class OriginalServer: NetstringReceiver {
    var requests: [String] = []
    let known: Set<String>

    init(known: Set<String> = ["upper"]) {
        self.known = known
        super.init()
    }

    override func stringReceived(_ payload: UnsafeRawBufferPointer) {
        let s = String(decoding: payload, as: UTF8.self)
        requests.append(s)
        guard let dot = s.firstIndex(of: "."), known.contains(String(s[..<dot])) else {
            transport?.loseConnection()
            return
        }
        sendString(Array(s[s.index(after: dot)...].uppercased().utf8))
        transport?.loseConnection()
    }
}

func ns(_ s: String) -> String { "\(s.utf8.count):\(s)," }

extension PumpTransport {
    var writtenText: String { String(decoding: written, as: UTF8.self) }
}
