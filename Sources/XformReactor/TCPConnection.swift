import CXformShims
import Glibc
import XformCore

/// A TCP connection driven by an ``EpollReactor``: the ``Transport`` its protocol writes to.
///
/// Writes are copied into an output buffer and flushed by the reactor after the protocol's
/// callback returns, so replies produced in one read batch leave in one `send(2)`. Above the
/// high watermark the protocol hears `writeBufferFull()`; at or below the low watermark after
/// that, `writeBufferDrained()`. `connectionLost` is reported exactly once, and never from
/// inside a call the protocol made into the transport.
final class TCPConnection: IOHandler, Transport {
    unowned(unsafe) let reactor: EpollReactor  // the reactor outlives everything it drives
    // Unchecked: read on every event (a checked access costs about 76 instructions, callgrind).
    @exclusivity(unchecked) var proto: (any ConnectionProtocol)?
    /// The connector that made this client connection, told after `connectionLost` (nil for
    /// accepted connections). Strong: the connector holds the connection only while connected.
    var connector: TCPConnector?

    // Unchecked: appended to on every reply; a fill closure writes into it, but never re-enters.
    @exclusivity(unchecked) var out = OutputBuffer()

    /// Output above which the protocol hears `writeBufferFull()` (the reactor's configuration:
    /// not copied into each connection, 16 bytes per connection).
    var highWatermark: Int { reactor.configuration.highWatermark }
    /// Output at or below which a full buffer is reported drained.
    var lowWatermark: Int { reactor.configuration.lowWatermark }

    /// The connection's state flags, in one 16-bit value (twelve separate `Bool`s took 12 bytes
    /// and pushed every connection into a larger allocation size).
    struct Flags {
        private var bits: UInt16 = 0

        @inline(__always) private func has(_ bit: UInt16) -> Bool { bits & bit != 0 }
        @inline(__always) private mutating func put(_ bit: UInt16, _ on: Bool) {
            bits = on ? bits | bit : bits & ~bit
        }

        var closed: Bool { get { has(1 << 0) } set { put(1 << 0, newValue) } }
        var lostDelivered: Bool { get { has(1 << 1) } set { put(1 << 1, newValue) } }
        var pausedByProtocol: Bool { get { has(1 << 2) } set { put(1 << 2, newValue) } }
        var readEOF: Bool { get { has(1 << 3) } set { put(1 << 3, newValue) } }
        var writeShutdownRequested: Bool { get { has(1 << 4) } set { put(1 << 4, newValue) } }
        var writeShut: Bool { get { has(1 << 5) } set { put(1 << 5, newValue) } }
        var aboveHighWatermark: Bool { get { has(1 << 6) } set { put(1 << 6, newValue) } }
        var waitingForWritable: Bool { get { has(1 << 7) } set { put(1 << 7, newValue) } }
        /// True while this connection is in the reactor's dirty list.
        var queued: Bool { get { has(1 << 8) } set { put(1 << 8, newValue) } }
        /// The epoll interest is to be recomputed in ``service()``.
        var interestStale: Bool { get { has(1 << 9) } set { put(1 << 9, newValue) } }
        /// ``loseConnection()`` or ``abortConnection()`` was called.
        var disconnecting: Bool { get { has(1 << 10) } set { put(1 << 10, newValue) } }
        /// The last read filled its buffer: ask the protocol for room to read straight into.
        var streaming: Bool { get { has(1 << 11) } set { put(1 << 11, newValue) } }
        /// The connection was lost rather than closed cleanly (``ConnectionEnd/lost(errno:)``).
        var endedLost: Bool { get { has(1 << 12) } set { put(1 << 12, newValue) } }
    }

    // Unchecked (as `proto` and `out`): read and written a dozen times per request, and a
    // checked access costs about 76 instructions (callgrind). Plain Bools; no access spans a call.
    @exclusivity(unchecked) var f = Flags()
    /// With `f.endedLost`: how the connection ended. An errno and a bit rather than a stored
    /// ``ConnectionEnd`` (5 bytes that pushed the object past a 112-byte allocation).
    var endErrno: Int32 = 0
    var endReason: ConnectionEnd {
        get { f.endedLost ? .lost(errno: endErrno) : .done }
        set {
            switch newValue {
            case .done: f.endedLost = false
            case .lost(let e):
                f.endedLost = true
                endErrno = e
            }
        }
    }

    /// True once ``loseConnection()`` or ``abortConnection()`` was called.
    public var disconnecting: Bool { f.disconnecting }
    /// The remote endpoint, asked of the kernel (not kept: 24 bytes per connection for a value
    /// only log lines read). `?:0` once the connection is closed.
    public var peer: SocketAddress {
        guard !f.closed, let p = RawAddress.remote(of: fd)?.socketAddress else { return SocketAddress(host: "?", port: 0) }
        return p
    }

    init(fd: Int32, reactor: EpollReactor) {
        self.reactor = reactor
        super.init(fd: fd)
    }

    deinit { out.deallocate() }

    /// The local endpoint, asked of the kernel (not cached: 32 bytes per connection for a
    /// value that is rarely read). `?:0` once the connection is closed.
    public var host: SocketAddress {
        guard !f.closed, let h = RawAddress.local(of: fd)?.socketAddress else { return SocketAddress(host: "?", port: 0) }
        return h
    }

    /// Bytes queued and not yet taken by the kernel.
    public var bufferedByteCount: Int { out.count }

    /// Attaches `proto`, registers with epoll and calls `makeConnection`.
    func start(_ proto: any ConnectionProtocol) {
        self.proto = proto
        reactor.register(self, events: CXF_EPOLLIN | CXF_EPOLLRDHUP)
        proto.makeConnection(self)
        updateInterest()
        markDirty()
    }

    // MARK: Transport

    /// Queues bytes; they are sent when the current callback returns. Ignored once the
    /// connection is closed or its write side was shut down.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard !f.closed, !f.writeShutdownRequested, !bytes.isEmpty else { return }
        out.append(bytes)
        markDirty()
        if !f.aboveHighWatermark && bufferedByteCount > highWatermark {
            f.aboveHighWatermark = true
            proto?.writeBufferFull()
        }
    }

    /// Lets `fill` write up to `capacity` bytes straight into the output buffer (no copy).
    public func write(reserving capacity: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Int) {
        guard !f.closed, !f.writeShutdownRequested, capacity > 0 else { return }
        let n = fill(out.reserve(capacity))
        guard n > 0 else { return }
        out.commit(n)
        markDirty()
        if !f.aboveHighWatermark && bufferedByteCount > highWatermark {
            f.aboveHighWatermark = true
            proto?.writeBufferFull()
        }
    }

    /// Stops reading, sends what is buffered, then closes; `connectionLost(.done)` follows.
    public func loseConnection() {
        guard !f.closed, !f.disconnecting else { return }
        f.disconnecting = true
        updateInterest()
        markDirty()
    }

    /// Closes now with a reset, dropping buffered output; `connectionLost(.lost(errno: 0))`
    /// follows once the current callback has returned.
    public func abortConnection() {
        guard !f.closed else { return }
        f.disconnecting = true
        setLingerZero(fd)
        closeNow(.lost(errno: 0))
    }

    /// Shuts down the write side (`SHUT_WR`) once the buffer is flushed; reading goes on.
    public func loseWriteConnection() {
        guard !f.closed, !f.writeShutdownRequested else { return }
        f.writeShutdownRequested = true
        markDirty()
    }

    /// Stops delivering `dataReceived` (drops read interest) until ``resumeReading()``.
    public func pauseReading() {
        guard !f.pausedByProtocol else { return }
        f.pausedByProtocol = true
        updateInterest()
    }

    /// Resumes delivering `dataReceived` after ``pauseReading()``.
    public func resumeReading() {
        guard f.pausedByProtocol else { return }
        f.pausedByProtocol = false
        updateInterest()
    }

    // MARK: Reactor side

    var wantsRead: Bool { !f.pausedByProtocol && !f.readEOF && !f.disconnecting && !f.closed }

    /// The epoll interest must change: applied once, in ``service()`` (after the callbacks of
    /// this turn), so a pause followed by a close in the same turn makes no `epoll_ctl` at all.
    func updateInterest() {
        guard !f.closed else { return }
        f.interestStale = true
        markDirty()
    }

    private func applyInterest() {
        f.interestStale = false
        var events: UInt32 = 0
        if wantsRead { events |= CXF_EPOLLIN | CXF_EPOLLRDHUP }
        if f.waitingForWritable { events |= CXF_EPOLLOUT }
        reactor.modify(self, events: events)
    }

    @inline(__always) func markDirty() {
        if !f.queued {
            f.queued = true
            reactor.dirty.append(self)
        }
    }

    override func handleEvent(_ events: UInt32) {
        // While its own event runs, the connection counts as queued: the `service()` below does
        // what the reactor's dirty sweep would, without the list append and sweep per request.
        let wasQueued = f.queued
        f.queued = true
        // An empty output buffer writes into the reactor's shared space for this event; what
        // `service()` could not send moves to memory of its own afterwards.
        let borrowing = !reactor.writeSpaceLent && !out.ownsMemory
        if borrowing {
            reactor.writeSpaceLent = true
            out.borrow(reactor.writeSpace)
        }
        dispatch(events)
        if !wasQueued { f.queued = false }
        service()
        if borrowing {
            out.returnBorrowed()
            reactor.writeSpaceLent = false
        }
    }

    private func dispatch(_ events: UInt32) {
        if events & CXF_EPOLLOUT != 0 && f.waitingForWritable && !f.closed {
            flushOutput()
        }
        if !f.closed && events & (CXF_EPOLLIN | CXF_EPOLLRDHUP | CXF_EPOLLHUP | CXF_EPOLLERR) != 0 {
            if wantsRead {
                readAvailable()
            } else if events & CXF_EPOLLERR != 0 {
                closeNow(.lost(errno: socketError(fd)))
            } else if events & CXF_EPOLLHUP != 0 {
                // Both directions are down and we are not reading: nothing more can happen.
                closeNow(bufferedByteCount == 0 ? .done : .lost(errno: EPIPE))
            }
        }
    }

    func readAvailable() {
        var reads = 0
        while reads < reactor.configuration.maxReadsPerEvent && wantsRead {
            // A large message streaming in is read straight into the protocol's buffer (one copy
            // less of every byte); the protocol is asked only while reads come back full.
            let direct = f.streaming ? proto?.directReadSpace() : nil
            let buffer = direct ?? reactor.readBuffer
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 {
                reads += 1
                f.streaming = direct != nil || n == buffer.count
                if direct != nil {
                    proto?.directDataReceived(n)
                } else {
                    proto?.dataReceived(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                }
                if n < buffer.count { break }
            } else if n == 0 {
                f.readEOF = true
                updateInterest()
                if f.writeShut {
                    closeNow(.done)
                } else {
                    proto?.readConnectionLost()
                }
                return
            } else {
                let e = lastErrno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return }
                closeNow(.lost(errno: e))
                return
            }
        }
    }

    /// Flushes, completes a pending close or half-close, and reports the loss once.
    func service() {
        var rounds = 0
        while !f.closed && rounds < 8 {
            rounds += 1
            if bufferedByteCount > 0 && !f.waitingForWritable {
                flushOutput()
                continue  // writeBufferDrained may have written or f.closed
            }
            if bufferedByteCount == 0 {
                if f.disconnecting {
                    closeNow(.done)
                } else if f.writeShutdownRequested && !f.writeShut {
                    f.writeShut = true
                    _ = shutdown(fd, CXF_SHUT_WR)
                    if f.readEOF { closeNow(.done) }
                }
            }
            break
        }
        if f.interestStale && !f.closed { applyInterest() }
        if f.closed && !f.lostDelivered { deliverLost() }
    }

    func flushOutput() {
        while bufferedByteCount > 0 {
            let remaining = bufferedByteCount
            let n = send(fd, out.bytes.baseAddress!, remaining, CXF_MSG_NOSIGNAL)
            if n >= 0 {
                out.consume(n)
                if n < remaining {
                    setWaitingForWritable(true)
                    break
                }
            } else {
                let e = lastErrno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK {
                    setWaitingForWritable(true)
                    break
                }
                closeNow(.lost(errno: e))
                return
            }
        }
        if bufferedByteCount == 0 {
            setWaitingForWritable(false)
        }
        if f.aboveHighWatermark && bufferedByteCount <= lowWatermark {
            f.aboveHighWatermark = false
            proto?.writeBufferDrained()
        }
    }

    func setWaitingForWritable(_ on: Bool) {
        guard f.waitingForWritable != on else { return }
        f.waitingForWritable = on
        updateInterest()
    }

    /// Closes the fd now; the loss is reported from ``service()``, outside protocol calls.
    func closeNow(_ reason: ConnectionEnd) {
        guard !f.closed else { return }
        f.closed = true
        endReason = reason
        reactor.unregister(self, closing: true)
        closeFD(fd)
        out.deallocate()
        markDirty()
    }

    func deliverLost() {
        f.lostDelivered = true
        let p = proto
        proto = nil
        p?.connectionLost(reason: endReason)
        if let connector {
            self.connector = nil
            connector.connectionEnded(endReason)
        }
    }

    override func reactorShutdown() {
        guard !f.closed else { return }
        f.disconnecting = true
        setLingerZero(fd)
        closeNow(.lost(errno: 0))
    }

    override func reactorDeinit() {
        guard !f.closed else { return }
        f.closed = true
        f.lostDelivered = true
        closeFD(fd)
    }
}
