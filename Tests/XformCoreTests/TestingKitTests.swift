import Testing
import XformCore
import XformTesting

/// Records every event it gets; echoes lines back upper-cased when `echo` is set.
final class Recorder: BaseProtocol {
    var events: [String] = []
    var received: [UInt8] = []
    var echo = false
    var greeting: String?
    override func connectionMade() {
        events.append("made")
        if let greeting { transport?.write(greeting) }
    }
    override func dataReceived(_ data: UnsafeRawBufferPointer) {
        received.append(contentsOf: data)
        events.append("data \(data.count)")
        if echo { transport?.write(Array(data)) }
    }
    override func readConnectionLost() {
        events.append("eof")
        super.readConnectionLost()
    }
    override func connectionLost(reason: ConnectionEnd) {
        super.connectionLost(reason: reason)
        events.append("lost \(reason == .done ? "done" : "lost")")
    }
}

@Suite("IOPump")
struct IOPumpTests {
    @Test("Bytes flow both ways until quiet, greetings included")
    func flowsBothWays() {
        let server = Recorder()
        server.echo = true
        server.greeting = "hi"
        let client = Recorder()
        let pump = IOPump.connect(client: client, server: server)
        #expect(client.received == Array("hi".utf8))
        client.transport?.write("ping")
        #expect(pump.flush())
        #expect(server.received == Array("ping".utf8))
        #expect(client.received == Array("hiping".utf8))
    }

    @Test("loseConnection delivers pending bytes, then both sides hear connectionLost(.done)")
    func loseConnection() {
        let server = Recorder(), client = Recorder()
        let pump = IOPump.connect(client: client, server: server)
        server.transport?.write("bye")
        server.transport?.loseConnection()
        pump.flush()
        #expect(client.received == Array("bye".utf8))
        #expect(client.events.last == "lost done")
        #expect(server.events.last == "lost done")
        #expect(pump.isClosed)
    }

    @Test("abortConnection drops pending bytes and both sides hear connectionLost(.lost)")
    func abort() {
        let server = Recorder(), client = Recorder()
        let pump = IOPump.connect(client: client, server: server)
        client.transport?.write("never")
        client.transport?.abortConnection()
        pump.flush()
        #expect(server.received.isEmpty)
        #expect(server.events.last == "lost lost")
        #expect(client.events.last == "lost lost")
    }

    @Test("loseWriteConnection reaches the peer as readConnectionLost after the bytes")
    func halfClose() {
        let server = Recorder(), client = Recorder()
        let pump = IOPump.connect(client: client, server: server)
        client.transport?.write("req")
        client.transport?.loseWriteConnection()
        pump.flush()
        // The server's default readConnectionLost closes the connection.
        #expect(server.events == ["made", "data 3", "eof", "lost done"])
        #expect(client.events.last == "lost done")
    }

    @Test("pauseReading holds bytes until resumeReading")
    func pausing() {
        let server = Recorder(), client = Recorder()
        let pump = IOPump.connect(client: client, server: server)
        server.transport?.pauseReading()
        client.transport?.write("x")
        pump.flush()
        #expect(server.received.isEmpty)
        server.transport?.resumeReading()
        pump.flush()
        #expect(server.received == [UInt8(ascii: "x")])
    }

    @Test("Zero-delay calls on the pump's clock run during flush")
    func clockRuns() {
        let clock = ManualClock()
        let server = Recorder(), client = Recorder()
        let pump = IOPump.connect(client: client, server: server, clock: clock)
        clock.callLater(.zero) { server.transport?.write("later") }
        pump.flush()
        #expect(client.received == Array("later".utf8))
    }
}

@Suite("ManualClock targets")
struct ManualClockTargetTests {
    final class Target: TimerTarget {
        var fired: [Duration] = []
        let clock: ManualClock
        init(_ clock: ManualClock) { self.clock = clock }
        func timerFired() { fired.append(clock.now) }
    }

    @Test("A scheduled target fires once at its deadline, in order with callLater; a cancelled one never")
    func targetsFire() {
        let clock = ManualClock()
        let a = Target(clock), b = Target(clock)
        var order: [String] = []
        _ = clock.schedule(a, atNanoseconds: 2_000_000_000)
        let token = clock.schedule(b, atNanoseconds: 1_000_000_000)
        clock.callLater(.seconds(1)) { order.append("call") }
        clock.cancelTimer(token)
        clock.advance(by: .seconds(1))
        #expect(a.fired.isEmpty && b.fired.isEmpty && order == ["call"])
        clock.advance(by: .seconds(5))
        #expect(a.fired == [.seconds(2)])
        #expect(b.fired.isEmpty)
        #expect(clock.pendingCalls.isEmpty)
    }
}

@Suite("MemoryReactor")
struct MemoryReactorTests {
    final class Factory: ServerFactory {
        var started = 0, stopped = 0
        var refuse = false
        func buildProtocol(peer: SocketAddress) -> (any ConnectionProtocol)? {
            guard !refuse else { return nil }
            let r = Recorder()
            r.echo = true
            return r
        }
        func startFactory() { started += 1 }
        func stopFactory() { stopped += 1 }
    }

    final class Client: ClientFactory {
        var events: [String] = []
        var proto: Recorder?
        func buildProtocol(peer: SocketAddress) -> any ConnectionProtocol {
            events.append("build \(peer)")
            let r = Recorder()
            proto = r
            return r
        }
        func clientConnectionFailed(_ connector: any Connector, reason: ConnectError) { events.append("failed \(reason)") }
        func clientConnectionLost(_ connector: any Connector, reason: ConnectionEnd) { events.append("lost \(reason)") }
    }

    @Test("listenTCP records the port, assigns one for 0, and accepts in-memory connections")
    func listen() throws {
        let reactor = MemoryReactor()
        let f = Factory()
        let port = try reactor.listenTCP(port: 0, factory: f, interface: "127.0.0.1", backlog: 50)
        #expect(port.address.port == 40000)
        #expect(f.started == 1)
        let lp = try #require(reactor.listener(port: 40000))
        let client = Recorder()
        let pump = try #require(lp.accept(client: client))
        client.transport?.write("echo")
        pump.flush()
        #expect(client.received == Array("echo".utf8))
        #expect(successResult(of: port.stopListening()) != nil)
        #expect(f.stopped == 1)
    }

    @Test("connectTCP attempts can succeed, fail, time out, or be cancelled")
    func connect() {
        let reactor = MemoryReactor()
        let ok = Client()
        let a = reactor.connectTCP(host: "127.0.0.1", port: 7, factory: ok, timeout: .seconds(5)) as! ConnectionAttempt
        let server = Recorder()
        server.echo = true
        let pump = a.succeed(with: server)
        ok.proto?.transport?.write("x")
        pump.flush()
        #expect(ok.proto?.received == [UInt8(ascii: "x")])
        a.disconnect()
        pump.flush()
        #expect(ok.events == ["build 127.0.0.1:7", "lost connection was closed cleanly"])

        let refused = Client()
        let b = reactor.connectTCP(host: "127.0.0.1", port: 8, factory: refused, timeout: .seconds(5)) as! ConnectionAttempt
        b.fail(.refused)
        #expect(refused.events == ["failed connection refused"])

        let slow = Client()
        reactor.connectTCP(host: "127.0.0.1", port: 9, factory: slow, timeout: .seconds(5))
        reactor.advance(by: .seconds(5))
        #expect(slow.events == ["failed connect timed out"])

        let cancelled = Client()
        let c = reactor.connectTCP(host: "127.0.0.1", port: 10, factory: cancelled, timeout: .seconds(5))
        c.disconnect()
        #expect(cancelled.events == ["failed connect cancelled"])
        #expect(reactor.pendingConnectAttempts.isEmpty)
        #expect(reactor.clock.pendingCalls.isEmpty)
    }

    @Test("Calls from other threads wait until runThreadCalls")
    func threading() async {
        let reactor = MemoryReactor()
        let threading = reactor.threading
        await Task.detached { threading.callFromThread {} ; threading.callFromThread {} }.value
        #expect(reactor.manualThreading.pendingCount == 2)
        #expect(reactor.runThreadCalls() == 2)
        #expect(reactor.manualThreading.pendingCount == 0)
    }
}

/// A line decoder for exercising the verifier: frames end with "\n"; "!" is malformed.
struct LineDecoder: FrameDecoder {
    var buffer: [UInt8] = []
    var dropsLastByte = false  // a deliberate bug
    struct Malformed: Error {}
    mutating func feed(_ bytes: UnsafeRawBufferPointer) { buffer.append(contentsOf: bytes) }
    mutating func next() throws -> String? {
        if buffer.contains(UInt8(ascii: "!")) { throw Malformed() }
        guard let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var line = Array(buffer[..<nl])
        buffer.removeFirst(nl + 1)
        if dropsLastByte, buffer.isEmpty, !line.isEmpty { line.removeLast() }
        return String(decoding: line, as: UTF8.self)
    }
    mutating func finish() throws { if !buffer.isEmpty { throw Malformed() } }
}

/// A decoder that only looks at the first chunk it is fed (wrong under chunking).
struct FirstChunkDecoder: FrameDecoder {
    var pending: [String] = []
    var fed = false
    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !fed else { return }
        fed = true
        pending = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }
    mutating func next() throws -> String? { pending.isEmpty ? nil : pending.removeFirst() }
    mutating func finish() throws {}
}

@Suite("DecoderVerifier")
struct DecoderVerifierTests {
    @Test("A correct decoder passes under every chunking")
    func correct() {
        let failures = DecoderVerifier<LineDecoder>.verify(
            inputOutputPairs: [(Array("ab\nc".utf8), ["ab"]), (Array("d\n\n".utf8), ["cd", ""]), ([], [])]
        ) { LineDecoder() }
        #expect(failures.isEmpty)
    }

    @Test("A decoder that ignores later chunks is caught as under-producing")
    func underProduction() {
        let failures = DecoderVerifier<FirstChunkDecoder>.verify(
            inputOutputPairs: [(Array("a\n".utf8), ["a"]), (Array("b\n".utf8), ["b"])], recordIssues: false
        ) { FirstChunkDecoder() }
        #expect(failures.contains { $0.strategy == "one byte at a time" && $0.message.contains("under-production") })
        #expect(failures.contains { $0.strategy == "each input whole" })
        #expect(!failures.contains { $0.strategy == "all at once" })
    }

    @Test("A decoder producing a wrong frame is caught with the frame named")
    func wrongFrame() {
        let failures = DecoderVerifier<LineDecoder>.verify(
            inputOutputPairs: [(Array("ab\n".utf8), ["ab"])], recordIssues: false
        ) { LineDecoder(dropsLastByte: true) }
        #expect(failures.contains { $0.message.contains("wrong frame #0") })
    }

    @Test("verifyRejects checks that malformed input throws under every chunking")
    func rejects() {
        #expect(DecoderVerifier<LineDecoder>.verifyRejects(Array("ab!\n".utf8), makeDecoder: { LineDecoder() }) {
            $0 is LineDecoder.Malformed
        }.isEmpty)
        // Truncated input is rejected by finish().
        #expect(DecoderVerifier<LineDecoder>.verifyRejects(Array("abc".utf8), makeDecoder: { LineDecoder() }).isEmpty)
        let accepted = DecoderVerifier<LineDecoder>.verifyRejects(
            Array("fine\n".utf8), recordIssues: false, makeDecoder: { LineDecoder() })
        #expect(accepted.count == 22)
        #expect(accepted.first?.message.contains("accepted") == true)
    }
}

@Suite("Deferred assertions and log capture")
struct AssertionTests {
    @Test("successResult, failureResult and expectNoResult record issues when the Deferred disagrees")
    func recordsIssues() {
        withKnownIssue { _ = successResult(of: Deferred<Int>()) }
        withKnownIssue { _ = successResult(of: fail(Boom(), as: Int.self)) }
        withKnownIssue { _ = failureResult(of: succeed(1), as: Boom.self) }
        withKnownIssue { _ = failureResult(of: fail(CancelledError(), as: Int.self), as: Boom.self) }
        withKnownIssue { expectNoResult(succeed(1)) }
        let paused = succeed(1)
        paused.pause()
        expectNoResult(paused)
        paused.unpause()
        #expect(successResult(of: paused) == 1)
    }

    @Test("failureResult marks the failure handled")
    func failureHandled() {
        let errors = UnhandledErrors.capture {
            let d = fail(Boom(n: 2), as: Int.self)
            #expect(failureResult(of: d, as: Boom.self) == Boom(n: 2))
        }
        #expect(errors.isEmpty)
    }

    @Test("InMemoryLogHandler keeps records at or above its level")
    func logHandler() {
        let h = InMemoryLogHandler(minimumLevel: .info)
        let log = h.logger(system: "t")
        log.debug("hidden")
        log.warning("shown")
        #expect(h.messages == ["shown"])
        #expect(h.contains("sho", level: .warning))
        #expect(h.records.first?.system == "t")
        h.clear()
        #expect(h.records.isEmpty)
    }
}
