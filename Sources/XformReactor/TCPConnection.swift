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
///
/// Its state is marked `@exclusivity(unchecked)`: the connection is confined to the reactor
/// thread and no access to these properties spans a call that could re-enter, so the runtime
/// exclusivity checks (a measurable share of the per-request cost) can never fire.
final class TCPConnection: IOHandler, Transport {
    unowned(unsafe) let reactor: EpollReactor  // the reactor outlives everything it drives
    @exclusivity(unchecked) var proto: (any ConnectionProtocol)?
    /// Called after `connectionLost` (client connections tell their factory).
    var onLost: ((ConnectionEnd) -> Void)?

    @exclusivity(unchecked) var out = OutputBuffer()

    /// Output above which the protocol hears `writeBufferFull()`.
    public var highWatermark: Int
    /// Output at or below which a full buffer is reported drained.
    public var lowWatermark: Int

    @exclusivity(unchecked) var closed = false
    @exclusivity(unchecked) var lostDelivered = false
    var endReason: ConnectionEnd = .done
    @exclusivity(unchecked) var pausedByProtocol = false
    @exclusivity(unchecked) var readEOF = false
    @exclusivity(unchecked) var writeShutdownRequested = false
    @exclusivity(unchecked) var writeShut = false
    @exclusivity(unchecked) var aboveHighWatermark = false
    @exclusivity(unchecked) var waitingForWritable = false
    /// True while this connection is in the reactor's dirty list.
    @exclusivity(unchecked) var queued = false

    /// True once ``loseConnection()`` or ``abortConnection()`` was called.
    @exclusivity(unchecked) public private(set) var disconnecting = false
    /// The remote endpoint.
    public let peer: SocketAddress
    private var cachedHost: SocketAddress?

    init(fd: Int32, reactor: EpollReactor, peer: SocketAddress) {
        self.reactor = reactor
        self.peer = peer
        self.highWatermark = reactor.configuration.highWatermark
        self.lowWatermark = reactor.configuration.lowWatermark
        super.init(fd: fd)
    }

    deinit { out.deallocate() }

    /// The local endpoint.
    public var host: SocketAddress {
        if let cachedHost { return cachedHost }
        let h = RawAddress.local(of: fd)?.socketAddress ?? SocketAddress(host: "?", port: 0)
        if !closed { cachedHost = h }
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
        guard !closed, !writeShutdownRequested, !bytes.isEmpty else { return }
        out.append(bytes)
        markDirty()
        if !aboveHighWatermark && bufferedByteCount > highWatermark {
            aboveHighWatermark = true
            proto?.writeBufferFull()
        }
    }

    /// Stops reading, sends what is buffered, then closes; `connectionLost(.done)` follows.
    public func loseConnection() {
        guard !closed, !disconnecting else { return }
        disconnecting = true
        updateInterest()
        markDirty()
    }

    /// Closes now with a reset, dropping buffered output; `connectionLost(.lost(errno: 0))`
    /// follows once the current callback has returned.
    public func abortConnection() {
        guard !closed else { return }
        disconnecting = true
        setLingerZero(fd)
        closeNow(.lost(errno: 0))
    }

    /// Shuts down the write side (`SHUT_WR`) once the buffer is flushed; reading goes on.
    public func loseWriteConnection() {
        guard !closed, !writeShutdownRequested else { return }
        writeShutdownRequested = true
        markDirty()
    }

    /// Stops delivering `dataReceived` (drops read interest) until ``resumeReading()``.
    public func pauseReading() {
        guard !pausedByProtocol else { return }
        pausedByProtocol = true
        updateInterest()
    }

    /// Resumes delivering `dataReceived` after ``pauseReading()``.
    public func resumeReading() {
        guard pausedByProtocol else { return }
        pausedByProtocol = false
        updateInterest()
    }

    // MARK: Reactor side

    var wantsRead: Bool { !pausedByProtocol && !readEOF && !disconnecting && !closed }

    func updateInterest() {
        guard !closed else { return }
        var events: UInt32 = 0
        if wantsRead { events |= CXF_EPOLLIN | CXF_EPOLLRDHUP }
        if waitingForWritable { events |= CXF_EPOLLOUT }
        reactor.modify(self, events: events)
    }

    @inline(__always) func markDirty() {
        if !queued {
            queued = true
            reactor.dirty.append(self)
        }
    }

    override func handleEvent(_ events: UInt32) {
        if events & CXF_EPOLLOUT != 0 && waitingForWritable && !closed {
            flushOutput()
        }
        if !closed && events & (CXF_EPOLLIN | CXF_EPOLLRDHUP | CXF_EPOLLHUP | CXF_EPOLLERR) != 0 {
            if wantsRead {
                readAvailable()
            } else if events & CXF_EPOLLERR != 0 {
                closeNow(.lost(errno: socketError(fd)))
            } else if events & CXF_EPOLLHUP != 0 {
                // Both directions are down and we are not reading: nothing more can happen.
                closeNow(bufferedByteCount == 0 ? .done : .lost(errno: EPIPE))
            }
        }
        service()
    }

    func readAvailable() {
        let buffer = reactor.readBuffer
        var reads = 0
        while reads < reactor.configuration.maxReadsPerEvent && wantsRead {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 {
                reads += 1
                proto?.dataReceived(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                if n < buffer.count { break }
            } else if n == 0 {
                readEOF = true
                updateInterest()
                if writeShut {
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
        while !closed && rounds < 8 {
            rounds += 1
            if bufferedByteCount > 0 && !waitingForWritable {
                flushOutput()
                continue  // writeBufferDrained may have written or closed
            }
            if bufferedByteCount == 0 {
                if disconnecting {
                    closeNow(.done)
                } else if writeShutdownRequested && !writeShut {
                    writeShut = true
                    _ = shutdown(fd, CXF_SHUT_WR)
                    if readEOF { closeNow(.done) }
                }
            }
            break
        }
        if closed && !lostDelivered { deliverLost() }
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
        if aboveHighWatermark && bufferedByteCount <= lowWatermark {
            aboveHighWatermark = false
            proto?.writeBufferDrained()
        }
    }

    func setWaitingForWritable(_ on: Bool) {
        guard waitingForWritable != on else { return }
        waitingForWritable = on
        updateInterest()
    }

    /// Closes the fd now; the loss is reported from ``service()``, outside protocol calls.
    func closeNow(_ reason: ConnectionEnd) {
        guard !closed else { return }
        closed = true
        endReason = reason
        reactor.unregister(self)
        closeFD(fd)
        out.deallocate()
        markDirty()
    }

    func deliverLost() {
        lostDelivered = true
        let p = proto
        proto = nil
        p?.connectionLost(reason: endReason)
        if let onLost {
            self.onLost = nil
            onLost(endReason)
        }
    }

    override func reactorShutdown() {
        guard !closed else { return }
        disconnecting = true
        setLingerZero(fd)
        closeNow(.lost(errno: 0))
    }

    override func reactorDeinit() {
        guard !closed else { return }
        closed = true
        lostDelivered = true
        closeFD(fd)
    }
}
