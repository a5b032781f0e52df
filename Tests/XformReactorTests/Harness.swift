import Foundation
import Synchronization
import XformCore
import XformReactor

/// A value shared between the reactor thread and the test, behind a lock.
final class Locked<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func update<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// How a reactor run ended.
struct ReactorRun: Sendable {
    /// The watchdog stopped the reactor: the test's completion signal never came.
    var timedOut = false
    /// `setup` threw.
    var setupError: String?
}

/// Runs a fresh reactor on a dedicated thread: `setup` runs there first (it arranges for
/// something to call `reactor.stop()`), then `run()` until stop. A watchdog timer stops the
/// reactor after `timeout` and marks the run as timed out, so no test can hang.
func withReactor(
    timeout: Duration = .seconds(30), configuration: EpollReactor.Configuration = .init(),
    _ setup: @escaping @Sendable (EpollReactor) throws -> Void
) async -> ReactorRun {
    await withCheckedContinuation { (continuation: CheckedContinuation<ReactorRun, Never>) in
        let thread = Thread {
            var result = ReactorRun()
            do {
                let reactor = try EpollReactor(configuration: configuration)
                let timedOut = Locked(false)
                reactor.callLater(timeout) {
                    timedOut.update { $0 = true }
                    reactor.stopNow()
                }
                do {
                    try setup(reactor)
                } catch {
                    result.setupError = "\(error)"
                    reactor.stop()
                }
                reactor.run()
                result.timedOut = timedOut.value
            } catch {
                result.setupError = "\(error)"
            }
            continuation.resume(returning: result)
        }
        thread.start()
    }
}

/// Echoes every byte back.
final class EchoProtocol: BaseProtocol {
    override func dataReceived(_ data: UnsafeRawBufferPointer) { transport?.write(data) }
}

/// A server factory from a closure.
final class ServerFactoryOf: ServerFactory {
    let make: (SocketAddress) -> (any ConnectionProtocol)?
    init(_ make: @escaping (SocketAddress) -> (any ConnectionProtocol)?) { self.make = make }
    func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? { make(peer) }
}

/// A client factory from closures.
final class ClientFactoryOf: ClientFactory {
    let make: (SocketAddress) -> any ConnectionProtocol
    let failed: (ConnectError) -> Void
    var lost: (ConnectionEnd) -> Void = { _ in }
    init(
        _ make: @escaping (SocketAddress) -> any ConnectionProtocol,
        failed: @escaping (ConnectError) -> Void = { _ in }
    ) {
        self.make = make
        self.failed = failed
    }
    func buildProtocol(peer: SocketAddress) -> any ConnectionProtocol { make(peer) }
    func clientConnectionFailed(_ connector: any Connector, reason: ConnectError) { failed(reason) }
    func clientConnectionLost(_ connector: any Connector, reason: ConnectionEnd) { lost(reason) }
}

/// A protocol whose callbacks are closures (unset ones do the BaseProtocol default).
final class ScriptedProtocol: BaseProtocol {
    var onMade: ((ScriptedProtocol) -> Void)?
    var onData: ((ScriptedProtocol, UnsafeRawBufferPointer) -> Void)?
    var onReadLost: ((ScriptedProtocol) -> Void)?
    var onFull: ((ScriptedProtocol) -> Void)?
    var onDrained: ((ScriptedProtocol) -> Void)?
    var onLost: ((ScriptedProtocol, ConnectionEnd) -> Void)?
    var received: [UInt8] = []
    var lostCount = 0
    var lostReason: ConnectionEnd?

    override func connectionMade() { onMade?(self) }
    override func dataReceived(_ data: UnsafeRawBufferPointer) {
        if let onData { onData(self, data) } else { received.append(contentsOf: data) }
    }
    override func readConnectionLost() {
        if let onReadLost { onReadLost(self) } else { super.readConnectionLost() }
    }
    override func writeBufferFull() {
        if let onFull { onFull(self) } else { super.writeBufferFull() }
    }
    override func writeBufferDrained() {
        if let onDrained { onDrained(self) } else { super.writeBufferDrained() }
    }
    override func connectionLost(reason: ConnectionEnd) {
        super.connectionLost(reason: reason)
        lostCount += 1
        lostReason = reason
        onLost?(self, reason)
    }
}
