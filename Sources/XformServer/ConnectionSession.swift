/// What a ``ConnectionSession`` asks its protocol to do after an event, in this order: write the
/// replies, cancel the withdrawn work, change delivery, stop reading, close.
struct SessionActions<Waiter> {
    /// A change to the delivery of further requests (the pending limit).
    enum Delivery: Equatable {
        case pause
        case resume
    }

    /// Replies to write now, in order.
    var writes: [[UInt8]] {
        get { someWrites ?? [] }
        set { someWrites = newValue.isEmpty ? nil : newValue }
    }
    /// Work nobody waits for any more: cancel it (Part 19).
    var cancel: [Waiter] {
        get { someCancels ?? [] }
        set { someCancels = newValue.isEmpty ? nil : newValue }
    }
    // Optional, nil when empty: the usual "nothing to do" then holds no array, and dropping it
    // releases nothing (two empty arrays cost two release calls per read, callgrind).
    private var someWrites: [[UInt8]]?
    private var someCancels: [Waiter]?
    /// Pause or resume delivering requests.
    var delivery: Delivery?
    /// Stop reading from the peer for good (the original form's read batch is over).
    var stopReading = false
    /// Close the connection once the writes are flushed.
    var close = false

    init(
        writes: [[UInt8]] = [], cancel: [Waiter] = [], delivery: Delivery? = nil, stopReading: Bool = false,
        close: Bool = false
    ) {
        someWrites = writes.isEmpty ? nil : writes
        someCancels = cancel.isEmpty ? nil : cancel
        self.delivery = delivery
        self.stopReading = stopReading
        self.close = close
    }

    /// True when there is nothing to do.
    var isEmpty: Bool { someWrites == nil && someCancels == nil && delivery == nil && !stopReading && !close }
}

extension SessionActions: Equatable where Waiter: Equatable {}

/// The lifecycle of one connection, shared by every protocol (netstring, line, and any later
/// codec): a value that takes events and returns ``SessionActions``, with no I/O, no clock and
/// no reference to its protocol (SwiftNIO's state-machine style).
///
/// It keeps replies in request order while some are computed later (pipelining with
/// asynchronous transforms), pauses delivery while ``Configuration/maxPendingRequests`` replies
/// are being computed, decides when the connection closes (after the replies owed: on EOF,
/// shutdown, a request in the original form, an error that closes, an idle timeout) and, once the
/// connection is gone, hands back every piece of work still running so it is cancelled.
///
/// `Waiter` is what the protocol keeps for a reply being computed (a `Deferred` in the server,
/// anything `Equatable` in tests).
/// The per-connection limits a ``ConnectionSession`` enforces. A class, shared by every session
/// of a server: a copy per connection would cost 64 bytes each (issue 8: memory per idle
/// connection).
final class SessionConfiguration: Sendable {
    /// The most replies being computed at once; delivery pauses at this many.
    let maxPendingRequests: Int
    /// Close when no request completed for this long while nothing is owed (nil: never).
    let idleTimeout: Duration?
    /// Close when a request is not complete this long after its first byte (nil: never).
    let requestTimeout: Duration?
    /// Delivery pauses while this many bytes are pending: inputs of the replies being
    /// computed and replies queued behind them.
    let maxPendingBytes: Int
    /// The two timeouts in nanoseconds, the scale the session keeps its times on (nil: never).
    let idleNanos: Int64?
    let requestNanos: Int64?

    init(maxPendingRequests: Int, idleTimeout: Duration? = nil, requestTimeout: Duration? = nil, maxPendingBytes: Int = .max) {
        self.maxPendingRequests = maxPendingRequests
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.maxPendingBytes = maxPendingBytes
        idleNanos = idleTimeout.map(sessionNanoseconds)
        requestNanos = requestTimeout.map(sessionNanoseconds)
    }
}

/// `d` in nanoseconds, clamped to 0 ... 2^62 (a timeout that long never fires, and adding it to a
/// moment cannot overflow).
func sessionNanoseconds(_ d: Duration) -> Int64 {
    let c = d.components
    if c.seconds < 0 || (c.seconds == 0 && c.attoseconds <= 0) { return 0 }
    if c.seconds >= (1 << 62) / 1_000_000_000 { return 1 << 62 }
    return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
}

struct ConnectionSession<Waiter> {
    /// The per-connection limits the session enforces (one shared instance per server).
    typealias Configuration = SessionConfiguration

    /// Why a deadline closed the connection.
    enum Expiry: Equatable {
        /// No complete request for the idle timeout.
        case idle(Duration)
        /// A request still incomplete the request timeout after its first byte.
        case request(Duration)
        /// A connection accepted during shutdown sent nothing within its grace period.
        case drainGrace

        /// The code it is counted (and, on the line port, announced) under.
        var code: String {
            switch self {
            case .idle: return "idle_timeout"
            case .request: return "request_timeout"
            case .drainGrace: return "shutting_down"
            }
        }
    }

    /// A reply's place in the order.
    enum Slot {
        case ready([UInt8])
        case waiting(Waiter, cost: Int)
        /// Close when this place is reached; nothing after it is sent.
        case close
    }

    // Times are nanoseconds on the clock's `nowNanoseconds` scale, in 64 bits: five `Duration`s
    // (16 bytes each, 24 as optionals) were a fifth of an idle connection's memory (issue 8).
    // Fields are ordered so that the 32-bit count and the flags share one word.
    let configuration: Configuration
    /// Replies owed, oldest first; empty whenever replies go straight out (the hot path).
    private(set) var slots: [Slot] = []
    /// How many slots were sent and removed: a ticket is `removed + index`.
    private var removed = 0
    /// Bytes of ready replies queued behind one still being computed.
    private(set) var queuedBytes = 0
    /// Input bytes of the replies being computed.
    private(set) var awaitedBytes = 0

    /// Bytes held for this connection's pending work: inputs being transformed, replies queued.
    var pendingBytes: Int { awaitedBytes + queuedBytes }
    /// When the idle period started: the connection's start, the last complete request, or the
    /// last owed reply sent.
    private(set) var quietSince: Int64
    /// When the first byte of the request still incomplete arrived (``never``: none is).
    private var requestStartedAt = never
    /// Shut down before anything was read: the first read is still answered (`shutting_down`)
    /// if it comes before this moment (``never``: not so).
    private var drainGraceUntil = never
    /// The time of the last completion, for the idle period after owed replies.
    private var lastEventTime: Int64 = 0
    /// Replies being computed (at most ``Configuration/maxPendingRequests``, an `Int32` in
    /// practice: 32 bits share a word with the flags).
    private(set) var waitingCount: Int32 = 0

    // The flags, together: no padding between them (memory per connection).
    /// False once no more requests are taken (an error or `quit` closes after the owed replies).
    private(set) var acceptsRequests = true
    /// Close as soon as nothing is owed (EOF, shutdown, the original form's batch).
    private(set) var closesWhenIdle = false
    /// The close was asked of the protocol (or the connection is gone): nothing more happens.
    private(set) var finished = false
    /// Delivery is paused by the pending limits or the server's budget.
    private(set) var deliveryPaused = false
    /// The server is over its budget for pending work and this connection holds much of it.
    private(set) var throttled = false
    /// The server is shutting down: requests still read are answered `shutting_down`.
    private(set) var draining = false
    /// An original-form request arrived in the current read.
    private var originalInBatch = false
    /// A request was received (replied to or awaited) since the last read ended.
    private var requestInRead = false
    /// At least one request was received on this connection.
    private(set) var hasCompletedRequest = false
    /// A read has ended on this connection.
    private var readSeen = false
    /// The next deadline may now be earlier than the one a timer was armed for (a request
    /// deadline started): the protocol re-arms. Deadlines that move later need nothing.
    var deadlineMovedEarlier = false

    /// The "no such moment" value of the optional times.
    static var never: Int64 { .max }

    /// How long a connection accepted during shutdown may take to send its first request: 1 s.
    static var drainGraceNanos: Int64 { 1_000_000_000 }

    init(configuration: Configuration, now: Int64 = 0) {
        self.configuration = configuration
        self.quietSince = now
    }

    /// The earliest moment a deadline may close the connection, if any applies now.
    var nextDeadline: Int64? {
        guard !finished else { return nil }
        var deadline = drainGraceUntil
        if let idle = configuration.idleNanos, slots.isEmpty { deadline = min(deadline, quietSince &+ idle) }
        if let limit = configuration.requestNanos, requestStartedAt != Self.never {
            deadline = min(deadline, requestStartedAt &+ limit)
        }
        return deadline == Self.never ? nil : deadline
    }

    /// Which deadline has passed at `now`, if one has.
    func expiry(at now: Int64) -> Expiry? {
        guard !finished else { return nil }
        if drainGraceUntil != Self.never, now >= drainGraceUntil { return .drainGrace }
        if let limit = configuration.requestNanos, let timeout = configuration.requestTimeout,
            requestStartedAt != Self.never, now >= requestStartedAt &+ limit
        {
            return .request(timeout)
        }
        if let idle = configuration.idleNanos, let timeout = configuration.idleTimeout, slots.isEmpty,
            now >= quietSince &+ idle
        {
            return .idle(timeout)
        }
        return nil
    }

    /// True when a reply may go straight to the transport: nothing is owed before it.
    var mayWriteNow: Bool { slots.isEmpty && !finished }

    /// True when nothing is owed: no reply queued, none being computed.
    var isIdle: Bool { slots.isEmpty }

    // MARK: Requests and replies

    /// A request in the original netstring form arrived: when the current read is over, the
    /// connection answers what it read and closes (the original server's lifecycle).
    mutating func originalFormRequest() {
        originalInBatch = true
    }

    /// A request was answered straight to the transport (the hot path, when ``mayWriteNow``).
    @inline(__always)
    mutating func repliedDirectly() {
        requestInRead = true
    }

    /// A reply is ready now: written at once, or queued behind the replies still owed.
    mutating func reply(_ bytes: [UInt8]) -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        guard !finished else { return actions }
        requestInRead = true
        if slots.isEmpty {
            actions.writes.append(bytes)
        } else {
            slots.append(.ready(bytes))
            queuedBytes += bytes.count
        }
        checkClose(&actions)
        return actions
    }

    /// A reply is being computed: it keeps its place in the order.
    ///
    /// - Returns: the ticket to complete it with, and the actions (delivery pauses at the limit).
    mutating func await(_ waiter: Waiter, cost: Int = 0) -> (ticket: Int, actions: SessionActions<Waiter>) {
        var actions = SessionActions<Waiter>()
        requestInRead = true
        let ticket = removed + slots.count
        slots.append(.waiting(waiter, cost: cost))
        waitingCount += 1
        awaitedBytes += cost
        updateDelivery(&actions)
        return (ticket, actions)
    }

    /// The server's budget for pending work is exceeded (true) and this connection holds much
    /// of it, or no longer (false): delivery pauses or may resume.
    mutating func setThrottled(_ on: Bool) -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        throttled = on
        if !finished { updateDelivery(&actions) }
        return actions
    }

    /// Pauses delivery at a limit, resumes it below all of them.
    private mutating func updateDelivery(_ actions: inout SessionActions<Waiter>) {
        let over =
            Int(waitingCount) >= configuration.maxPendingRequests || pendingBytes >= configuration.maxPendingBytes
            || throttled
        if over, !deliveryPaused {
            deliveryPaused = true
            actions.delivery = .pause
        } else if !over, deliveryPaused, acceptsRequests {
            deliveryPaused = false
            actions.delivery = .resume
        }
    }

    /// The reply of `ticket` is ready at `now`: the replies now at the head of the order go out.
    mutating func complete(_ ticket: Int, with bytes: [UInt8], now: Int64 = 0) -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        lastEventTime = now
        guard !finished, take(ticket) else { return actions }
        slots[ticket - removed] = .ready(bytes)
        queuedBytes += bytes.count
        flush(&actions)
        return actions
    }

    /// The request of `ticket` failed in a form whose only signal is a close (the original
    /// form): the replies before it go out, then the connection closes; later work is withdrawn.
    mutating func completeByClosing(_ ticket: Int) -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        guard !finished, take(ticket) else { return actions }
        acceptsRequests = false
        let i = ticket - removed
        for slot in slots[(i + 1)...] {
            switch slot {
            case .waiting(let w, let cost):
                actions.cancel.append(w)
                waitingCount -= 1
                awaitedBytes -= cost
            case .ready(let b): queuedBytes -= b.count
            case .close: break
            }
        }
        slots.removeSubrange((i + 1)...)
        slots[i] = .close
        flush(&actions)
        return actions
    }

    /// True while the reply of `ticket` is still awaited (not withdrawn, connection not gone).
    func isWaiting(_ ticket: Int) -> Bool {
        let i = ticket - removed
        guard !finished, i >= 0, i < slots.count, case .waiting = slots[i] else { return false }
        return true
    }

    /// Marks the waiting slot of `ticket` as no longer waiting; false if there is none.
    private mutating func take(_ ticket: Int) -> Bool {
        let i = ticket - removed
        guard i >= 0, i < slots.count, case .waiting(_, let cost) = slots[i] else { return false }
        waitingCount -= 1
        awaitedBytes -= cost
        return true
    }

    /// Sends the ready replies at the head, reaches a close marker, resumes delivery below the
    /// limit, and closes if that was asked for and nothing is owed any more.
    private mutating func flush(_ actions: inout SessionActions<Waiter>) {
        var taken = 0
        var closing = false
        loop: for slot in slots {
            switch slot {
            case .ready(let bytes):
                actions.writes.append(bytes)
                queuedBytes -= bytes.count
                taken += 1
            case .waiting:
                break loop
            case .close:
                closing = true
                break loop
            }
        }
        if closing {
            for case .waiting(let w, _) in slots[taken...] { actions.cancel.append(w) }
            slots.removeAll()
            waitingCount = 0
            awaitedBytes = 0
            queuedBytes = 0
            acceptsRequests = false
            finish(&actions)
            return
        }
        slots.removeFirst(taken)
        removed += taken
        if taken > 0, slots.isEmpty { quietSince = lastEventTime }
        updateDelivery(&actions)
        checkClose(&actions)
    }

    // MARK: Closing

    /// Takes no more requests and closes after the replies owed so far (at once if none):
    /// an error that closes, `quit`, malformed framing.
    mutating func closeAfterOwed() -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        guard !finished else { return actions }
        acceptsRequests = false
        if slots.isEmpty {
            finish(&actions)
        } else if case .close? = slots.last {
        } else {
            slots.append(.close)
        }
        return actions
    }

    /// The protocol has handled every request of one read, read at `now`; `partialRequest` tells
    /// whether part of a request is still waiting for more bytes (it starts the request
    /// deadline; a complete request restarts the idle period).
    mutating func readEnded(now: Int64 = 0, partialRequest: Bool = false) -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        readSeen = true
        drainGraceUntil = Self.never
        if requestInRead {
            requestInRead = false
            hasCompletedRequest = true
            quietSince = now
            requestStartedAt = partialRequest ? now : Self.never
            if partialRequest { deadlineMovedEarlier = true }
        } else if partialRequest {
            if requestStartedAt == Self.never {
                requestStartedAt = now
                deadlineMovedEarlier = true
            }
        } else {
            requestStartedAt = Self.never
        }
        if originalInBatch {
            // The original server answered one read's requests, then closed.
            originalInBatch = false
            acceptsRequests = false
            closesWhenIdle = true
            if !finished { actions.stopReading = true }
        }
        checkClose(&actions)
        return actions
    }

    /// The peer half-closed and every request before that was handled: close once everything
    /// owed is sent.
    mutating func inputEnded() -> SessionActions<Waiter> {
        closeWhenIdle()
    }

    /// The server is shutting down: new requests are refused (``draining``), and the
    /// connection closes once everything owed is sent.
    mutating func shutdown(now: Int64 = 0, justAccepted: Bool = false) -> SessionActions<Waiter> {
        draining = true
        if justAccepted, !readSeen, !finished {
            // Just accepted (the accept queue is drained at shutdown): its request, probably
            // already sent, is read and answered `shutting_down` before the close.
            closesWhenIdle = true
            drainGraceUntil = now &+ Self.drainGraceNanos
            return SessionActions()
        }
        return closeWhenIdle()
    }

    private mutating func closeWhenIdle() -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        closesWhenIdle = true
        checkClose(&actions)
        return actions
    }

    /// The connection starts at `now` (its first idle period).
    mutating func start(now: Int64) {
        quietSince = now
    }

    /// Since when the connection has been open without a request: eviction takes the oldest such
    /// connection first (nil once a request completed, while one is owed, or once finished).
    var unusedSince: Int64? {
        !hasCompletedRequest && slots.isEmpty && !finished ? quietSince : nil
    }

    /// A timer fired at `now`: if a deadline has passed, the connection closes, after the notice
    /// `notice` gives for it (the line port says why) when nothing is owed.
    mutating func deadlineCheck(at now: Int64, notice: (Expiry) -> [UInt8]?) -> (Expiry?, SessionActions<Waiter>) {
        guard let expired = expiry(at: now) else { return (nil, SessionActions()) }
        return (expired, idleTimedOut(notice: notice(expired)))
    }

    /// The idle timeout: close, after `notice` (the line port says why) when nothing is owed.
    mutating func idleTimedOut(notice: [UInt8]? = nil) -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        guard !finished else { return actions }
        acceptsRequests = false
        if let notice, slots.isEmpty { actions.writes.append(notice) }
        finish(&actions)
        return actions
    }

    /// The connection is gone: every reply still being computed is withdrawn.
    mutating func connectionLost() -> SessionActions<Waiter> {
        var actions = SessionActions<Waiter>()
        for case .waiting(let w, _) in slots { actions.cancel.append(w) }
        slots.removeAll()
        waitingCount = 0
        awaitedBytes = 0
        queuedBytes = 0
        acceptsRequests = false
        finished = true
        return actions
    }

    private mutating func checkClose(_ actions: inout SessionActions<Waiter>) {
        if closesWhenIdle, slots.isEmpty, !finished { finish(&actions) }
    }

    private mutating func finish(_ actions: inout SessionActions<Waiter>) {
        finished = true
        actions.close = true
    }
}
