import CXformShims
import Glibc
import Synchronization
import XformCore

/// Something registered with epoll: a connection, a listening port, a pending connect, the
/// waker or a signalfd. Dispatch is by class method, keyed by a token that carries the fd and a
/// generation, so an event for a closed fd is never delivered to a newer owner of that number.
class IOHandler {
    // The two 32-bit fields first: no padding before the token (memory per connection).
    @exclusivity(unchecked) var fd: Int32
    @exclusivity(unchecked) var interest: UInt32 = 0
    @exclusivity(unchecked) var token: UInt64 = 0

    /// True while registered with the reactor: the token is never 0 then (generations start at
    /// 1). Not a stored flag: it would push a connection into a larger allocation size.
    var registered: Bool { token != 0 }

    init(fd: Int32) { self.fd = fd }

    /// Handles readiness reported by epoll.
    func handleEvent(_ events: UInt32) {}

    /// The reactor is shutting down with this handler still registered: release the fd.
    func reactorShutdown() {}

    /// The reactor object is being deinitialised: close the fd without callbacks.
    func reactorDeinit() { closeFD(fd) }
}

/// An epoll reactor: Twisted's reactor for Linux, confined to the thread that calls ``run()``.
///
/// Each iteration runs the calls queued from other threads, then the due timers, then waits in
/// `epoll_wait` (level-triggered, with `EPOLLRDHUP`) and dispatches I/O. Connections share one
/// read buffer; writes are gathered in a per-connection buffer and flushed once per read batch.
/// Only ``threading`` (an ``EpollThreading``) may be used from other threads.
public final class EpollReactor: Reactor, ThreadPoolRunner {
    /// Tunables. The defaults suit a small request/reply server.
    public struct Configuration: Sendable {
        /// Size of the one read buffer shared by all connections.
        public var readBufferSize = 64 * 1024
        /// Reads per readiness event per connection, for fairness between connections.
        public var maxReadsPerEvent = 4
        /// Accepts per readiness event per listening port.
        public var maxAcceptsPerEvent = 512
        /// Buffered output above which a connection calls `writeBufferFull()`.
        public var highWatermark = 64 * 1024
        /// Buffered output at or below which a full connection calls `writeBufferDrained()`.
        public var lowWatermark = 16 * 1024
        /// Events taken per `epoll_wait`.
        public var eventBatchSize = 256
        /// Worker threads for ``EpollReactor/deferToThread(_:)``; nil means max(2, cores).
        public var threadPoolSize: Int? = nil

        public init() {}
    }

    let epfd: Int32
    let handle: EpollThreading
    let configuration: Configuration
    let logger: Logger?
    let readBuffer: UnsafeMutableRawBufferPointer
    /// The write space a connection lends while it handles its own event (``OutputBuffer``).
    let writeSpace: UnsafeMutableRawBufferPointer
    /// True while a connection holds ``writeSpace``.
    // Unchecked: read and written twice per event (a checked access costs about 76
    // instructions, callgrind); a plain Bool, no access spans a call.
    @exclusivity(unchecked) var writeSpaceLent = false
    let eventBytes: UnsafeMutableRawPointer
    let eventSize: Int

    @exclusivity(unchecked) var handlers: [IOHandler?] = []
    var nextGeneration: UInt64 = 1
    // Unchecked: read two or three times per loop turn; the checked accesses cost about 230
    // instructions per keep-alive request (callgrind). No access spans a call out.
    @exclusivity(unchecked) var timers = TimerHeap()
    // Unchecked, as `timers`, these four: every connection arms and cancels a timer (a checked
    // access costs about 97 instructions, callgrind: 8 of them per connection).
    @exclusivity(unchecked) var nextTimerSeq: UInt64 = 0
    @exclusivity(unchecked) var staleTimerEntries = 0
    /// Pending calls by slot, with the sequence number of each slot's live heap entry.
    @exclusivity(unchecked) var timerCalls: [TimerSlot] = []
    // Unchecked, as `timers`: read once per loop turn (a checked access costs about 76
    // instructions, callgrind).
    @exclusivity(unchecked) var timerSeqs: [UInt64] = []
    @exclusivity(unchecked) var freeTimerSlots: [Int32] = []
    /// Connections with output to flush or a close to report; serviced outside protocol calls.
    @exclusivity(unchecked) var dirty: [TCPConnection] = []
    /// Spare storage swapped with the thread-call queue.
    var threadCallSpare: [@Sendable () -> Void] = []
    var pool: WorkerPool?
    var factoryPorts: [ObjectIdentifier: Int] = [:]
    var shutdownTriggers: [() -> Deferred<Void>] = []
    @exclusivity(unchecked) var stopRequested = false
    @exclusivity(unchecked) var triggersStarted = false
    @exclusivity(unchecked) var readyToExit = false
    var pendingShutdown: Deferred<DeferredListResult<Void>>?
    var hasShutDown = false

    /// True while ``run()`` is looping.
    public private(set) var isRunning = false

    /// Creates a reactor; ignores `SIGPIPE` process-wide (writes report `EPIPE` instead), and
    /// sends unhandled Deferred failures to standard error unless a handler is installed already
    /// (``XformCore/DeferredDiagnostics/standardError``).
    ///
    /// - Parameters:
    ///   - logger: where unexpected errors go (never per-request events).
    /// - Throws: ``SystemError`` if epoll or the eventfd cannot be created.
    public init(logger: Logger? = nil, configuration: Configuration = Configuration()) throws {
        signal(SIGPIPE, SIG_IGN)
        DeferredDiagnostics.installIfNone(DeferredDiagnostics.standardError)
        let fd = cxf_epoll_create()
        guard fd >= 0 else { throw SystemError("epoll_create1", errno: lastErrno()) }
        epfd = fd
        do {
            handle = try EpollThreading()
        } catch {
            closeFD(fd)
            throw error
        }
        self.logger = logger
        var config = configuration
        config.readBufferSize = max(1024, config.readBufferSize)
        config.maxReadsPerEvent = max(1, config.maxReadsPerEvent)
        config.maxAcceptsPerEvent = max(1, config.maxAcceptsPerEvent)
        config.eventBatchSize = max(1, config.eventBatchSize)
        config.lowWatermark = min(max(0, config.lowWatermark), config.highWatermark)
        self.configuration = config
        readBuffer = .allocate(byteCount: config.readBufferSize, alignment: 16)
        writeSpace = .allocate(byteCount: 64 * 1024, alignment: 16)
        eventSize = cxf_epoll_event_size()
        eventBytes = .allocate(byteCount: eventSize * config.eventBatchSize, alignment: 16)
        register(WakerHandler(threading: handle), events: CXF_EPOLLIN)
    }

    deinit {
        for h in handlers {
            if let h, !(h is WakerHandler) { h.reactorDeinit() }
        }
        handlers.removeAll()
        dropAllTimers()
        pool?.stop()
        closeFD(epfd)
        readBuffer.deallocate()
        writeSpace.deallocate()
        eventBytes.deallocate()
    }

    /// The thread-safe door into this reactor.
    public var threading: any ReactorThreading { handle }

    /// The concrete thread-safe handle (it can also ``EpollThreading/requestStop()``).
    public var threadingHandle: EpollThreading { handle }

    // MARK: Registration

    func register(_ h: IOHandler, events: UInt32) {
        let gen = nextGeneration
        nextGeneration &+= 1
        h.token = (gen << 32) | UInt64(UInt32(bitPattern: h.fd))
        if cxf_epoll_ctl(epfd, CXF_EPOLL_CTL_ADD, h.fd, events, h.token) != 0 {
            logger?.error("epoll_ctl(ADD, fd \(h.fd)) failed: errno \(lastErrno())")
        }
        let index = Int(h.fd)
        if index >= handlers.count {
            handlers.append(contentsOf: repeatElement(nil, count: index + 1 - handlers.count + 64))
        }
        handlers[index] = h
        h.interest = events
    }

    func modify(_ h: IOHandler, events: UInt32) {
        guard h.registered, h.interest != events else { return }
        if cxf_epoll_ctl(epfd, CXF_EPOLL_CTL_MOD, h.fd, events, h.token) != 0 {
            logger?.error("epoll_ctl(MOD, fd \(h.fd)) failed: errno \(lastErrno())")
        }
        h.interest = events
    }

    func unregister(_ h: IOHandler, closing: Bool = false) {
        guard h.registered else { return }
        // Closing the fd removes it from the epoll set: no EPOLL_CTL_DEL needed then (the fd is
        // ours alone; a stale event already fetched fails the token check).
        if !closing { _ = cxf_epoll_ctl(epfd, CXF_EPOLL_CTL_DEL, h.fd, 0, 0) }
        let index = Int(h.fd)
        if index < handlers.count, handlers[index] === h { handlers[index] = nil }
        h.token = 0
    }

    // MARK: Time

    /// Monotonic time (`CLOCK_MONOTONIC`) since an arbitrary origin.
    public var now: Duration { .nanoseconds(monotonicNanos()) }

    /// Monotonic time in nanoseconds. While the loop runs, the time read when its last wait for
    /// I/O returned (libuv's loop time): late by at most the work done since, and no clock read
    /// per request (callgrind: about 40 instructions per keep-alive request). A fresh read
    /// otherwise.
    public var nowNanoseconds: Int64 { loopTimeFresh ? loopNanos : monotonicNanos() }

    /// The loop time ``nowNanoseconds`` answers while `loopTimeFresh`.
    @exclusivity(unchecked) var loopNanos: Int64 = 0
    @exclusivity(unchecked) var loopTimeFresh = false

    /// Runs `work` on the reactor thread after `delay`. Calls due at the same instant run in the
    /// order they were scheduled; a call scheduled while timers run waits for the next iteration.
    ///
    /// - Returns: a handle to cancel or reschedule the call; its closure is released once it ran
    ///   or was cancelled.
    @discardableResult
    public func callLater(_ delay: Duration, _ work: @escaping () -> Void) -> any DelayedCall {
        let deadline = monotonicNanos() &+ delay.clampedNanoseconds
        let seq = nextTimerSeq
        nextTimerSeq &+= 1
        let call = ReactorDelayedCall(reactor: self, deadline: deadline, seq: seq, work: work)
        call.slot = takeTimerSlot(.call(call), seq: seq)
        timers.push(TimerEntry(deadline: deadline, seq: seq, slot: call.slot))
        return call
    }

    /// Calls `target.timerFired()` once `deadline` has passed: a heap entry and a slot, no
    /// allocation (a ``callLater(_:_:)`` costs a handle and a closure, about 110 bytes for as
    /// long as it is pending: most of an idle connection's timer memory, massif).
    public func schedule(_ target: any TimerTarget, atNanoseconds deadline: Int64) -> TimerToken {
        let nanos = max(deadline, 0)
        let seq = nextTimerSeq
        nextTimerSeq &+= 1
        let slot = takeTimerSlot(.target(target), seq: seq)
        timers.push(TimerEntry(deadline: nanos, seq: seq, slot: slot))
        return TimerToken(slot: slot, sequence: seq)
    }

    /// Withdraws a ``schedule(_:atNanoseconds:)`` call unless it ran or was cancelled already.
    public func cancelTimer(_ token: TimerToken) {
        let slot = Int(token.slot)
        guard slot >= 0, slot < timerSeqs.count, timerSeqs[slot] == token.sequence else { return }
        freeTimerSlot(token.slot)
        timerEntryInvalidated()
    }

    /// A slot for a new pending call with sequence number `seq`, reusing a free one.
    @inline(__always) func takeTimerSlot(_ content: TimerSlot, seq: UInt64) -> Int32 {
        if let free = freeTimerSlots.popLast() {
            timerCalls[Int(free)] = content
            timerSeqs[Int(free)] = seq
            return free
        }
        timerCalls.append(content)
        timerSeqs.append(seq)
        return Int32(timerCalls.count - 1)
    }

    /// Empties `slot`; its heap entries become stale.
    @inline(__always) func freeTimerSlot(_ slot: Int32) {
        timerCalls[Int(slot)] = .free
        timerSeqs[Int(slot)] = .max
        freeTimerSlots.append(slot)
    }

    func reschedule(_ call: ReactorDelayedCall, _ delay: Duration) {
        let deadline = monotonicNanos() &+ delay.clampedNanoseconds
        let seq = nextTimerSeq
        nextTimerSeq &+= 1
        call.deadlineNanos = deadline
        call.seq = seq
        timerSeqs[Int(call.slot)] = seq
        timers.push(TimerEntry(deadline: deadline, seq: seq, slot: call.slot))
        timerEntryInvalidated()
    }

    /// Frees a finished call's slot; its heap entries become stale.
    @inline(__always) func releaseTimerSlot(_ call: ReactorDelayedCall) {
        freeTimerSlot(call.slot)
        call.slot = -1
        call.reactor = nil
    }

    func timerCancelled(_ call: ReactorDelayedCall) {
        releaseTimerSlot(call)
        timerEntryInvalidated()
    }

    @inline(__always) func isLive(_ e: TimerEntry) -> Bool { timerSeqs[Int(e.slot)] == e.seq }

    /// One heap entry went stale (cancel or reset); compact once they are the majority.
    func timerEntryInvalidated() {
        staleTimerEntries += 1
        if staleTimerEntries > 64 && staleTimerEntries * 2 > timers.count {
            let seqs = timerSeqs
            timers.filter { seqs[Int($0.slot)] == $0.seq }
            staleTimerEntries = 0
        }
    }

    func runDueTimers(now loopStart: Int64) {
        guard let top = timers.first else { return }
        var now = loopStart
        if top.deadline > now { return }
        let limit = nextTimerSeq
        var ran = 0
        while let e = timers.first, e.deadline <= now, e.seq < limit {
            timers.removeFirst()
            guard isLive(e) else {
                staleTimerEntries = max(0, staleTimerEntries - 1)
                continue
            }
            switch timerCalls[Int(e.slot)] {
            case .call(let call):
                guard let work = call.work else { continue }
                call.work = nil
                releaseTimerSlot(call)
                work()
            case .target(let target):
                freeTimerSlot(e.slot)
                target.timerFired()
            case .free:
                continue
            }
            ran += 1
            if ran & 1023 == 0 { now = monotonicNanos() }
        }
    }

    /// Drops stale entries at the top, then returns the next live deadline.
    func nextDeadline() -> Int64? {
        while let e = timers.first, !isLive(e) {
            timers.removeFirst()
            staleTimerEntries = max(0, staleTimerEntries - 1)
        }
        return timers.first?.deadline
    }

    /// Forgets every pending call (shutdown, deinit): their handles become inactive.
    func dropAllTimers() {
        for case .call(let call) in timerCalls {
            call.work = nil
            call.reactor = nil
            call.slot = -1
        }
        timerCalls.removeAll()
        timerSeqs.removeAll()
        freeTimerSlots.removeAll()
        timers.removeAll()
        staleTimerEntries = 0
    }

    /// Live and stale entries in the timer heap (for tests and benchmarks).
    var pendingTimerEntries: Int { timers.count }

    // MARK: Thread calls

    /// Runs the calls other threads queued. The atomic check first keeps the common turn, with
    /// nothing queued, off the mutex; a call queued just after it is seen next turn (it woke us).
    func runThreadCalls() {
        if !handle.callsQueued.load(ordering: .acquiring) { return }
        handle.queue.withLock { q in
            swap(&q.calls, &threadCallSpare)
            handle.callsQueued.store(false, ordering: .relaxed)
        }
        if threadCallSpare.isEmpty { return }
        for call in threadCallSpare { call() }
        threadCallSpare.removeAll(keepingCapacity: threadCallSpare.count <= 4096)
    }

    // MARK: Running

    /// Runs the loop on the calling thread until ``stop()`` (or
    /// ``EpollThreading/requestStop()``) and the shutdown triggers have finished. Then closes
    /// every connection (`connectionLost(.lost(errno: 0))`), port and pending connect, drops
    /// pending timers and thread calls, and stops the thread pool. A reactor runs once.
    public func run() {
        precondition(!hasShutDown, "an EpollReactor runs only once")
        handle.owner.store(UInt(pthread_self()), ordering: .releasing)
        isRunning = true
        while !readyToExit {
            iterate(maxWaitNanos: nil, continuing: true)
        }
        loopTimeFresh = false
        isRunning = false
        shutDown()
    }

    /// Runs one iteration (thread calls, due timers, then I/O), waiting at most `timeout` for I/O.
    /// For tests and embedding; ``run()`` is the normal entry.
    public func runOnce(timeout: Duration = .zero) {
        handle.owner.store(UInt(pthread_self()), ordering: .releasing)
        iterate(maxWaitNanos: timeout.clampedNanoseconds, continuing: false)
    }

    /// Asks the loop to stop: the shutdown triggers run, and once their Deferreds have fired
    /// ``run()`` closes everything and returns. Calling it again does nothing.
    public func stop() {
        stopRequested = true
    }

    /// Adds a function to run when the reactor stops, before anything is closed (Twisted's
    /// "before shutdown" trigger). The loop keeps running until every returned Deferred fired;
    /// failures are logged and do not prevent the stop.
    public func addShutdownTrigger(_ trigger: @escaping () -> Deferred<Void>) {
        shutdownTriggers.append(trigger)
    }

    func startShutdownTriggers() {
        triggersStarted = true
        let triggers = shutdownTriggers
        shutdownTriggers = []
        let ds = triggers.map { t in maybeDeferred { t() } }
        let logger = self.logger
        // Held here: the list is not kept alive by its members.
        let list = deferredList(ds, consumeErrors: true)
        pendingShutdown = list
        list.addCallback { [weak self] result in
            for case .failure(let e) in result.results ?? [] {
                logger?.error("shutdown trigger failed: \(e)")
            }
            self?.readyToExit = true
            self?.pendingShutdown = nil
            return result
        }
    }

    /// Leaves the loop at the end of this iteration without waiting for the shutdown triggers
    /// (a second SIGTERM, a watchdog). ``run()`` then closes everything as after ``stop()``.
    public func stopNow() {
        stopRequested = true
        triggersStarted = true
        readyToExit = true
    }

    /// One turn of the loop. `continuing`: called again at once after the previous turn (the
    /// loop in ``run()``), so the time read when that turn's wait returned is still current.
    func iterate(maxWaitNanos: Int64?, continuing: Bool) {
        // One clock read per turn, when the wait returns: it times this turn's events and the
        // next turn's timers and wait (at most one turn's work late; the wait rounds up to whole
        // milliseconds anyway).
        if !continuing || !loopTimeFresh {
            loopNanos = monotonicNanos()
            loopTimeFresh = true
        }
        defer { if !continuing { loopTimeFresh = false } }
        runThreadCalls()
        let loopStart = loopNanos
        runDueTimers(now: loopStart)
        flushDirty()
        // Checked after the calls that may have asked for it, so a stop never waits for I/O.
        if handle.stopRequested.load(ordering: .relaxed),
            handle.stopRequested.exchange(false, ordering: .acquiringAndReleasing)
        {
            stopRequested = true
        }
        if stopRequested && !triggersStarted {
            startShutdownTriggers()
            flushDirty()
        }

        var timeoutMs: Int32 = -1
        if readyToExit {
            timeoutMs = 0
        } else {
            var waitNanos: Int64? = maxWaitNanos
            if let deadline = nextDeadline() {
                var untilDue = deadline - loopStart
                if untilDue < 2_000_000 { untilDue = deadline - monotonicNanos() }  // due soon: be exact
                untilDue = max(0, untilDue)
                waitNanos = min(waitNanos ?? Int64.max, untilDue)
            }
            if let w = waitNanos {
                // Round up so a timer is never woken for before its deadline.
                timeoutMs = Int32(clamping: (w + 999_999) / 1_000_000)
            }
        }
        if timeoutMs != 0 && handle.prepareToSleep() { timeoutMs = 0 }
        var n: Int32
        repeat {
            n = cxf_epoll_wait(epfd, eventBytes, Int32(configuration.eventBatchSize), timeoutMs)
        } while n < 0 && lastErrno() == EINTR
        if timeoutMs != 0 { handle.awake() }
        loopNanos = monotonicNanos()
        if n < 0 {
            logger?.critical("epoll_wait failed: errno \(lastErrno())")
            return
        }
        for i in 0..<Int(n) {
            let token = cxf_epoll_event_token(eventBytes, Int32(i))
            let events = cxf_epoll_event_events(eventBytes, Int32(i))
            let index = Int(UInt32(truncatingIfNeeded: token))
            guard index < handlers.count, let h = handlers[index], h.token == token else { continue }
            h.handleEvent(events)
        }
        flushDirty()
    }

    /// Flushes connections with pending output and reports closes, outside any protocol call.
    func flushDirty() {
        if dirty.isEmpty { return }
        var i = 0
        while i < dirty.count {
            let c = dirty[i]
            i += 1
            c.f.queued = false
            c.service()
        }
        dirty.removeAll(keepingCapacity: true)
    }

    func shutDown() {
        hasShutDown = true
        let live = handlers.compactMap { $0 }
        for h in live where !(h is WakerHandler) { h.reactorShutdown() }
        flushDirty()
        dropAllTimers()
        pool?.stop()
        pool = nil
        handle.queue.withLock { q in
            q.calls.removeAll()
            handle.callsQueued.store(false, ordering: .relaxed)
        }
    }

    // MARK: Signals

    /// Blocks `signals` for the calling thread with `pthread_sigmask`, so they stay pending for
    /// a signalfd. Call it first thing in `main`, before any other thread exists: threads
    /// inherit the mask.
    ///
    /// - Throws: ``SystemError`` if `pthread_sigmask` fails.
    public static func blockSignals(_ signals: [Int32]) throws {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        let rc = pthread_sigmask(SIG_BLOCK, &set, nil)
        if rc != 0 { throw SystemError("pthread_sigmask", errno: rc) }
    }

    /// Unblocks `signals` for the calling thread (children spawned later get the default).
    ///
    /// - Throws: ``SystemError`` if `pthread_sigmask` fails.
    public static func unblockSignals(_ signals: [Int32]) throws {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        let rc = pthread_sigmask(SIG_UNBLOCK, &set, nil)
        if rc != 0 { throw SystemError("pthread_sigmask", errno: rc) }
    }

    /// Delivers `signals` to `handler` on the reactor thread, read from a signalfd.
    ///
    /// The signals must already be blocked (see ``blockSignals(_:)``) in every thread, or the
    /// default action may run instead.
    ///
    /// - Throws: ``SystemError`` if the signalfd cannot be created.
    public func handleSignals(_ signals: [Int32], _ handler: @escaping (Int32) -> Void) throws {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        let fd = cxf_signalfd(&set)
        guard fd >= 0 else { throw SystemError("signalfd", errno: lastErrno()) }
        register(SignalHandler(fd: fd, reactor: self, handler: handler), events: CXF_EPOLLIN)
    }

    // MARK: Thread pool

    /// Runs `work` on a pool thread (max(2, cores) threads unless configured, started lazily).
    ///
    /// - Returns: a Deferred fired on the reactor thread with `work`'s value or thrown error.
    ///   Work still queued when the reactor shuts down never runs and its Deferred never fires.
    public func deferToThread<Value: Sendable>(
        _ work: @escaping @Sendable () throws -> Value
    ) -> Deferred<Value> {
        let d = Deferred<Value>()
        let pool = workerPool()
        // The Deferred must only be touched, and released, on the reactor thread. The pool work
        // carries it as an opaque +1 reference, which only the reactor-thread call takes back.
        let bits = UInt(bitPattern: Unmanaged.passRetained(DeferredHolder(d)).toOpaque())
        let handle = self.handle
        let accepted = pool.submit {
            let outcome = Result { try work() }
            handle.callFromThread {
                let holder = Unmanaged<DeferredHolder<Value>>
                    .fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeRetainedValue()
                try? holder.deferred.fire(outcome)
            }
        }
        if !accepted {
            Unmanaged<DeferredHolder<Value>>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).release()
            try? d.errback(SystemError("pthread_create", errno: EAGAIN))
        }
        return d
    }

    func workerPool() -> WorkerPool {
        if let pool { return pool }
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let p = WorkerPool(maxThreads: configuration.threadPoolSize ?? max(2, cores))
        pool = p
        return p
    }
}

/// Keeps a Deferred alive while pool work runs (see ``EpollReactor/deferToThread(_:)``).
final class DeferredHolder<Value> {
    let deferred: Deferred<Value>
    init(_ d: Deferred<Value>) { deferred = d }
}

/// Wakes the loop for ``EpollThreading/callFromThread(_:)``: the calls themselves run at the
/// start of every iteration.
final class WakerHandler: IOHandler {
    let threading: EpollThreading
    init(threading: EpollThreading) {
        self.threading = threading
        super.init(fd: threading.eventFD)
    }
    override func handleEvent(_ events: UInt32) { threading.drain() }
    override func reactorDeinit() {}
}

/// Reads a signalfd and hands each signal number to its handler.
final class SignalHandler: IOHandler {
    unowned(unsafe) let reactor: EpollReactor  // the reactor outlives everything it drives
    let handler: (Int32) -> Void

    init(fd: Int32, reactor: EpollReactor, handler: @escaping (Int32) -> Void) {
        self.reactor = reactor
        self.handler = handler
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        let size = cxf_signalfd_siginfo_size()
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size * 8, alignment: 8)
        defer { buf.deallocate() }
        while true {
            let n = Glibc.read(fd, buf, size * 8)
            if n < 0 {
                if lastErrno() == EINTR { continue }
                return
            }
            if n == 0 { return }
            var offset = 0
            while offset + size <= n {
                handler(Int32(cxf_signalfd_siginfo_signo(buf + offset)))
                offset += size
            }
        }
    }

    override func reactorShutdown() {
        reactor.unregister(self)
        closeFD(fd)
    }
}
