import XformCore

/// What a receiver offers the engine that feeds it frames.
protocol FrameSink: AnyObject {
    associatedtype Failure: Error
    /// One frame; the bytes are valid only during the call.
    func deliverFrame(_ frame: UnsafeRawBufferPointer)
    /// Malformed input; `rest` holds the input from the bad frame's first byte on (valid only
    /// during the call). Returns true to skip the bad frame and go on, false to stop for good.
    func handleFailure(_ failure: Failure, rest: UnsafeRawBufferPointer) -> Bool
    /// Every complete frame before the peer's EOF was delivered. `leftover` holds the bytes of a
    /// partial frame (empty if none); `midFrame` says whether a frame was begun at all.
    func inputEnded(leftover: UnsafeRawBufferPointer, midFrame: Bool)
    /// Delivery is paused and more than the backlog limit is buffered (true), or no longer (false).
    func backlogChanged(overLimit: Bool)
}

/// What a ``ReceiveEngine`` keeps besides its parser, read and written about ten times per read.
private struct ReceiveState {
    var busy = false
    var paused = false
    /// Stopped for good: a framing error or the connection was lost.
    var halted = false
    var eof = false
    var endDelivered = false
    var overLimit = false
    /// Bytes kept between reads, read from `readIndex`.
    var buffer = ReceiveBuffer()
    /// Input that arrived while a delivery was running.
    var reentrant: [UInt8] = []
    var readIndex = 0
}

/// Feeds frames from incoming chunks to a receiver, zero-copy when it can.
///
/// When nothing is buffered and delivery is not paused, frames that lie wholly inside a chunk are
/// delivered as pointers into the chunk; only the tail of the chunk (a partial frame) is copied.
/// Otherwise bytes go to one buffer, read by index and compacted when mostly consumed.
///
/// The transport is passed in once per call and asked after every frame whether it is
/// disconnecting: nothing is delivered after that.
///
/// Re-entrancy: a frame handler may pause or resume delivery, close the connection, or even cause
/// more `receive` calls (a loopback transport). While a delivery is running (`busy`), nested input
/// is set aside in `reentrant` and taken up, in order, by the running loop; nested resumes only
/// clear the flag. The buffer is never mutated while a pointer into it is being delivered.
final class ReceiveEngine<Parser: InPlaceFrameParser> {
    // Unchecked, both: a checked class property costs a swift_beginAccess (about 76
    // instructions, measured with callgrind) per access, and these are touched about ten times
    // per read. No access spans a call: frames are delivered from a local copy of the buffer (a
    // reference, not a copy of the bytes), so even a nested mutation would copy, not corrupt.
    /// The parser, apart from the rest: a struct holding both depended on `Parser`, and the
    /// unspecialised deinit instantiated its metadata for every connection (about 330
    /// instructions per connection, callgrind).
    @exclusivity(unchecked) private var parserState: Parser
    @exclusivity(unchecked) private var st = ReceiveState()

    /// The parser's settings and state (a copy).
    var parser: Parser { parserState }
    /// True while delivery is paused.
    var paused: Bool { st.paused }
    /// True once stopped for good.
    var halted: Bool { st.halted }

    /// While paused, buffering more than this many bytes asks the sink to stop reading.
    let backlogLimit: Int

    init(parser: Parser, backlogLimit: Int) {
        parserState = parser
        self.backlogLimit = backlogLimit
    }

    deinit { st.buffer.deallocate() }

    /// Frames at least this large are read straight into the buffer (``directReadSpace()``).
    static var directReadThreshold: Int { 256 * 1024 }

    /// For a large frame under way: the buffer's free space, reserved for the rest of the frame,
    /// that a transport may read straight into (saving a copy of every byte of it); nil when the
    /// engine cannot take bytes that way now (no large frame pending, paused, delivering, stopped).
    func directReadSpace() -> UnsafeMutableRawBufferPointer? {
        guard !st.busy, !st.paused, !st.halted, !st.eof, st.reentrant.isEmpty,
            let size = parserState.partialFrameSize, size >= Self.directReadThreshold, st.readIndex < st.buffer.count
        else { return nil }
        reserveForPartialFrame(st.readIndex)
        let space = st.buffer.spare
        return space.count >= 4096 ? space : nil
    }

    /// `count` bytes were read into the space ``directReadSpace()`` returned: handles them as
    /// ``receive(_:sink:transport:)`` would have.
    func receiveDirect<S: FrameSink>(_ count: Int, sink: S, transport: (any Transport)?)
    where S.Failure == Parser.Failure {
        precondition(count <= st.buffer.spare.count, "read past the direct-read space")
        st.buffer.commit(count)
        if transport?.disconnecting ?? false { return }
        drain(sink, transport: transport)
    }

    /// True when part of a frame has arrived: bytes buffered, or a length prefix read.
    var hasPartialFrame: Bool { bufferedByteCount > 0 || parserState.isMidFrame }

    /// Bytes received and not yet delivered (nor consumed into a length prefix).
    var bufferedByteCount: Int { st.buffer.count - st.readIndex + st.reentrant.count }

    func receive<S: FrameSink>(_ chunk: UnsafeRawBufferPointer, sink: S, transport: (any Transport)?)
    where S.Failure == Parser.Failure {
        if st.halted || st.eof || chunk.isEmpty { return }
        if st.busy {
            st.reentrant.append(contentsOf: chunk)
            return
        }
        if transport?.disconnecting ?? false { return }
        if st.paused {
            st.buffer.append(contentsOf: chunk)
            drain(sink, transport: transport)
            return
        }
        var pos = 0
        if st.readIndex < st.buffer.count {
            // A partial frame is buffered: complete it from the st.buffer, then go back to parsing
            // the rest of the chunk in place (else a stream whose reads end mid-frame would never
            // leave the buffered path).
            let oldEnd = st.buffer.count
            st.buffer.append(contentsOf: chunk)
            switch completeBufferedFrame(sink, transport: transport, oldEnd: oldEnd) {
            case .stopped:
                return
            case .continueBuffered:
                drain(sink, transport: transport)
                return
            case .resumeChunk(let offset):
                pos = offset
            }
        }
        // Fast path: parse the chunk in place. The parser is worked on as a local copy: nothing
        // a frame handler can do reaches it while `busy` is set.
        st.busy = true
        var p = parserState
        parsing: while true {
            switch p.step(chunk, from: pos) {
            case .frame(let range, let next):
                pos = next
                sink.deliverFrame(UnsafeRawBufferPointer(rebasing: chunk[range]))
                if st.halted || (transport?.disconnecting ?? false) {
                    st.busy = false
                    halt()
                    return
                }
                if st.paused { break parsing }
            case .needMore(let keep):
                pos = keep
                break parsing
            case .failed(let failure, let at):
                let rest = UnsafeRawBufferPointer(rebasing: chunk[at...])
                if !st.halted && sink.handleFailure(failure, rest: rest) && !st.halted
                    && !(transport?.disconnecting ?? false)
                {
                    p.resync()
                    pos = at
                } else {
                    st.busy = false
                    halt()
                    return
                }
            }
        }
        parserState = p
        if pos < chunk.count {
            reserveForPartialFrame(st.buffer.count)
            st.buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[pos...]))
        }
        st.busy = false
        if !st.reentrant.isEmpty || st.paused || st.eof {
            drain(sink, transport: transport)
        }
    }

    private enum BufferedOutcome {
        case stopped
        case continueBuffered
        case resumeChunk(Int)
    }

    /// Delivers the frame completed by the chunk just appended at `oldEnd`, if it is complete.
    /// Returns where in the chunk the fast path can go on, or that the buffered path must.
    private func completeBufferedFrame<S: FrameSink>(_ sink: S, transport: (any Transport)?, oldEnd: Int)
        -> BufferedOutcome where S.Failure == Parser.Failure
    {
        st.busy = true
        let start = st.readIndex
        let bytes = st.buffer
        let delivered: Bool = bytes.withUnsafeBytes { raw in
            switch parserState.step(raw, from: start) {
            case .frame(let range, let next):
                st.readIndex = next
                sink.deliverFrame(UnsafeRawBufferPointer(rebasing: raw[range]))
                return true
            case .needMore(let keep):
                st.readIndex = keep
                return false
            case .failed:
                // The parser did not move: `drain` meets the same failure again and handles it.
                return false
            }
        }
        st.busy = false
        if !delivered {
            reserveForPartialFrame(st.readIndex)
            return .continueBuffered
        }
        if st.halted || (transport?.disconnecting ?? false) {
            halt()
            return .stopped
        }
        let next = st.readIndex
        if st.paused || !st.reentrant.isEmpty || next < oldEnd {
            return .continueBuffered
        }
        st.buffer.removeAll(keepingCapacity: st.buffer.capacity <= 65_536)
        st.readIndex = 0
        return .resumeChunk(next - oldEnd)
    }

    func pause() {
        st.paused = true
    }

    func resume<S: FrameSink>(sink: S, transport: (any Transport)?) where S.Failure == Parser.Failure {
        guard st.paused else { return }
        st.paused = false
        // Inside a delivery the running loop sees the flag; otherwise deliver what is buffered now.
        if !st.busy { drain(sink, transport: transport) }
    }

    func endOfInput<S: FrameSink>(sink: S, transport: (any Transport)?) where S.Failure == Parser.Failure {
        if st.halted || st.eof { return }
        st.eof = true
        if !st.busy { drain(sink, transport: transport) }
    }

    /// Stops all delivery and frees the buffers (later, if a delivery is running).
    func halt() {
        st.halted = true
        if !st.busy {
            st.buffer.removeAll(keepingCapacity: false)
            st.reentrant = []
            st.readIndex = 0
        }
    }

    /// Delivers buffered frames until more input is needed, delivery is paused, or it stops.
    private func drain<S: FrameSink>(_ sink: S, transport: (any Transport)?) where S.Failure == Parser.Failure {
        if st.busy || st.halted { return }
        st.busy = true
        draining: while true {
            if !st.reentrant.isEmpty {
                st.reentrant.withUnsafeBytes { st.buffer.append(contentsOf: $0) }
                st.reentrant.removeAll(keepingCapacity: st.reentrant.capacity <= 65_536)
            }
            if st.paused || st.halted { break }
            if transport?.disconnecting ?? false {
                st.busy = false
                halt()
                return
            }
            let start = st.readIndex
            let bytes = st.buffer
            let step: ParseStep<Parser.Failure> = bytes.withUnsafeBytes { raw in
                let result = parserState.step(raw, from: start)
                if case .frame(let range, let next) = result {
                    st.readIndex = next
                    sink.deliverFrame(UnsafeRawBufferPointer(rebasing: raw[range]))
                }
                return result
            }
            switch step {
            case .frame:
                continue draining
            case .needMore(let keep):
                st.readIndex = keep
                if st.reentrant.isEmpty { break draining }
            case .failed(let failure, let at):
                st.readIndex = at
                let bytes = st.buffer
                let goOn = bytes.withUnsafeBytes { raw in
                    !st.halted && sink.handleFailure(failure, rest: UnsafeRawBufferPointer(rebasing: raw[at...]))
                }
                if !(goOn && !st.halted && !(transport?.disconnecting ?? false)) {
                    st.busy = false
                    halt()
                    return
                }
                parserState.resync()
            }
        }
        compact()
        reserveForPartialFrame(st.readIndex)
        st.busy = false
        if st.halted {
            halt()
            return
        }
        if st.paused {
            if !st.overLimit && bufferedByteCount > backlogLimit {
                st.overLimit = true
                sink.backlogChanged(overLimit: true)
            }
            return
        }
        if st.overLimit {
            st.overLimit = false
            sink.backlogChanged(overLimit: false)
        }
        if st.eof && !st.endDelivered && !(transport?.disconnecting ?? false) {
            st.endDelivered = true
            st.busy = true
            let mid = parserState.isMidFrame
            let start = st.readIndex
            let bytes = st.buffer
            bytes.withUnsafeBytes { raw in
                sink.inputEnded(leftover: UnsafeRawBufferPointer(rebasing: raw[start...]), midFrame: mid)
            }
            st.busy = false
            halt()
        }
    }

    /// Sizes the buffer once for a frame of declared size starting at `start` (a large payload
    /// arriving in many reads is then never copied by the buffer's growth).
    @inline(__always)
    private func reserveForPartialFrame(_ start: Int) {
        guard let size = parserState.partialFrameSize, size > 4096 else { return }
        let needed = start + size
        if st.buffer.capacity < needed { st.buffer.reserveCapacity(needed) }
    }

    private func compact() {
        if st.readIndex == 0 { return }
        if st.readIndex == st.buffer.count {
            st.buffer.removeAll(keepingCapacity: st.buffer.capacity <= 65_536)
            st.readIndex = 0
        } else if st.readIndex >= st.buffer.count - st.readIndex {
            st.buffer.removeFirst(st.readIndex)
            st.readIndex = 0
        }
    }
}

/// The engine's byte buffer: raw memory, so that a transport can read straight into its spare
/// capacity (an `Array` cannot hand out uninitialised room). Owned by one engine, which frees it
/// (``deallocate()``); copies of the value share the memory, and the engine never changes it
/// while a frame in it is being delivered.
struct ReceiveBuffer {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var count = 0
    private(set) var capacity = 0

    /// The bytes held.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The room after the bytes held.
    var spare: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base.map { $0 + count }, count: capacity - count)
    }

    /// Makes room for `n` bytes in all (keeping the bytes held).
    mutating func reserveCapacity(_ n: Int) {
        guard n > capacity else { return }
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 16)
        if let base {
            if count > 0 { fresh.copyMemory(from: base, byteCount: count) }
            base.deallocate()
        }
        base = fresh
        capacity = n
    }

    /// Appends a copy of `bytes`, growing by doubling.
    mutating func append(contentsOf bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        if count + bytes.count > capacity { reserveCapacity(max(count + bytes.count, capacity * 2, 256)) }
        (base! + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// Counts `n` bytes written into ``spare`` as held.
    mutating func commit(_ n: Int) {
        count += n
    }

    /// Drops the first `n` bytes, moving the rest to the front.
    mutating func removeFirst(_ n: Int) {
        guard n > 0, let base else { return }
        if n < count { base.copyMemory(from: base + n, byteCount: count - n) }
        count -= min(n, count)
    }

    /// Drops every byte; frees the memory unless `keepingCapacity`.
    mutating func removeAll(keepingCapacity: Bool) {
        count = 0
        if !keepingCapacity { deallocate() }
    }

    /// Frees the memory.
    mutating func deallocate() {
        base?.deallocate()
        base = nil
        count = 0
        capacity = 0
    }
}
