import XformCore

/// What a receiver offers the engine that feeds it frames.
protocol FrameSink: AnyObject {
    associatedtype Failure: Error
    /// One frame; the bytes are valid only during the call.
    func deliverFrame(_ frame: UnsafeRawBufferPointer)
    /// Malformed input. Returns true to skip the bad frame and go on, false to stop for good.
    func handleFailure(_ failure: Failure) -> Bool
    /// Every complete frame before the peer's EOF was delivered. `leftover` holds the bytes of a
    /// partial frame (empty if none); `midFrame` says whether a frame was begun at all.
    func inputEnded(leftover: UnsafeRawBufferPointer, midFrame: Bool)
    /// Delivery is paused and more than the backlog limit is buffered (true), or no longer (false).
    func backlogChanged(overLimit: Bool)
}

/// Feeds frames from incoming chunks to a receiver, zero-copy when it can.
///
/// When nothing is buffered and delivery is not paused, frames that lie wholly inside a chunk are
/// delivered as pointers into the chunk; only the tail of the chunk (a partial frame) is copied.
/// Otherwise bytes go to one buffer, read by index and compacted when mostly consumed.
///
/// The transport is passed in once per call (`BaseProtocol.transport` is weak: loading it costs a
/// retain/release pair on a side-table reference count, about 125 instructions, so it is not
/// done per frame) and asked after every frame whether it is disconnecting: nothing is
/// delivered after that.
///
/// Re-entrancy: a frame handler may pause or resume delivery, close the connection, or even cause
/// more `receive` calls (a loopback transport). While a delivery is running (`busy`), nested input
/// is set aside in `reentrant` and taken up, in order, by the running loop; nested resumes only
/// clear the flag. The buffer is never mutated while a pointer into it is being delivered.
final class ReceiveEngine<Parser: InPlaceFrameParser> {
    /// The mutable state, kept behind a pointer: class stored properties get a dynamic
    /// exclusivity check on every access (hundreds of instructions per read call, measured),
    /// and the rules above already keep nested calls from conflicting with a running loop.
    private struct State {
        var parser: Parser
        var buffer: [UInt8] = []
        var readIndex = 0
        var reentrant: [UInt8] = []
        var busy = false
        var paused = false
        /// Stopped for good: a framing error or the connection was lost.
        var halted = false
        var eof = false
        var endDelivered = false
        var overLimit = false
    }

    private let s: UnsafeMutablePointer<State>
    /// While paused, buffering more than this many bytes asks the sink to stop reading.
    let backlogLimit: Int

    init(parser: Parser, backlogLimit: Int) {
        s = .allocate(capacity: 1)
        s.initialize(to: State(parser: parser))
        self.backlogLimit = backlogLimit
    }

    deinit {
        s.deinitialize(count: 1)
        s.deallocate()
    }

    /// True while delivery is paused.
    var paused: Bool { s.pointee.paused }
    /// True once stopped for good.
    var halted: Bool { s.pointee.halted }

    /// Bytes received and not yet delivered (nor consumed into a length prefix).
    var bufferedByteCount: Int { s.pointee.buffer.count - s.pointee.readIndex + s.pointee.reentrant.count }

    func receive<S: FrameSink>(_ chunk: UnsafeRawBufferPointer, sink: S, transport: (any Transport)?)
    where S.Failure == Parser.Failure {
        if s.pointee.halted || s.pointee.eof || chunk.isEmpty { return }
        if s.pointee.busy {
            s.pointee.reentrant.append(contentsOf: chunk)
            return
        }
        if transport?.disconnecting ?? false { return }
        if s.pointee.paused {
            s.pointee.buffer.append(contentsOf: chunk)
            drain(sink, transport: transport)
            return
        }
        var pos = 0
        if s.pointee.readIndex < s.pointee.buffer.count {
            // A partial frame is buffered: complete it from the buffer, then go back to parsing
            // the rest of the chunk in place (else a stream whose reads end mid-frame would never
            // leave the buffered path).
            let oldEnd = s.pointee.buffer.count
            s.pointee.buffer.append(contentsOf: chunk)
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
        s.pointee.busy = true
        var p = s.pointee.parser
        parsing: while true {
            switch p.step(chunk, from: pos) {
            case .frame(let range, let next):
                pos = next
                sink.deliverFrame(UnsafeRawBufferPointer(rebasing: chunk[range]))
                if s.pointee.halted || (transport?.disconnecting ?? false) {
                    s.pointee.busy = false
                    halt()
                    return
                }
                if s.pointee.paused { break parsing }
            case .needMore(let keep):
                pos = keep
                break parsing
            case .failed(let failure, let at):
                if !s.pointee.halted && sink.handleFailure(failure) && !s.pointee.halted && !(transport?.disconnecting ?? false) {
                    p.resync()
                    pos = at
                } else {
                    s.pointee.busy = false
                    halt()
                    return
                }
            }
        }
        s.pointee.parser = p
        if pos < chunk.count {
            s.pointee.buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[pos...]))
        }
        s.pointee.busy = false
        if !s.pointee.reentrant.isEmpty || s.pointee.paused || s.pointee.eof {
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
        s.pointee.busy = true
        let start = s.pointee.readIndex
        let delivered: Bool = s.pointee.buffer.withUnsafeBytes { raw in
            switch s.pointee.parser.step(raw, from: start) {
            case .frame(let range, let next):
                s.pointee.readIndex = next
                sink.deliverFrame(UnsafeRawBufferPointer(rebasing: raw[range]))
                return true
            case .needMore(let keep):
                s.pointee.readIndex = keep
                return false
            case .failed:
                // The parser did not move: `drain` meets the same failure again and handles it.
                return false
            }
        }
        s.pointee.busy = false
        if !delivered { return .continueBuffered }
        if s.pointee.halted || (transport?.disconnecting ?? false) {
            halt()
            return .stopped
        }
        let next = s.pointee.readIndex
        if s.pointee.paused || !s.pointee.reentrant.isEmpty || next < oldEnd {
            return .continueBuffered
        }
        s.pointee.buffer.removeAll(keepingCapacity: s.pointee.buffer.capacity <= 65_536)
        s.pointee.readIndex = 0
        return .resumeChunk(next - oldEnd)
    }

    func pause() {
        s.pointee.paused = true
    }

    func resume<S: FrameSink>(sink: S, transport: (any Transport)?) where S.Failure == Parser.Failure {
        guard s.pointee.paused else { return }
        s.pointee.paused = false
        // Inside a delivery the running loop sees the flag; otherwise deliver what is buffered now.
        if !s.pointee.busy { drain(sink, transport: transport) }
    }

    func endOfInput<S: FrameSink>(sink: S, transport: (any Transport)?) where S.Failure == Parser.Failure {
        if s.pointee.halted || s.pointee.eof { return }
        s.pointee.eof = true
        if !s.pointee.busy { drain(sink, transport: transport) }
    }

    /// Stops all delivery and frees the buffers (later, if a delivery is running).
    func halt() {
        s.pointee.halted = true
        if !s.pointee.busy {
            s.pointee.buffer = []
            s.pointee.reentrant = []
            s.pointee.readIndex = 0
        }
    }

    /// Delivers buffered frames until more input is needed, delivery is paused, or it stops.
    private func drain<S: FrameSink>(_ sink: S, transport: (any Transport)?) where S.Failure == Parser.Failure {
        if s.pointee.busy || s.pointee.halted { return }
        s.pointee.busy = true
        draining: while true {
            if !s.pointee.reentrant.isEmpty {
                s.pointee.buffer.append(contentsOf: s.pointee.reentrant)
                s.pointee.reentrant.removeAll(keepingCapacity: s.pointee.reentrant.capacity <= 65_536)
            }
            if s.pointee.paused || s.pointee.halted { break }
            if transport?.disconnecting ?? false {
                s.pointee.busy = false
                halt()
                return
            }
            let start = s.pointee.readIndex
            let step: ParseStep<Parser.Failure> = s.pointee.buffer.withUnsafeBytes { raw in
                let result = s.pointee.parser.step(raw, from: start)
                if case .frame(let range, let next) = result {
                    s.pointee.readIndex = next
                    sink.deliverFrame(UnsafeRawBufferPointer(rebasing: raw[range]))
                }
                return result
            }
            switch step {
            case .frame:
                continue draining
            case .needMore(let keep):
                s.pointee.readIndex = keep
                if s.pointee.reentrant.isEmpty { break draining }
            case .failed(let failure, let at):
                s.pointee.readIndex = at
                if !(!s.pointee.halted && sink.handleFailure(failure) && !s.pointee.halted && !(transport?.disconnecting ?? false)) {
                    s.pointee.busy = false
                    halt()
                    return
                }
                s.pointee.parser.resync()
            }
        }
        compact()
        s.pointee.busy = false
        if s.pointee.halted {
            halt()
            return
        }
        if s.pointee.paused {
            if !s.pointee.overLimit && bufferedByteCount > backlogLimit {
                s.pointee.overLimit = true
                sink.backlogChanged(overLimit: true)
            }
            return
        }
        if s.pointee.overLimit {
            s.pointee.overLimit = false
            sink.backlogChanged(overLimit: false)
        }
        if s.pointee.eof && !s.pointee.endDelivered && !(transport?.disconnecting ?? false) {
            s.pointee.endDelivered = true
            s.pointee.busy = true
            let mid = s.pointee.parser.isMidFrame
            let start = s.pointee.readIndex
            s.pointee.buffer.withUnsafeBytes { raw in
                sink.inputEnded(leftover: UnsafeRawBufferPointer(rebasing: raw[start...]), midFrame: mid)
            }
            s.pointee.busy = false
            halt()
        }
    }

    private func compact() {
        if s.pointee.readIndex == 0 { return }
        if s.pointee.readIndex == s.pointee.buffer.count {
            s.pointee.buffer.removeAll(keepingCapacity: s.pointee.buffer.capacity <= 65_536)
            s.pointee.readIndex = 0
        } else if s.pointee.readIndex >= s.pointee.buffer.count - s.pointee.readIndex {
            s.pointee.buffer.removeSubrange(0..<s.pointee.readIndex)
            s.pointee.readIndex = 0
        }
    }
}
