import XformCore
import XformFraming

/// What a ``ReplyPipeline`` needs from the protocol that owns it (both receivers offer these).
protocol ReplyPipelineOwner: DrainableConnection {
    var transport: (any Transport)? { get }
    func pauseDelivery()
    func resumeDelivery()
    var isDeliveryPaused: Bool { get }
}

/// The session side of one connection, shared by both transform protocols: registration with
/// the dispatcher (counters, shutdown), the idle timeout, and the replies. Replies leave in
/// request order even when some are computed later; at most `maxPendingPerConnection` requests
/// wait at once (delivery of further requests pauses); the connection closes once everything
/// owed is sent when asked to (EOF, the original form's lifecycle, shutdown, errors).
final class ReplyPipeline {
    /// The protocol that owns this pipeline (and so outlives it); set right after init.
    /// `unowned(unsafe)`: no reference counting on the hot path, safe because the owner holds
    /// the pipeline strongly and the pipeline's callbacks hold the pipeline only weakly.
    unowned(unsafe) var owner: (any ReplyPipelineOwner)!
    let dispatcher: TransformDispatcher
    @exclusivity(unchecked) private var sequencer = ReplySequencer()
    @exclusivity(unchecked) private var pending: [Int: Deferred<[UInt8]>] = [:]
    /// Take no more requests.
    @exclusivity(unchecked) var stopped = false
    /// The connection is gone: late results are dropped.
    @exclusivity(unchecked) private var lost = false
    /// Close once every owed reply is sent.
    @exclusivity(unchecked) private(set) var closeWhenDone = false

    @exclusivity(unchecked) private var idle: IdleTimeout?
    private let port: String

    init(dispatcher: TransformDispatcher, port: String) {
        self.dispatcher = dispatcher
        self.port = port
    }

    /// The connection is up: registers it and starts the idle timeout.
    func connectionMade(onIdle: @escaping (Duration) -> Void) {
        dispatcher.register(owner, port: port)
        if let timeout = dispatcher.limits.idleTimeout {
            idle = IdleTimeout(clock: dispatcher.clock, timeout: timeout) { [weak self] in
                onIdle(timeout)
                self?.owner.transport?.loseConnection()
            }
        }
    }

    /// Bytes arrived: counts them and restarts the idle period.
    @inline(__always)
    func received(_ byteCount: Int) {
        dispatcher.stats.bytesIn &+= byteCount
        idle?.touch()
    }

    /// True when no reply is owed: a reply may go straight to the transport.
    var isIdle: Bool { sequencer.isEmpty }

    /// Sends a reply now, or queues it behind the replies still owed.
    func send(_ bytes: [UInt8]) {
        if sequencer.isEmpty {
            write(bytes)
        } else {
            sequencer.append(bytes)
        }
    }

    private func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        dispatcher.stats.bytesOut += bytes.count
        owner.transport?.write(bytes)
    }

    /// Waits for an asynchronous transform, keeping the reply's place in the order.
    ///
    /// - Parameters:
    ///   - render: frames the transformed text as this protocol's success reply.
    ///   - renderError: frames a failure; nil means "close without a reply" (the original form).
    func await(
        _ deferred: Deferred<[UInt8]>, transform: String, render: @escaping ([UInt8]) -> [UInt8],
        renderError: ((WireError) -> [UInt8])?
    ) {
        let ticket = sequencer.reserve()
        pending[ticket] = deferred
        let started = dispatcher.clock.now
        if pending.count >= dispatcher.limits.maxPendingPerConnection { owner.pauseDelivery() }
        deferred.addCallbacks(
            { [weak self] bytes in
                guard let self, !self.lost else { return bytes }
                self.dispatcher.stats.count(transform: transform, outcome: "ok")
                self.dispatcher.stats.record(latency: self.dispatcher.clock.now - started)
                self.complete(ticket, with: render(bytes))
                return bytes
            },
            { [weak self] error in
                guard let self, !self.lost else { return [] }
                let wire = self.dispatcher.wireError(error)
                self.dispatcher.stats.count(transform: transform, outcome: wire.code)
                self.dispatcher.logger.debug("\(transform) failed: \(wire)")
                if let renderError {
                    self.complete(ticket, with: renderError(wire))
                } else {
                    self.stopped = true
                    self.sequencer.appendCloseAfter(ticket)
                    self.complete(ticket, with: [])
                }
                return []
            })
    }

    private func complete(_ ticket: Int, with bytes: [UInt8]) {
        pending[ticket] = nil
        sequencer.fill(ticket, with: bytes)
        let closing = sequencer.flush { write($0) }
        if closing {
            owner.transport?.loseConnection()
            return
        }
        if owner.isDeliveryPaused, pending.count < dispatcher.limits.maxPendingPerConnection, !stopped {
            owner.resumeDelivery()
        }
        finishIfDone()
    }

    /// Closes after the replies owed so far (at once if none); takes no more requests.
    func closeAfterOwed() {
        stopped = true
        if sequencer.isEmpty {
            owner.transport?.loseConnection()
        } else {
            sequencer.appendClose()
        }
    }

    /// Asks for a close once everything owed is sent, and closes now if that is so.
    func closeWhenFinished() {
        closeWhenDone = true
        finishIfDone()
    }

    /// Closes if a close was asked for and nothing is owed.
    func finishIfDone() {
        guard closeWhenDone, sequencer.isEmpty, pending.isEmpty, let transport = owner.transport,
            !transport.disconnecting
        else { return }
        transport.loseConnection()
    }

    /// The connection is gone: stops the idle timeout, cancels the transforms still running for
    /// it, and unregisters it.
    func connectionLost() {
        idle?.cancel()
        idle = nil
        defer { dispatcher.unregister(owner, port: port) }
        stopped = true
        lost = true
        let inFlight = pending.values
        pending.removeAll()
        for d in inFlight { d.cancel() }
    }
}
