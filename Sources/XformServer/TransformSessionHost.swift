import XformCore
import XformFraming
import XformTransforms

/// What a transform protocol (one per wire format) gives the code both share: it owns a
/// ``ConnectionSession`` and turns replies and errors into its wire format; everything else
/// (running a request on the backend, waiting for pending replies, counting, the idle timeout,
/// carrying out the session's actions, registration for shutdown) is written once, below.
protocol TransformSessionHost: DrainableConnection, TimerTarget {
    /// How one request wants its reply framed (the form it came in).
    associatedtype ReplyStyle

    /// The state the server's connections share.
    var state: ServerState { get }
    /// This connection's lifecycle, idle timer and counter cache.
    var host: SessionHostState { get set }
    /// The port, for counters and log tags.
    var port: ServerPort { get }
    /// The transport, while connected.
    var transport: (any Transport)? { get }

    /// Stops delivering requests (the pending limit).
    func pauseDelivery()
    /// Delivers the buffered requests and goes on.
    func resumeDelivery()
    /// Stops reading from the peer for good.
    func stopReading()

    /// The success reply for `text`.
    func successReply(_ text: [UInt8], style: ReplyStyle) -> [UInt8]
    /// The error reply, or nil where the form's only signal is a close without reply.
    func errorReply(_ error: WireError, style: ReplyStyle) -> [UInt8]?
    /// What is sent before a deadline closes the connection (nil: nothing, the netstring port
    /// closes silently).
    func expiryNotice(_ expiry: ConnectionSession<Deferred<[UInt8]>>.Expiry) -> [UInt8]?
    /// True while part of a request has arrived and the rest has not.
    var hasPartialRequest: Bool { get }
    /// The hot path: writes the success reply for `fast` applied to `text` straight into the
    /// transport's output buffer (the transform writes its output in place).
    ///
    /// - Returns: false when nothing was written (`text` was not all ASCII, or the form needs
    ///   the general path): the general path must answer.
    func writeFastReply(_ fast: CheckedASCIIFastPath, text: UnsafeRawBufferPointer, style: ReplyStyle) -> Bool
}

/// The mutable state every transform protocol keeps for the shared code.
struct SessionHostState {
    /// This connection's lifecycle.
    var session: ConnectionSession<Deferred<[UInt8]>>
    /// The timer armed for the session's next deadline (``TimerToken/none``: none).
    var timer = TimerToken.none
    /// This connection's place in ``ServerState``'s list of open connections (-1: none). 32
    /// bits: it fills the last word of `timer` (memory per connection).
    var registryIndex: Int32 = -1
    /// The deadline `timer` is armed for, in nanoseconds (meaningful while it is set).
    var armedFor: Int64 = 0
    /// The counters of the transform used last: counting a request costs no hashing.
    var lastCounters: TransformCounters?
    /// The pending bytes last reported to ``ServerState``'s budget.
    var reportedPending = 0
    /// The last local transform used (a repeated request skips the registry) and its counters.
    var lastHandle: TransformHandle?
    var lastHandleCounters: TransformCounters?
    /// This connection's place in its port's connection limit.
    var membership = ConnectionLimit.Membership()

    init(configuration: SessionConfiguration) {
        session = ConnectionSession(configuration: configuration)
    }

    /// The session's next deadline, unless the timer is armed for it or earlier (then nil).
    /// Mutating only so that callers reach it through `host`'s modify accessor: a read through
    /// the getter copied the whole session (about 200 instructions per call, callgrind).
    mutating func deadlineToArm() -> Int64? {
        guard let deadline = session.nextDeadline else { return nil }
        if timer.isSet, armedFor <= deadline { return nil }
        return deadline
    }
}

/// The "transform" that writes a reply computed already: its bytes, as they are.
private let copyingReply: CheckedASCIIFastPath = { input, output in
    output.copyMemory(from: input)
    return true
}

extension TransformSessionHost {
    // MARK: Lifecycle

    /// This connection's place in its port's connection limit (``LimitCountedConnection``).
    public var limitMembership: ConnectionLimit.Membership {
        get { host.membership }
        set { host.membership = newValue }
    }

    /// The session's armed deadline passed: close if it expired, else follow the next one.
    public func timerFired() { deadlineReached() }

    /// The connection is up: registers it and starts its idle period.
    func startSession() {
        host.session.start(now: state.clock.nowNanoseconds)
        host.registryIndex = Int32(state.register(self, port: port))
        armDeadline()
    }

    /// Bytes arrived: counts them.
    @inline(__always)
    func received(_ byteCount: Int) {
        state.stats.bytes.add(received: byteCount, port: port)
    }

    /// The requests of one read are handled: the session learns the time and whether a request
    /// is still incomplete (its deadlines move), and the timer follows its next deadline.
    @inline(__always)
    func readEnded() {
        let now = state.clock.nowNanoseconds
        perform(host.session.readEnded(now: now, partialRequest: hasPartialRequest))
        if host.session.deadlineMovedEarlier || !host.timer.isSet {
            host.session.deadlineMovedEarlier = false
            armDeadline()
        }
    }

    /// Arms the one timer for the session's next deadline, unless it is armed for that or
    /// earlier (a deadline that moved later is re-checked when the timer fires: no timer work
    /// per request).
    func armDeadline() {
        guard let deadline = host.deadlineToArm() else { return }
        if host.timer.isSet { state.clock.cancelTimer(host.timer) }
        host.armedFor = deadline
        // The clock calls this protocol itself (`timerFired`): no closure, no handle object.
        // It holds the protocol until the call runs or `endSession` cancels it.
        host.timer = state.clock.schedule(self, atNanoseconds: deadline)
    }

    /// The timer fired: close if a deadline has passed, else follow the next one.
    func deadlineReached() {
        host.timer = .none
        let (expired, actions) = host.session.deadlineCheck(at: state.clock.nowNanoseconds) { expiryNotice($0) }
        if let expired {
            switch expired {
            case .idle(let t): debug("idle for \(t): closing")
            case .request(let t): debug("request not complete after \(t): closing")
            case .drainGrace: debug("shutting down: no request from a connection accepted during shutdown")
            }
            state.stats.countRejected(expired.code)
            perform(actions)
        } else {
            armDeadline()
        }
    }

    /// The connection is gone: stops the timer, withdraws the work still running for it (Part
    /// 19: every pending Deferred is cancelled) and unregisters it.
    func endSession() {
        host.membership.end()
        if host.timer.isSet { state.clock.cancelTimer(host.timer) }
        host.timer = .none
        perform(host.session.connectionLost())
        syncPending()
        state.unregister(at: Int(host.registryIndex), port: port)
        host.registryIndex = -1
    }

    /// Where ``ServerState`` keeps this connection (kept in 32 bits in ``SessionHostState``).
    var registryIndex: Int {
        get { Int(host.registryIndex) }
        set { host.registryIndex = Int32(newValue) }
    }

    /// When it may be evicted: open since then, no request completed, nothing owed.
    var evictableSince: Int64? { host.session.unusedSince }

    /// Closed at the connection limit to make room.
    func evict() {
        debug("closed at the connection limit: no request completed yet")
        perform(host.session.idleTimedOut())
    }

    /// Reports this connection's pending bytes to the server's budget (after they changed).
    func syncPending() {
        let now = host.session.pendingBytes
        let delta = now - host.reportedPending
        guard delta != 0 else { return }
        host.reportedPending = now
        state.pendingWorkChanged(by: delta, on: self, holding: now)
    }

    /// The server's budget: throttle this connection (it holds more than its share) or not.
    func setThrottled(_ on: Bool) {
        perform(host.session.setThrottled(on))
    }

    /// Shutdown: take the replies owed to the end, then close.
    func drain() {
        perform(host.session.shutdown(now: state.clock.nowNanoseconds))
    }

    func drainJustAccepted() {
        perform(host.session.shutdown(now: state.clock.nowNanoseconds, justAccepted: true))
    }

    /// The peer, for log lines: the transport's (a copy in each protocol would cost 24 bytes per
    /// connection), `?:0` once the connection is gone.
    var peer: SocketAddress { transport?.peer ?? SocketAddress(host: "?", port: 0) }

    // MARK: Actions

    /// Carries out what the session decided, in order.
    @inline(__always)
    func perform(_ actions: SessionActions<Deferred<[UInt8]>>) {
        if actions.isEmpty { return }
        performSlowly(actions)
    }

    func performSlowly(_ actions: SessionActions<Deferred<[UInt8]>>) {
        for bytes in actions.writes { write(bytes) }
        for work in actions.cancel { work.cancel() }
        switch actions.delivery {
        case .pause?: pauseDelivery()
        case .resume?: resumeDelivery()
        case nil: break
        }
        if actions.stopReading { stopReading() }
        if actions.close { transport?.loseConnection() }
    }

    func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        state.stats.bytes.add(sent: bytes.count, port: port)
        transport?.write(bytes)
    }

    /// Sends a reply now, or after the replies still owed.
    func send(_ reply: [UInt8]) {
        perform(host.session.reply(reply))
    }

    // MARK: Requests

    /// Answers a request from what the backend produced.
    func answer(
        _ outcome: TransformOutcome, name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, style: ReplyStyle
    ) {
        switch outcome {
        case .done(let bytes):
            countSuccess(name)
            // Nothing owed before it: framed straight into the output buffer, as the fast path
            // does (a proxy's cache hit, or a non-ASCII text done inline), instead of building
            // the reply as an array and passing it through the session (callgrind: about 1,500
            // instructions per proxy hit).
            if host.session.mayWriteNow,
                bytes.withUnsafeBytes({ writeFastReply(copyingReply, text: $0, style: style) })
            {
                host.session.repliedDirectly()
                return
            }
            send(successReply(bytes, style: style))
        case .failed(let error):
            let counted: Bool
            switch error {
            case .unknownTransform, .invalidName: counted = false
            default: counted = true
            }
            fail(WireError(error, maxBytes: state.limits.maxRequestBytes), style: style, countingAs: counted ? name : nil)
        case .pending(let deferred):
            awaitReply(deferred, name: String(decoding: name, as: UTF8.self), style: style, cost: text.count)
        }
    }

    /// Runs a transform request on the backend and answers it. For the local service, the
    /// handle is kept between requests and an all-ASCII text to a transform with a byte fast
    /// path, with nothing owed before it, is answered in place (no allocation, no `String`).
    func runRequest(name: UnsafeRawBufferPointer, text: UnsafeRawBufferPointer, style: ReplyStyle) {
        if host.session.draining {
            fail(.shuttingDown, style: style, countingAs: nil)
            return
        }
        guard let local = state.localService else {
            start({ state.backend.start(name: name, text: text, context: state.context) }, text: text, name: name, style: style)
            return
        }
        let handle: TransformHandle
        if let last = host.lastHandle, last.isRegistered, last.matches(name) {
            handle = last
        } else if let found = state.recentTransform(named: name, port: port)
            ?? state.lookUpTransform(named: name, in: local, port: port)
        {
            handle = found.handle
            host.lastHandle = found.handle
            host.lastHandleCounters = found.counters
        } else {
            answer(local.start(name: name, text: text, context: state.context), name: name, text: text, style: style)
            return
        }
        // The fast path checks for ASCII as it writes: non-ASCII text writes nothing and goes on below.
        if host.session.mayWriteNow, let fast = handle.checkedASCIIFastPath, text.count <= state.limits.asciiInlineLimit {
            if text.count < ServerStats.timedInlineBytes {
                if writeFastReply(fast, text: text, style: style) {
                    host.session.repliedDirectly()
                    host.lastHandleCounters?.ok &+= 1
                    return
                }
            } else {
                let started = state.clock.now
                if writeFastReply(fast, text: text, style: style) {
                    host.session.repliedDirectly()
                    host.lastHandleCounters?.ok &+= 1
                    host.lastHandleCounters?.duration.observe((state.clock.now - started).seconds)
                    return
                }
            }
        }
        if let gate = state.asyncGate, handle.defersWork(text, context: state.context) {
            // Started when the gate launches it, fairly among connections (issue 10 §3).
            let copy = [UInt8](text)
            let context = state.context
            let deferred = gate.submit(for: self) {
                switch copy.withUnsafeBytes({ handle.apply($0, context: context) }) {
                case .pending(let d): return d
                case .done(let bytes): return succeed(bytes)
                case .failed(let error): return XformCore.fail(error)
                }
            }
            answer(.pending(deferred), name: name, text: text, style: style)
            return
        }
        start({ handle.apply(text, context: state.context) }, text: text, name: name, style: style)
    }

    /// Answers what `run` produces; an inline outcome for a text of at least
    /// ``ServerStats/timedInlineBytes`` is timed for the duration histogram (two clock reads are
    /// noise next to such a transform, and too much next to a small one).
    @inline(__always)
    func start(
        _ run: () -> TransformOutcome, text: UnsafeRawBufferPointer, name: UnsafeRawBufferPointer, style: ReplyStyle
    ) {
        guard text.count >= ServerStats.timedInlineBytes else {
            answer(run(), name: name, text: text, style: style)
            return
        }
        let started = state.clock.now
        let outcome = run()
        if case .pending = outcome {} else { observeDuration(since: started, name: name) }
        answer(outcome, name: name, text: text, style: style)
    }

    /// Records the duration of an inline request of the transform called `name` (a registered one).
    func observeDuration(since started: Duration, name: UnsafeRawBufferPointer) {
        let name = String(decoding: name, as: UTF8.self)
        guard state.backend.catalog.contains(where: { $0.name == name }) else { return }
        state.stats.observe(state.clock.now - started, transform: name, port: port)
    }

    /// Answers a failed request: its error reply, or (where the form has none) a close without
    /// reply after the replies owed before it.
    func fail(_ error: WireError, style: ReplyStyle, countingAs name: UnsafeRawBufferPointer?) {
        if let name {
            state.stats.count(transform: String(decoding: name, as: UTF8.self), port: port, outcome: error.code)
        } else {
            state.stats.countRejected(error.code)
        }
        debug("request failed: \(error)")
        if let reply = errorReply(error, style: style) {
            send(reply)
        } else {
            perform(host.session.closeAfterOwed())
        }
    }

    /// Waits for a reply computed later, keeping its place in the order; the connection's end
    /// cancels it.
    func awaitReply(_ deferred: Deferred<[UInt8]>, name: String, style: ReplyStyle, cost: Int = 0) {
        let (ticket, actions) = host.session.await(deferred, cost: cost)
        let started = state.clock.now
        perform(actions)
        syncPending()
        // `self` strongly: the Deferred fires or is cancelled (`endSession`) before the
        // connection can go, which releases these closures; a weak reference would give every
        // protocol that ever awaited a reply a side table (all its later retains on the slow
        // path, callgrind).
        deferred.addCallbacks(
            { [self] bytes in
                guard self.host.session.isWaiting(ticket) else { return bytes }
                let latency = self.state.clock.now - started
                let counters = self.counters(named: name)
                counters.ok &+= 1
                counters.duration.observe(latency.seconds)
                self.state.stats.record(latency: latency)
                self.perform(
                    self.host.session.complete(ticket, with: self.successReply(bytes, style: style), now: self.state.clock.nowNanoseconds))
                self.syncPending()
                self.armDeadline()
                return bytes
            },
            { [self] error in
                guard self.host.session.isWaiting(ticket) else { return [] }
                let wire = self.state.wireError(error)
                if wire.code != "unknown_transform" {
                    self.state.stats.count(transform: name, port: self.port, outcome: wire.code)
                    self.state.stats.observe(self.state.clock.now - started, transform: name, port: self.port)
                }
                self.debug("\(name) failed: \(wire)")
                if let reply = self.errorReply(wire, style: style) {
                    self.perform(self.host.session.complete(ticket, with: reply, now: self.state.clock.nowNanoseconds))
                    self.syncPending()
                    self.armDeadline()
                } else {
                    self.perform(self.host.session.completeByClosing(ticket))
                }
                return []
            })
    }

    /// The counters of the transform called `name` on this port: the last ones used when they
    /// match (no hashing), else looked up and kept.
    func counters(named name: String) -> TransformCounters {
        if let c = host.lastCounters, c.nameBytes.elementsEqual(name.utf8) { return c }
        let c = state.stats.counters(for: name, port: port)
        host.lastCounters = c
        return c
    }

    /// Counts one successful request of the transform called `name`.
    @inline(__always)
    func countSuccess(_ name: UnsafeRawBufferPointer) {
        if let c = host.lastCounters, c.matches(name) {
            c.ok &+= 1
            return
        }
        let c = state.stats.counters(for: String(decoding: name, as: UTF8.self), port: port)
        host.lastCounters = c
        c.ok &+= 1
    }

    /// Logs at debug level under this connection's tag (`netstring,<peer>`), building nothing
    /// when debug logging is off: client-triggered failures never cost more than a level check.
    func debug(_ message: @autoclosure () -> String) {
        let logger = state.logger
        guard logger.isEnabled(.debug) else { return }
        logger.with(system: "\(port.rawValue),\(peer)").debug(message())
    }
}
